//! Parsing of the flag values people type: durations (`500ms`, `30s`,
//! `1m30s`, `72h`, `30d`) and percentages (`1%`, `0.5%`).

use std::time::Duration;

/// Parses a duration made of `<number><unit>` parts, units `ms`, `s`, `m`,
/// `h`, `d` (Go-style, plus days): `500ms`, `1m30s`, `30d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration; expected e.g. 30s, 500ms, 1m".into());
    }
    let mut total = 0.0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(number_len);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let value: f64 = number
            .parse()
            .map_err(|_| format!("{text:?} is not a duration; expected e.g. 30s, 500ms, 1m"))?;
        let seconds = match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            "" => return Err(format!("{text:?} has no unit; use ms, s, m, h or d")),
            other => {
                return Err(format!(
                    "unknown unit {other:?} in {text:?}; use ms, s, m, h or d"
                ))
            }
        };
        total += value * seconds;
        rest = tail;
    }
    Ok(Duration::from_secs_f64(total))
}

/// Parses a percentage `0%`–`100%` into a fraction (`1%` → 0.01).
pub fn parse_percent(text: &str) -> Result<f64, String> {
    let number = text
        .trim()
        .strip_suffix('%')
        .ok_or_else(|| format!("{text:?} is not a percentage; write it with %, e.g. 1% or 0.5%"))?;
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a percentage; e.g. 1% or 0.5%"))?;
    if !(0.0..=100.0).contains(&value) {
        return Err(format!("{text:?} is outside 0%–100%"));
    }
    Ok(value / 100.0)
}

/// Formats a duration the way it is typed: `30s`, `1m30s`, `250ms`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let secs = d.as_secs();
    let (m, s) = (secs / 60, secs % 60);
    match (m, s) {
        (0, s) => format!("{s}s"),
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86400)));
        assert!(parse_duration("30").unwrap_err().contains("no unit"));
        assert!(parse_duration("3x").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn percentages() {
        assert_eq!(parse_percent("1%"), Ok(0.01));
        assert_eq!(parse_percent("0.5%"), Ok(0.005));
        assert_eq!(parse_percent("100%"), Ok(1.0));
        assert!(parse_percent("1").unwrap_err().contains("with %"));
        assert!(parse_percent("101%").is_err());
        assert!(parse_percent("-1%").is_err());
    }

    #[test]
    fn formatting_round_trips() {
        for text in ["250ms", "30s", "1m", "1m30s"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
    }
}
