//! Annotation and label keys (and their values) that Meshlet reads and
//! writes on namespaces, pods and SMI objects, and the parsers for the
//! per-pod overrides, whose errors name the annotation.

/// Prefix of every Meshlet annotation and label key.
pub const PREFIX: &str = "meshlet.dev/";

/// Injection switch. As a **namespace label** (`meshlet.dev/inject=enabled`)
/// it meshes every pod created in the namespace; as a **pod annotation** it
/// overrides the namespace: `disabled` opts the pod out, `enabled` opts a pod
/// in where the namespace is not labelled. Values: [`InjectMode`].
pub const INJECT: &str = "meshlet.dev/inject";

/// Value of [`INJECT`] that turns injection on.
pub const INJECT_ENABLED: &str = "enabled";
/// Value of [`INJECT`] that turns injection off (the opt-out).
pub const INJECT_DISABLED: &str = "disabled";

/// The value of [`INJECT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InjectMode {
    /// Inject the proxy.
    Enabled,
    /// Do not inject the proxy.
    Disabled,
}

impl InjectMode {
    /// The value as written in the annotation or label.
    pub fn as_str(self) -> &'static str {
        match self {
            InjectMode::Enabled => INJECT_ENABLED,
            InjectMode::Disabled => INJECT_DISABLED,
        }
    }
}

impl std::str::FromStr for InjectMode {
    type Err = AnnotationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            INJECT_ENABLED => Ok(InjectMode::Enabled),
            INJECT_DISABLED => Ok(InjectMode::Disabled),
            other => Err(AnnotationError {
                key: INJECT,
                value: other.to_string(),
                reason: "expected \"enabled\" or \"disabled\"".into(),
            }),
        }
    }
}

/// Per-pod override: the proxy container image (`registry/meshlet-proxy:tag`).
pub const PROXY_IMAGE: &str = "meshlet.dev/proxy-image";
/// Per-pod override: the proxy's CPU request, a Kubernetes quantity (`10m`).
pub const PROXY_CPU_REQUEST: &str = "meshlet.dev/proxy-cpu-request";
/// Per-pod override: the proxy's CPU limit, a Kubernetes quantity (`500m`).
pub const PROXY_CPU_LIMIT: &str = "meshlet.dev/proxy-cpu-limit";
/// Per-pod override: the proxy's memory request, a Kubernetes quantity (`16Mi`).
pub const PROXY_MEMORY_REQUEST: &str = "meshlet.dev/proxy-memory-request";
/// Per-pod override: the proxy's memory limit, a Kubernetes quantity (`64Mi`).
pub const PROXY_MEMORY_LIMIT: &str = "meshlet.dev/proxy-memory-limit";
/// Per-pod override: inbound ports the traffic redirect leaves alone, as a
/// comma-separated list (`"9090,9091"`); see [`parse_port_list`].
pub const SKIP_INBOUND_PORTS: &str = "meshlet.dev/skip-inbound-ports";
/// Per-pod override: outbound destination ports the traffic redirect leaves
/// alone, as a comma-separated list (`"5432"`); see [`parse_port_list`].
pub const SKIP_OUTBOUND_PORTS: &str = "meshlet.dev/skip-outbound-ports";
/// Per-pod override: the proxy's log level, one of [`LOG_LEVELS`].
pub const PROXY_LOG_LEVEL: &str = "meshlet.dev/proxy-log-level";
/// Values accepted by [`PROXY_LOG_LEVEL`].
pub const LOG_LEVELS: &[&str] = &["error", "warn", "info", "debug", "trace"];

/// Every per-pod override annotation, for validation and documentation.
pub const POD_OVERRIDES: &[&str] = &[
    PROXY_IMAGE,
    PROXY_CPU_REQUEST,
    PROXY_CPU_LIMIT,
    PROXY_MEMORY_REQUEST,
    PROXY_MEMORY_LIMIT,
    SKIP_INBOUND_PORTS,
    SKIP_OUTBOUND_PORTS,
    PROXY_LOG_LEVEL,
];

/// Written by the injector on every pod it injected, value [`INJECTED_TRUE`].
/// Its presence makes injection idempotent: an injected pod is left alone.
pub const INJECTED: &str = "meshlet.dev/injected";
/// Value of [`INJECTED`].
pub const INJECTED_TRUE: &str = "true";
/// Written by the injector: the version of the proxy it injected (the
/// Meshlet release, e.g. `0.1.0`).
pub const PROXY_VERSION: &str = "meshlet.dev/proxy-version";

