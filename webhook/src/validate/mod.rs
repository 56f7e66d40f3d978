//! Validation of SMI objects, every served version, for what the CRD schema
//! cannot say. Each object is read in its own version, converted to the
//! newest (hub) version with `meshlet_crds::conversion`, checked there, and
//! every problem is reported against the field path *of the version the
//! user wrote* (`specs[0]` in a v1alpha1 TrafficTarget, `spec.rules[0]`
//! later).

mod access;
mod regexes;
mod specs;
mod split;

use std::fmt;

use meshlet_crds::conversion::{self, ConversionError};
use serde_json::Value;

/// One problem with an object: the field, what is wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Path of the field in the version the object was written in
    /// (`spec.backends[1].weight`), `.` for the whole object.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl Violation {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Violation {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// All problems of one object, in field order; empty when it is valid.
pub fn validate(obj: &Value, namespace: &str) -> Vec<Violation> {
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let (group, version) = api_version.split_once('/').unwrap_or(("", ""));

    // Checks on the raw object, where the typed read would give a less
    // helpful message.
    let early = match (group, kind) {
        (meshlet_crds::split::GROUP, "TrafficSplit") => split::raw_checks(obj),
        (meshlet_crds::access::GROUP, "TrafficTarget") => access::raw_checks(obj, version),
        _ => Vec::new(),
    };
    if !early.is_empty() {
        return early;
    }

    let hub = match conversion::to_hub_value(obj) {
        Ok(hub) => hub,
        Err(e) => return vec![from_conversion_error(e)],
    };
    let result = match (group, kind) {
        (meshlet_crds::split::GROUP, "TrafficSplit") => split::validate(&hub),
        (meshlet_crds::access::GROUP, "TrafficTarget") => {
            access::validate(&hub, version, namespace)
        }
        (meshlet_crds::specs::GROUP, "HTTPRouteGroup") => specs::validate_http(&hub, version),
        (meshlet_crds::specs::GROUP, "TCPRoute" | "UDPRoute") => specs::validate_ports(&hub),
        _ => Ok(Vec::new()),
    };
    result.unwrap_or_else(|e| vec![from_conversion_error(e)])
}

fn from_conversion_error(e: ConversionError) -> Violation {
    match e {
        ConversionError::Invalid { field, message, .. } => Violation::new(field, message),
        other => Violation::new(".", other.to_string()),
    }
}

/// Reads a hub object as its typed form.
fn typed<T: serde::de::DeserializeOwned>(hub: &Value) -> Result<T, ConversionError> {
    let api_version = hub.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = hub.get("kind").and_then(Value::as_str).unwrap_or("");
    conversion::parse(api_version, kind, hub)
}

/// Joins violations into one admission message, one per line.
pub fn message(kind: &str, name: &str, violations: &[Violation]) -> String {
    let mut out = format!("{kind} {name:?} is invalid:");
    for v in violations {
        out.push_str("\n  ");
        out.push_str(&v.to_string());
    }
    out
}
