//! TrafficSplit rules: weights 0 or more and not all zero, each backend
//! once, no backend that is the root service itself, matches that name
//! HTTPRouteGroups of specs.smi-spec.io. Field paths are the same in every
//! version (`spec.…`).

use std::collections::BTreeMap;

use meshlet_crds::conversion::ConversionError;
use meshlet_crds::split::v1alpha4::TrafficSplit;
use serde_json::Value;

use super::{typed, Violation};

const DRAIN_HINT: &str = "must be ≥ 0; set it to 0 to drain this backend";

/// Negative weights, caught before the typed read so the message says how
/// to fix them (v1alpha1 quantities `"-1"`, later integers `-1`).
pub fn raw_checks(obj: &Value) -> Vec<Violation> {
    let Some(backends) = obj.pointer("/spec/backends").and_then(Value::as_array) else {
        return Vec::new();
    };
    backends
        .iter()
        .enumerate()
        .filter(|(_, b)| match b.get("weight") {
            Some(Value::Number(n)) => n.as_f64().is_some_and(|w| w < 0.0),
            Some(Value::String(s)) => s.trim_start().starts_with('-'),
            _ => false,
        })
        .map(|(i, _)| Violation::new(format!("spec.backends[{i}].weight"), DRAIN_HINT))
        .collect()
}

/// Checks a TrafficSplit in the hub version.
pub fn validate(hub: &Value) -> Result<Vec<Violation>, ConversionError> {
    let split: TrafficSplit = typed(hub)?;
    let spec = &split.spec;
    let mut out = Vec::new();

    if spec.backends.is_empty() {
        out.push(Violation::new(
            "spec.backends",
            "must list at least one backend service with a weight",
        ));
    }
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, backend) in spec.backends.iter().enumerate() {
        let field = format!("spec.backends[{i}].service");
        if backend.service == spec.service {
            out.push(Violation::new(
                field.clone(),
                format!(
                    "{:?} is the split's own root service (spec.service); a split cannot send traffic to itself: point this backend at a Service that selects only the stable pods (e.g. \"{}-stable\")",
                    backend.service, backend.service
                ),
            ));
        }
        if let Some(first) = seen.get(backend.service.as_str()) {
            out.push(Violation::new(
                field,
                format!(
                    "{:?} is already listed at spec.backends[{first}]; list each backend once and put the combined weight there",
                    backend.service
                ),
            ));
        } else {
            seen.insert(&backend.service, i);
        }
    }
    if !spec.backends.is_empty() && spec.backends.iter().all(|b| b.weight == 0) {
        out.push(Violation::new(
            "spec.backends",
            "every weight is 0, so the split could route no traffic; give at least one backend a weight above 0",
        ));
    }
    if spec
        .backends
        .iter()
        .try_fold(0u64, |sum, b| sum.checked_add(b.weight))
        .is_none()
    {
        out.push(Violation::new(
            "spec.backends",
            "the weights add up to more than 2^64-1; use smaller numbers in the same ratio (e.g. percentages)",
        ));
    }
    let mut match_names: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, m) in spec.matches.iter().enumerate() {
        if let Some(group) = m.api_group.as_deref() {
            if group != meshlet_crds::specs::GROUP {
                out.push(Violation::new(
                    format!("spec.matches[{i}].apiGroup"),
                    format!(
                        "{group:?} is not supported; use {:?} (or leave it out)",
                        meshlet_crds::specs::GROUP
                    ),
                ));
            }
        }
        if let Some(first) = match_names.insert(&m.name, i) {
            out.push(Violation::new(
                format!("spec.matches[{i}].name"),
                format!(
                    "{:?} is already listed at spec.matches[{first}]; list each HTTPRouteGroup once",
                    m.name
                ),
            ));
        }
    }
    Ok(out)
}