/// Label on every injected pod, value [`MESHED_TRUE`], so meshed pods can be
/// selected (`kubectl get pods -l meshlet.dev/meshed=true`).
pub const MESHED_LABEL: &str = "meshlet.dev/meshed";
/// Value of [`MESHED_LABEL`].
pub const MESHED_TRUE: &str = "true";
/// Label on Meshlet's own objects naming the part (`operator`, `webhook`).
pub const COMPONENT_LABEL: &str = "meshlet.dev/component";
/// The standard `part-of` label; Meshlet's own objects carry [`PART_OF_VALUE`].
pub const PART_OF_LABEL: &str = "app.kubernetes.io/part-of";
/// Value of [`PART_OF_LABEL`] on Meshlet's own objects.
pub const PART_OF_VALUE: &str = "meshlet";

/// On a namespace: the access policy of its meshed pods when no
/// TrafficTarget allows a client, overriding the install-wide default:
/// [`DEFAULT_POLICY_DENY`] (SMI semantics) or [`DEFAULT_POLICY_PERMISSIVE`]
/// (allow meshed and unmeshed clients, for adoption).
pub const DEFAULT_POLICY: &str = "meshlet.dev/default-policy";
/// Value of [`DEFAULT_POLICY`]: denied unless a TrafficTarget allows it.
pub const DEFAULT_POLICY_DENY: &str = "deny";
/// Value of [`DEFAULT_POLICY`]: everything allowed.
pub const DEFAULT_POLICY_PERMISSIVE: &str = "permissive";

/// On SMI objects: the body of another version of the object that the
/// version at hand cannot hold, kept by version conversion so that
/// converting back loses nothing (see `crate::conversion`). JSON:
/// `{"apiVersion": "...", <top-level fields but apiVersion, kind, metadata>}`.
pub const CONVERSION_DATA: &str = "meshlet.dev/conversion-data";

/// A bad annotation value; the message names the annotation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("annotation {key}: {value:?}: {reason}")]
pub struct AnnotationError {
    /// The annotation key.
    pub key: &'static str,
    /// The value found.
    pub value: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Parses a comma-separated port list (`"80, 443"`) from annotation `key`.
/// Blank items are ignored; every other item must be a port 1–65535.
pub fn parse_port_list(key: &'static str, value: &str) -> Result<Vec<u16>, AnnotationError> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| match item.parse::<u16>() {
            Ok(port) if port != 0 => Ok(port),
            _ => Err(AnnotationError {
                key,
                value: value.to_string(),
                reason: format!("{item:?} is not a port number 1-65535"),
            }),
        })
        .collect()
}

/// Checks a [`PROXY_LOG_LEVEL`] value.
pub fn parse_log_level(value: &str) -> Result<&'static str, AnnotationError> {
    LOG_LEVELS
        .iter()
        .copied()
        .find(|level| *level == value)
        .ok_or_else(|| AnnotationError {
            key: PROXY_LOG_LEVEL,
            value: value.to_string(),
            reason: format!("expected one of {}", LOG_LEVELS.join(", ")),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inject_mode_parses_both_values_and_names_the_key_on_error() {
        assert_eq!("enabled".parse(), Ok(InjectMode::Enabled));
        assert_eq!("disabled".parse(), Ok(InjectMode::Disabled));
        assert_eq!(InjectMode::Disabled.as_str(), "disabled");
        let err = "yes".parse::<InjectMode>().unwrap_err().to_string();
        assert!(
            err.contains("meshlet.dev/inject") && err.contains("\"yes\""),
            "{err}"
        );
    }

    #[test]
    fn port_lists() {
        assert_eq!(
            parse_port_list(SKIP_INBOUND_PORTS, "80, 443,,"),
            Ok(vec![80, 443])
        );
        assert_eq!(parse_port_list(SKIP_INBOUND_PORTS, ""), Ok(vec![]));
        for bad in ["0", "65536", "http", "80;81"] {
            let err = parse_port_list(SKIP_OUTBOUND_PORTS, bad)
                .unwrap_err()
                .to_string();
            assert!(err.contains("meshlet.dev/skip-outbound-ports"), "{err}");
        }
    }

    #[test]
    fn log_levels() {
        assert_eq!(parse_log_level("debug"), Ok("debug"));
        let err = parse_log_level("loud").unwrap_err().to_string();
        assert!(
            err.contains(PROXY_LOG_LEVEL) && err.contains("trace"),
            "{err}"
        );
    }

    #[test]
    fn every_key_is_under_the_prefix_or_standard() {
        for key in POD_OVERRIDES.iter().chain([
            &INJECT,
            &INJECTED,
            &PROXY_VERSION,
            &MESHED_LABEL,
            &COMPONENT_LABEL,
            &CONVERSION_DATA,
        ]) {
            assert!(key.starts_with(PREFIX), "{key}");
        }
    }
}
