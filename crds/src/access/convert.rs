//! TrafficTarget conversion, hub = v1alpha3.
//!
//! | from → to | rule |
//! | --- | --- |
//! | v1alpha1 → hub | top-level `destination`/`sources`/`specs` → `spec.destination`/`spec.sources`/`spec.rules`; subject `port` dropped (kept in the conversion-data annotation) |
//! | hub → v1alpha1 | the reverse; rules of kind `UDPRoute` (not expressible before v1alpha3) dropped (annotation) |
//! | v1alpha2 → hub | subject `port` dropped (annotation) |
//! | hub → v1alpha2 | `UDPRoute` rules dropped (annotation) |
//!
//! Dropping a rule in an old version only ever shows *less* access than the
//! hub grants (access is additive), never more.
//!
//! `status` (Meshlet's conditions) has the same shape in every version and is carried as is.

use serde_json::Value;

use super::{v1alpha1, v1alpha2, v1alpha3, GROUP, VERSIONS};
use crate::conversion::{parse, to_value, ConversionError, KindConversion};

/// The hub type.
pub type Hub = v1alpha3::TrafficTarget;

const KIND: &str = "TrafficTarget";

fn kind_up(kind: v1alpha1::RuleKind) -> v1alpha3::RuleKind {
    match kind {
        v1alpha1::RuleKind::HttpRouteGroup => v1alpha3::RuleKind::HttpRouteGroup,
        v1alpha1::RuleKind::TcpRoute => v1alpha3::RuleKind::TcpRoute,
    }
}

fn kind_down(kind: v1alpha3::RuleKind) -> Option<v1alpha1::RuleKind> {
    match kind {
        v1alpha3::RuleKind::HttpRouteGroup => Some(v1alpha1::RuleKind::HttpRouteGroup),
        v1alpha3::RuleKind::TcpRoute => Some(v1alpha1::RuleKind::TcpRoute),
        v1alpha3::RuleKind::UdpRoute => None,
    }
}

fn hub_subject(
    kind: String,
    name: String,
    namespace: Option<String>,
) -> v1alpha3::IdentityBindingSubject {
    v1alpha3::IdentityBindingSubject {
        kind,
        name,
        namespace,
    }
}

/// v1alpha1 → hub (drops subject ports).
pub fn from_v1alpha1(old: v1alpha1::TrafficTarget) -> Hub {
    let subject = |s: v1alpha1::IdentityBindingSubject| hub_subject(s.kind, s.name, s.namespace);
    Hub {
        metadata: old.metadata,
        status: old.status,
        spec: v1alpha3::TrafficTargetSpec {
            destination: subject(old.spec.destination),
            sources: old.spec.sources.into_iter().map(subject).collect(),
            rules: old
                .spec
                .specs
                .into_iter()
                .map(|r| v1alpha3::TrafficTargetRule {
                    kind: kind_up(r.kind),
                    name: r.name,
                    matches: r.matches,
                })
                .collect(),
        },
    }
}

/// hub → v1alpha1 (drops `UDPRoute` rules).
pub fn to_v1alpha1(hub: &Hub) -> v1alpha1::TrafficTarget {
    let subject = |s: &v1alpha3::IdentityBindingSubject| v1alpha1::IdentityBindingSubject {
        kind: s.kind.clone(),
        name: s.name.clone(),
        namespace: s.namespace.clone(),
        port: None,
    };
    v1alpha1::TrafficTarget {
        metadata: hub.metadata.clone(),
        status: hub.status.clone(),
        spec: v1alpha1::TrafficTargetFields {
            destination: subject(&hub.spec.destination),
            sources: hub.spec.sources.iter().map(subject).collect(),
            specs: hub
                .spec
                .rules
                .iter()
                .filter_map(|r| {
                    Some(v1alpha1::TrafficTargetSpec {
                        kind: kind_down(r.kind)?,
                        name: r.name.clone(),
                        matches: r.matches.clone(),
                    })
                })
                .collect(),
        },
    }
}

