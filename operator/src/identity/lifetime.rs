//! Parses `--cert-lifetime`: whole seconds (`86400`) or a number with one
//! unit `s`, `m`, `h` or `d` (`90m`, `24h`, `7d`); at least one minute.

use std::time::Duration;

/// Parses a certificate lifetime; the error says what is accepted.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => 0,
    };
    let n: u64 = digits.parse().unwrap_or(0);
    let secs = n.checked_mul(scale).unwrap_or(0);
    if secs < 60 {
        return Err(format!(
            "{text:?}: expected a duration of at least one minute, as seconds (86400) or with a unit s, m, h or d (24h)"
        ));
    }
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_errors() {
        assert_eq!(parse("86400"), Ok(Duration::from_secs(86400)));
        assert_eq!(parse("24h"), Ok(Duration::from_secs(86400)));
        assert_eq!(parse("90m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("7d"), Ok(Duration::from_secs(7 * 86400)));
        assert_eq!(parse("120s"), Ok(Duration::from_secs(120)));
        for bad in ["", "h", "30", "59s", "1w", "1.5h", "-1h", "1h30m"] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains("at least one minute"), "{bad}: {err}");
        }
    }
}
