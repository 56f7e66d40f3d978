//! Compiling user regular expressions the way the proxy will use them:
//! anchored (full match) and size-limited.

use regex::RegexBuilder;

/// The compiled-size limit, so one object cannot make the proxy build a
/// huge automaton.
const SIZE_LIMIT: usize = 1 << 20;

/// `Err(reason)` when `pattern` does not compile as a full-match regex.
pub fn check(pattern: &str) -> Result<(), String> {
    RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(SIZE_LIMIT)
        .build()
        .map(|_| ())
        .map_err(|e| {
            // The regex crate's message spans several lines with a caret
            // diagram; keep its last line (the reason).
            let text = e.to_string();
            let reason = text
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("invalid")
                .trim()
                .trim_start_matches("error: ")
                .to_string();
            format!("{pattern:?} is not a valid regular expression ({reason}); fix the pattern (it must match the whole value, e.g. \"/api/.*\")")
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn good_and_bad() {
        assert!(super::check("/api/.*").is_ok());
        let err = super::check("/api/(").unwrap_err();
        assert!(err.contains("unclosed group"), "{err}");
        assert!(!err.contains('\n'));
    }
}