/// v1alpha2 → hub (drops subject ports).
pub fn from_v1alpha2(old: v1alpha2::TrafficTarget) -> Hub {
    let subject = |s: v1alpha2::IdentityBindingSubject| hub_subject(s.kind, s.name, s.namespace);
    Hub {
        metadata: old.metadata,
        status: old.status,
        spec: v1alpha3::TrafficTargetSpec {
            destination: subject(old.spec.destination),
            sources: old.spec.sources.into_iter().map(subject).collect(),
            rules: old
                .spec
                .rules
                .into_iter()
                .map(|r| v1alpha3::TrafficTargetRule {
                    kind: kind_up(r.kind),
                    name: r.name,
                    matches: r.matches,
                })
                .collect(),
        },
    }
}

/// hub → v1alpha2 (drops `UDPRoute` rules).
pub fn to_v1alpha2(hub: &Hub) -> v1alpha2::TrafficTarget {
    let subject = |s: &v1alpha3::IdentityBindingSubject| v1alpha2::IdentityBindingSubject {
        kind: s.kind.clone(),
        name: s.name.clone(),
        namespace: s.namespace.clone(),
        port: None,
    };
    v1alpha2::TrafficTarget {
        metadata: hub.metadata.clone(),
        status: hub.status.clone(),
        spec: v1alpha2::TrafficTargetSpec {
            destination: subject(&hub.spec.destination),
            sources: hub.spec.sources.iter().map(subject).collect(),
            rules: hub
                .spec
                .rules
                .iter()
                .filter_map(|r| {
                    Some(v1alpha2::TrafficTargetRule {
                        kind: kind_down(r.kind)?,
                        name: r.name.clone(),
                        matches: r.matches.clone(),
                    })
                })
                .collect(),
        },
    }
}

/// TrafficTarget's place in [`crate::conversion::convert`].
pub struct TrafficTargetConversion;

impl KindConversion for TrafficTargetConversion {
    const GROUP: &'static str = GROUP;
    const KIND: &'static str = KIND;
    const VERSIONS: &'static [&'static str] = VERSIONS;
    type Hub = Hub;

    fn to_hub(version: &str, obj: &Value) -> Result<Hub, ConversionError> {
        let av = format!("{GROUP}/{version}");
        match version {
            "v1alpha1" => Ok(from_v1alpha1(parse(&av, KIND, obj)?)),
            "v1alpha2" => Ok(from_v1alpha2(parse(&av, KIND, obj)?)),
            "v1alpha3" => parse(&av, KIND, obj),
            _ => Err(unknown(version)),
        }
    }

    fn from_hub(hub: &Hub, version: &str) -> Result<Value, ConversionError> {
        match version {
            "v1alpha1" => Ok(to_value(&to_v1alpha1(hub))),
            "v1alpha2" => Ok(to_value(&to_v1alpha2(hub))),
            "v1alpha3" => Ok(to_value(hub)),
            _ => Err(unknown(version)),
        }
    }

    /// v1alpha1 and v1alpha2 have no UDPRoute rules: an edit there keeps
    /// the hub's UDPRoute rules.
    fn restore_hub(from: &str, hub: &mut Hub, stored: &Hub) {
        if matches!(from, "v1alpha1" | "v1alpha2") {
            for rule in &stored.spec.rules {
                if rule.kind == v1alpha3::RuleKind::UdpRoute && !hub.spec.rules.contains(rule) {
                    hub.spec.rules.push(rule.clone());
                }
            }
        }
    }

    fn canonical(version: &str, obj: &Value) -> Result<Value, ConversionError> {
        let av = format!("{GROUP}/{version}");
        match version {
            "v1alpha1" => Ok(to_value(&parse::<v1alpha1::TrafficTarget>(&av, KIND, obj)?)),
            "v1alpha2" => Ok(to_value(&parse::<v1alpha2::TrafficTarget>(&av, KIND, obj)?)),
            "v1alpha3" => Ok(to_value(&parse::<v1alpha3::TrafficTarget>(&av, KIND, obj)?)),
            _ => Err(unknown(version)),
        }
    }
}

fn unknown(version: &str) -> ConversionError {
    ConversionError::UnknownVersion {
        kind: KIND.into(),
        group: GROUP.into(),
        version: version.into(),
        served: VERSIONS.join(", "),
    }
}
