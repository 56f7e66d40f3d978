//! A small parser for the Prometheus text exposition format (and the
//! OpenMetrics text the proxies' prometheus-client writes): samples with
//! their labels and value; comments, timestamps and exemplars are skipped.

/// One sample line: `name{label="value",...} value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Metric name with its suffix (`response_latency_ms_bucket`).
    pub name: String,
    /// Labels in the order written.
    pub labels: Vec<(String, String)>,
    /// The value (`+Inf`, `-Inf` and `NaN` included).
    pub value: f64,
}

impl Sample {
    /// The value of label `name`, if present.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A line that is not a valid sample; names the line (1-based) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// The 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Parses every sample of `text`, calling `keep(name)` first so samples of
/// metrics the caller ignores cost no label parsing.
pub fn parse(text: &str, keep: impl Fn(&str) -> bool) -> Result<Vec<Sample>, ParseError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let err = |message: &str| ParseError {
            line: i + 1,
            message: message.to_string(),
        };
        let name_end = line
            .find(|c: char| c == '{' || c.is_ascii_whitespace())
            .ok_or_else(|| err("a sample needs a value after its name"))?;
        let name = &line[..name_end];
        if name.is_empty() {
            return Err(err("empty metric name"));
        }
        if !keep(name) {
            continue;
        }
        let mut rest = &line[name_end..];
        let mut labels = Vec::new();
        if let Some(after) = rest.strip_prefix('{') {
            let (parsed, remaining) = parse_labels(after).map_err(|m| err(&m))?;
            labels = parsed;
            rest = remaining;
        }
        // The value, then an optional timestamp and an optional exemplar.
        let value_text = rest
            .split_ascii_whitespace()
            .next()
            .ok_or_else(|| err("missing value"))?;
        let value = parse_value(value_text).ok_or_else(|| err("value is not a number"))?;
        out.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    Ok(out)
}

fn parse_value(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => text.parse().ok(),
    }
}

/// Parses `a="x",b="y"}` and returns the labels and what follows the `}`.
/// Label pairs in the order written.
type Labels = Vec<(String, String)>;

fn parse_labels(mut s: &str) -> Result<(Labels, &str), String> {
    let mut labels = Vec::new();
    loop {
        s = s.trim_start_matches([' ', ',']);
        if let Some(rest) = s.strip_prefix('}') {
            return Ok((labels, rest));
        }
        let eq = s.find('=').ok_or("a label needs `=\"value\"`")?;
        let key = s[..eq].trim().to_string();
        if key.is_empty() {
            return Err("empty label name".into());
        }
        s = s[eq + 1..]
            .trim_start()
            .strip_prefix('"')
            .ok_or_else(|| format!("label {key}: the value must be quoted"))?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let end = loop {
            match chars.next() {
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => return Err(format!("label {key}: unterminated escape")),
                },
                Some((_, c)) => value.push(c),
                None => return Err(format!("label {key}: unterminated value")),
            }
        };
        labels.push((key, value));
        s = &s[end + 1..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_openmetrics_from_prometheus_client() {
        let text = "# HELP request Requests proxied.\n# TYPE request counter\n\
request_total{namespace=\"shop\",direction=\"outbound\",dst_service=\"web\"} 7\n\
response_latency_ms_bucket{le=\"+Inf\",status_code=\"200\"} 3 1700000000\n\
response_latency_ms_sum{a=\"q\\\"uote\\\\back\\nnl\"} 1.5e1 # {trace=\"x\"} 1\n# EOF\n";
        let s = parse(text, |_| true).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].name, "request_total");
        assert_eq!(s[0].label("dst_service"), Some("web"));
        assert_eq!(s[0].value, 7.0);
        assert_eq!(s[1].label("le"), Some("+Inf"));
        assert_eq!(s[1].value, 3.0);
        assert_eq!(s[2].label("a"), Some("q\"uote\\back\nnl"));
        assert_eq!(s[2].value, 15.0);
    }

    #[test]
    fn filter_skips_unwanted_metrics_and_bad_lines_name_the_line() {
        let s = parse("a 1\nb{x=\"1\"} 2\n", |n| n == "b").unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].name, "b");
        assert_eq!(s[0].value, 2.0);
        let e = parse("ok 1\nbad{x=1} 2\n", |_| true).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("quoted"), "{e}");
        let e = parse("x{a=\"1\"} nope\n", |_| true).unwrap_err();
        assert!(e.to_string().contains("not a number"), "{e}");
    }
}
