//! Tallies of many responses: status codes, versions, failures.

use std::collections::BTreeMap;
use std::fmt;

/// The outcome of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A response arrived; `version` and `pod` are the body's fields, if any.
    Response {
        status: u16,
        version: Option<String>,
        pod: Option<String>,
    },
    /// No response: connect, DNS or protocol error.
    Error(String),
}

/// Counts over all outcomes of a `get` run.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub statuses: BTreeMap<u16, usize>,
    pub versions: BTreeMap<String, usize>,
    pub pods: BTreeMap<String, usize>,
    pub errors: BTreeMap<String, usize>,
}

impl Summary {
    pub fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Response {
                status,
                version,
                pod,
            } => {
                *self.statuses.entry(status).or_default() += 1;
                let none = || "<none>".to_string();
                *self
                    .versions
                    .entry(version.unwrap_or_else(none))
                    .or_default() += 1;
                *self.pods.entry(pod.unwrap_or_else(none)).or_default() += 1;
            }
            Outcome::Error(e) => *self.errors.entry(e).or_default() += 1,
        }
    }

    /// True when every request got a response with `expected` status.
    pub fn all_status(&self, expected: u16) -> bool {
        self.errors.is_empty() && self.statuses.keys().all(|s| *s == expected)
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |m: Vec<String>| m.join(" ");
        writeln!(
            f,
            "status: {}",
            join(
                self.statuses
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect()
            )
        )?;
        writeln!(
            f,
            "version: {}",
            join(
                self.versions
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect()
            )
        )?;
        writeln!(
            f,
            "pod: {}",
            join(self.pods.iter().map(|(k, v)| format!("{k}={v}")).collect())
        )?;
        for (e, n) in &self.errors {
            writeln!(f, "error ({n}x): {e}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(version: &str) -> Outcome {
        Outcome::Response {
            status: 200,
            version: Some(version.into()),
            pod: Some(format!("pod-{version}")),
        }
    }

    #[test]
    fn counts_statuses_versions_and_errors() {
        let mut s = Summary::default();
        s.add(ok("v1"));
        s.add(ok("v2"));
        s.add(ok("v1"));
        assert!(s.all_status(200));
        assert_eq!(s.versions["v1"], 2);
        assert_eq!(
            s.to_string(),
            "status: 200=3\nversion: v1=2 v2=1\npod: pod-v1=2 pod-v2=1\n"
        );
        s.add(Outcome::Error("connection refused".into()));
        assert!(!s.all_status(200));
        assert!(s.to_string().contains("error (1x): connection refused"));
    }

    #[test]
    fn another_status_fails_the_expectation() {
        let mut s = Summary::default();
        s.add(ok("v1"));
        s.add(Outcome::Response {
            status: 503,
            version: None,
            pod: None,
        });
        assert!(!s.all_status(200));
        assert_eq!(s.statuses[&503], 1);
    }
}
