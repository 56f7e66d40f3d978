//! Per-pod overrides read from the pod's `meshlet.dev/*` annotations (proxy
//! image, resources, skipped ports, log level), each checked, with errors
//! that name the annotation.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use meshlet_crds::contract::annotations::{self as keys, AnnotationError};
use meshlet_crds::quantity::NON_NEGATIVE_QUANTITY_PATTERN;
use regex::Regex;

/// What a pod's annotations change about the injected proxy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `meshlet.dev/proxy-image`.
    pub proxy_image: Option<String>,
    /// `meshlet.dev/proxy-cpu-request`.
    pub cpu_request: Option<String>,
    /// `meshlet.dev/proxy-cpu-limit`.
    pub cpu_limit: Option<String>,
    /// `meshlet.dev/proxy-memory-request`.
    pub memory_request: Option<String>,
    /// `meshlet.dev/proxy-memory-limit`.
    pub memory_limit: Option<String>,
    /// `meshlet.dev/skip-inbound-ports`.
    pub skip_inbound_ports: Vec<u16>,
    /// `meshlet.dev/skip-outbound-ports`.
    pub skip_outbound_ports: Vec<u16>,
    /// `meshlet.dev/proxy-log-level`.
    pub log_level: Option<&'static str>,
}

fn quantity_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(NON_NEGATIVE_QUANTITY_PATTERN).expect("the pattern compiles"))
}

fn quantity(
    annotations: &BTreeMap<String, String>,
    key: &'static str,
) -> Result<Option<String>, AnnotationError> {
    match annotations.get(key).map(|v| v.trim()) {
        None => Ok(None),
        Some(v) if quantity_regex().is_match(v) => Ok(Some(v.to_string())),
        Some(v) => Err(AnnotationError {
            key,
            value: v.to_string(),
            reason: "not a Kubernetes quantity 0 or more (e.g. \"10m\", \"64Mi\")".into(),
        }),
    }
}

impl Overrides {
    /// Reads the overrides from a pod's annotations.
    pub fn from_annotations(
        annotations: &BTreeMap<String, String>,
    ) -> Result<Overrides, AnnotationError> {
        let proxy_image = match annotations.get(keys::PROXY_IMAGE).map(|v| v.trim()) {
            None => None,
            Some(image) if !image.is_empty() && !image.contains(char::is_whitespace) => {
                Some(image.to_string())
            }
            Some(image) => {
                return Err(AnnotationError {
                    key: keys::PROXY_IMAGE,
                    value: image.to_string(),
                    reason: "expected an image reference such as registry/meshlet-proxy:0.1.0"
                        .into(),
                })
            }
        };
        let ports = |key: &'static str| {
            annotations
                .get(key)
                .map(|v| keys::parse_port_list(key, v))
                .transpose()
                .map(Option::unwrap_or_default)
        };
        Ok(Overrides {
            proxy_image,
            cpu_request: quantity(annotations, keys::PROXY_CPU_REQUEST)?,
            cpu_limit: quantity(annotations, keys::PROXY_CPU_LIMIT)?,
            memory_request: quantity(annotations, keys::PROXY_MEMORY_REQUEST)?,
            memory_limit: quantity(annotations, keys::PROXY_MEMORY_LIMIT)?,
            skip_inbound_ports: ports(keys::SKIP_INBOUND_PORTS)?,
            skip_outbound_ports: ports(keys::SKIP_OUTBOUND_PORTS)?,
            log_level: annotations
                .get(keys::PROXY_LOG_LEVEL)
                .map(|v| keys::parse_log_level(v.trim()))
                .transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn none_gives_defaults() {
        assert_eq!(
            Overrides::from_annotations(&BTreeMap::new()),
            Ok(Overrides::default())
        );
    }

    #[test]
    fn reads_every_override() {
        let o = Overrides::from_annotations(&annotations(&[
            (keys::PROXY_IMAGE, "reg/proxy:1"),
            (keys::PROXY_CPU_REQUEST, "20m"),
            (keys::PROXY_CPU_LIMIT, "1"),
            (keys::PROXY_MEMORY_REQUEST, "32Mi"),
            (keys::PROXY_MEMORY_LIMIT, "128Mi"),
            (keys::SKIP_INBOUND_PORTS, "9090, 9091"),
            (keys::SKIP_OUTBOUND_PORTS, "5432"),
            (keys::PROXY_LOG_LEVEL, "debug"),
        ]))
        .unwrap();
        assert_eq!(o.proxy_image.as_deref(), Some("reg/proxy:1"));
        assert_eq!(o.cpu_request.as_deref(), Some("20m"));
        assert_eq!(o.cpu_limit.as_deref(), Some("1"));
        assert_eq!(o.memory_request.as_deref(), Some("32Mi"));
        assert_eq!(o.memory_limit.as_deref(), Some("128Mi"));
        assert_eq!(o.skip_inbound_ports, vec![9090, 9091]);
        assert_eq!(o.skip_outbound_ports, vec![5432]);
        assert_eq!(o.log_level, Some("debug"));
    }

    #[test]
    fn bad_values_name_the_annotation() {
        for (key, value) in [
            (keys::PROXY_IMAGE, "has space"),
            (keys::PROXY_IMAGE, ""),
            (keys::PROXY_CPU_REQUEST, "-1"),
            (keys::PROXY_MEMORY_LIMIT, "lots"),
            (keys::SKIP_INBOUND_PORTS, "http"),
            (keys::SKIP_OUTBOUND_PORTS, "70000"),
            (keys::PROXY_LOG_LEVEL, "loud"),
        ] {
            let err = Overrides::from_annotations(&annotations(&[(key, value)]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{key}={value}: {err}");
        }
    }
}
