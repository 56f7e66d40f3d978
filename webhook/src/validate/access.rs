//! TrafficTarget rules: destination and sources are ServiceAccounts; the
//! destination lives in the TrafficTarget's own namespace (SMI: "the
//! destination namespace must match the TrafficTarget's namespace"; empty
//! means that namespace); sources' empty namespace means the TrafficTarget's.
//! Rule kinds (HTTPRouteGroup, TCPRoute, UDPRoute from v1alpha3) are
//! checked by the typed read. Paths follow the written version: v1alpha1
//! keeps `destination`, `sources` and `specs` at the top level.

use std::collections::BTreeMap;

use meshlet_crds::access::v1alpha3::TrafficTarget;
use meshlet_crds::conversion::ConversionError;
use serde_json::Value;

use super::{typed, Violation};

const SERVICE_ACCOUNT: &str = "ServiceAccount";

/// Rule kinds each version may reference.
fn allowed_rule_kinds(version: &str) -> &'static [&'static str] {
    match version {
        "v1alpha1" | "v1alpha2" => &["HTTPRouteGroup", "TCPRoute"],
        _ => &["HTTPRouteGroup", "TCPRoute", "UDPRoute"],
    }
}

/// Rule kinds, checked on the raw object so the message names the rule
/// and says which kinds the version allows.
pub fn raw_checks(obj: &Value, version: &str) -> Vec<Violation> {
    let (pointer, field) = if version == "v1alpha1" {
        ("/specs", "specs")
    } else {
        ("/spec/rules", "spec.rules")
    };
    let allowed = allowed_rule_kinds(version);
    let Some(rules) = obj.pointer(pointer).and_then(Value::as_array) else {
        return Vec::new();
    };
    rules
        .iter()
        .enumerate()
        .filter_map(|(i, rule)| {
            let kind = rule.get("kind")?.as_str().unwrap_or("");
            (!allowed.contains(&kind)).then(|| {
                let hint = if kind == "UDPRoute" {
                    " (UDPRoute needs access.smi-spec.io/v1alpha3)"
                } else {
                    ""
                };
                Violation::new(
                    format!("{field}[{i}].kind"),
                    format!(
                        "{kind:?} is not a route kind {version} allows; use one of {}{hint}",
                        allowed.join(", ")
                    ),
                )
            })
        })
        .collect()
}

/// Checks a TrafficTarget in the hub version; `version` is the one written,
/// `namespace` the object's namespace.
pub fn validate(
    hub: &Value,
    version: &str,
    namespace: &str,
) -> Result<Vec<Violation>, ConversionError> {
    let target: TrafficTarget = typed(hub)?;
    let spec = &target.spec;
    let (prefix, rules) = if version == "v1alpha1" {
        ("", "specs")
    } else {
        ("spec.", "rules")
    };
    let mut out = Vec::new();

    let destination = &spec.destination;
    if destination.kind != SERVICE_ACCOUNT {
        out.push(Violation::new(
            format!("{prefix}destination.kind"),
            format!(
                "{:?} is not supported; identities are ServiceAccounts: set kind: ServiceAccount",
                destination.kind
            ),
        ));
    }
    if let Some(ns) = destination.namespace.as_deref() {
        if !ns.is_empty() && ns != namespace {
            out.push(Violation::new(
                format!("{prefix}destination.namespace"),
                format!(
                    "{ns:?} differs from the TrafficTarget's namespace {namespace:?}; a TrafficTarget grants access to workloads in its own namespace: create it in {ns:?} or leave destination.namespace out"
                ),
            ));
        }
    }
    let mut seen: BTreeMap<(&str, &str, &str), usize> = BTreeMap::new();
    for (i, source) in spec.sources.iter().enumerate() {
        if source.kind != SERVICE_ACCOUNT {
            out.push(Violation::new(
                format!("{prefix}sources[{i}].kind"),
                format!(
                    "{:?} is not supported; identities are ServiceAccounts: set kind: ServiceAccount",
                    source.kind
                ),
            ));
        }
        let ns = source.namespace.as_deref().unwrap_or(namespace);
        if let Some(first) = seen.insert((&source.kind, ns, &source.name), i) {
            out.push(Violation::new(
                format!("{prefix}sources[{i}]"),
                format!(
                    "{}/{} is already listed at {prefix}sources[{first}]; list each source once",
                    ns, source.name
                ),
            ));
        }
    }
    for (i, rule) in spec.rules.iter().enumerate() {
        if rule.matches.iter().any(String::is_empty) {
            out.push(Violation::new(
                format!("{prefix}{rules}[{i}].matches"),
                "contains an empty name; list match names of the referenced route, or leave matches out to allow all of them",
            ));
        }
    }
    Ok(out)
}
