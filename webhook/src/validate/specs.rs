//! HTTPRouteGroup, TCPRoute and UDPRoute rules: match names unique, path
//! and header regexes that compile (anchored, as the proxy uses them),
//! ports listed once. HTTPRouteGroup paths follow the written version:
//! `matches` is top-level in v1alpha1 and v1alpha2, `spec.matches` later.

use std::collections::BTreeMap;

use meshlet_crds::conversion::ConversionError;
use meshlet_crds::specs::v1alpha4::{HttpRouteGroup, PortMatch};
use serde_json::Value;

use super::{regexes, typed, Violation};

/// Checks an HTTPRouteGroup in the hub version; `version` is the one written.
pub fn validate_http(hub: &Value, version: &str) -> Result<Vec<Violation>, ConversionError> {
    let group: HttpRouteGroup = typed(hub)?;
    let prefix = if matches!(version, "v1alpha1" | "v1alpha2") {
        ""
    } else {
        "spec."
    };
    let mut out = Vec::new();
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, m) in group.spec.matches.iter().enumerate() {
        if let Some(first) = names.insert(&m.name, i) {
            out.push(Violation::new(
                format!("{prefix}matches[{i}].name"),
                format!(
                    "{:?} is already used by {prefix}matches[{first}]; match names must be unique (rules refer to them by name)",
                    m.name
                ),
            ));
        }
        if let Some(path) = &m.path_regex {
            if let Err(reason) = regexes::check(path) {
                out.push(Violation::new(
                    format!("{prefix}matches[{i}].pathRegex"),
                    reason,
                ));
            }
        }
        for (name, value) in &m.headers.0 {
            if let Err(reason) = regexes::check(value) {
                out.push(Violation::new(
                    format!("{prefix}matches[{i}].headers[{name:?}]"),
                    reason,
                ));
            }
        }
    }
    Ok(out)
}

/// Checks a TCPRoute or UDPRoute in the hub version (`spec.matches.ports`).
pub fn validate_ports(hub: &Value) -> Result<Vec<Violation>, ConversionError> {
    let matches: PortMatch = match hub.pointer("/spec/matches") {
        Some(m) => serde_json::from_value(m.clone()).map_err(|e| ConversionError::Invalid {
            api_version: String::new(),
            kind: String::new(),
            field: "spec.matches".into(),
            message: e.to_string(),
        })?,
        None => return Ok(Vec::new()),
    };
    let mut out = Vec::new();
    let mut seen: BTreeMap<u16, usize> = BTreeMap::new();
    for (i, port) in matches.ports.iter().enumerate() {
        if let Some(first) = seen.insert(*port, i) {
            out.push(Violation::new(
                format!("spec.matches.ports[{i}]"),
                format!("port {port} is already listed at spec.matches.ports[{first}]; list each port once"),
            ));
        }
    }
    Ok(out)
}
