//! TrafficSplit conversion, hub = v1alpha4.
//!
//! | from → to | rule |
//! | --- | --- |
//! | v1alpha1 → hub | weight quantity → milli-units (`"1"` → 1000, `"500m"` → 500), see [`crate::quantity`]; unparsable, negative or sub-milli quantities are errors naming the backend |
//! | hub → v1alpha1 | weight `n` → `"n/1000"` when divisible, else `"<n>m"`; `matches` dropped (kept in the conversion-data annotation) |
//! | v1alpha2 ↔ hub | same weights; `matches` dropped going down (annotation) |
//! | v1alpha3 ↔ hub | identical shape |
//!
//! `status` (Meshlet's conditions) has the same shape in every version and is carried as is.

use serde_json::Value;

use super::{v1alpha1, v1alpha2, v1alpha3, v1alpha4, GROUP, VERSIONS};
use crate::conversion::{parse, to_value, ConversionError, KindConversion};
use crate::quantity::Quantity;

/// The hub type.
pub type Hub = v1alpha4::TrafficSplit;

const KIND: &str = "TrafficSplit";

/// v1alpha1 → hub. Fails on a weight that has no integer value.
pub fn from_v1alpha1(old: v1alpha1::TrafficSplit) -> Result<Hub, ConversionError> {
    let backends = old
        .spec
        .backends
        .into_iter()
        .enumerate()
        .map(|(i, b)| {
            let weight = b.weight.to_milli().map_err(|e| ConversionError::Invalid {
                api_version: format!("{GROUP}/v1alpha1"),
                kind: KIND.into(),
                field: format!("spec.backends[{i}].weight"),
                message: e.to_string(),
            })?;
            Ok(v1alpha4::TrafficSplitBackend {
                service: b.service,
                weight,
            })
        })
        .collect::<Result<_, ConversionError>>()?;
    Ok(Hub {
        metadata: old.metadata,
        status: old.status,
        spec: v1alpha4::TrafficSplitSpec {
            service: old.spec.service,
            matches: Vec::new(),
            backends,
        },
    })
}

/// hub → v1alpha1 (drops `matches`).
pub fn to_v1alpha1(hub: &Hub) -> v1alpha1::TrafficSplit {
    v1alpha1::TrafficSplit {
        metadata: hub.metadata.clone(),
        status: hub.status.clone(),
        spec: v1alpha1::TrafficSplitSpec {
            service: hub.spec.service.clone(),
            backends: hub
                .spec
                .backends
                .iter()
                .map(|b| v1alpha1::TrafficSplitBackend {
                    service: b.service.clone(),
                    weight: Quantity::from_milli(b.weight),
                })
                .collect(),
        },
    }
}

/// v1alpha2 → hub.
pub fn from_v1alpha2(old: v1alpha2::TrafficSplit) -> Hub {
    Hub {
        metadata: old.metadata,
        status: old.status,
        spec: v1alpha4::TrafficSplitSpec {
            service: old.spec.service,
            matches: Vec::new(),
            backends: old
                .spec
                .backends
                .into_iter()
                .map(|b| v1alpha4::TrafficSplitBackend {
                    service: b.service,
                    weight: b.weight,
                })
                .collect(),
        },
    }
}

/// hub → v1alpha2 (drops `matches`).
pub fn to_v1alpha2(hub: &Hub) -> v1alpha2::TrafficSplit {
    v1alpha2::TrafficSplit {
        metadata: hub.metadata.clone(),
        status: hub.status.clone(),
        spec: v1alpha2::TrafficSplitSpec {
            service: hub.spec.service.clone(),
            backends: hub
                .spec
                .backends
                .iter()
                .map(|b| v1alpha2::TrafficSplitBackend {
                    service: b.service.clone(),
                    weight: b.weight,
                })
                .collect(),
        },
    }
}

/// v1alpha3 → hub (same shape).
pub fn from_v1alpha3(old: v1alpha3::TrafficSplit) -> Hub {
    Hub {
        metadata: old.metadata,
        status: old.status,
        spec: v1alpha4::TrafficSplitSpec {
            service: old.spec.service,
            matches: old
                .spec
                .matches
                .into_iter()
                .map(|m| v1alpha4::TrafficSplitMatch {
                    api_group: m.api_group,
                    kind: match m.kind {
                        v1alpha3::MatchKind::HttpRouteGroup => v1alpha4::MatchKind::HttpRouteGroup,
                    },
                    name: m.name,
                })
                .collect(),
            backends: old
                .spec
                .backends
                .into_iter()
                .map(|b| v1alpha4::TrafficSplitBackend {
                    service: b.service,
                    weight: b.weight,
                })
                .collect(),
        },
    }
}

/// hub → v1alpha3 (same shape).
pub fn to_v1alpha3(hub: &Hub) -> v1alpha3::TrafficSplit {
    v1alpha3::TrafficSplit {
        metadata: hub.metadata.clone(),
        status: hub.status.clone(),
        spec: v1alpha3::TrafficSplitSpec {
            service: hub.spec.service.clone(),
            matches: hub
                .spec
                .matches
                .iter()
                .map(|m| v1alpha3::TrafficSplitMatch {
                    api_group: m.api_group.clone(),
                    kind: match m.kind {
                        v1alpha4::MatchKind::HttpRouteGroup => v1alpha3::MatchKind::HttpRouteGroup,
                    },
                    name: m.name.clone(),
                })
                .collect(),
            backends: hub
                .spec
                .backends
                .iter()
                .map(|b| v1alpha3::TrafficSplitBackend {
                    service: b.service.clone(),
                    weight: b.weight,
                })
                .collect(),
        },
    }
}

/// TrafficSplit's place in [`crate::conversion::convert`].
pub struct TrafficSplitConversion;

impl KindConversion for TrafficSplitConversion {
    const GROUP: &'static str = GROUP;
    const KIND: &'static str = KIND;
    const VERSIONS: &'static [&'static str] = VERSIONS;
    type Hub = Hub;

    fn to_hub(version: &str, obj: &Value) -> Result<Hub, ConversionError> {
        let av = format!("{GROUP}/{version}");
        match version {
            "v1alpha1" => from_v1alpha1(parse(&av, KIND, obj)?),
            "v1alpha2" => Ok(from_v1alpha2(parse(&av, KIND, obj)?)),
            "v1alpha3" => Ok(from_v1alpha3(parse(&av, KIND, obj)?)),
            "v1alpha4" => parse(&av, KIND, obj),
            _ => Err(unknown(version)),
        }
    }

    fn from_hub(hub: &Hub, version: &str) -> Result<Value, ConversionError> {
        match version {
            "v1alpha1" => Ok(to_value(&to_v1alpha1(hub))),
            "v1alpha2" => Ok(to_value(&to_v1alpha2(hub))),
            "v1alpha3" => Ok(to_value(&to_v1alpha3(hub))),
            "v1alpha4" => Ok(to_value(hub)),
            _ => Err(unknown(version)),
        }
    }

    /// v1alpha1 and v1alpha2 have no `matches`: an edit there keeps the
    /// hub's matches (a split narrowed to some requests stays narrowed).
    fn restore_hub(from: &str, hub: &mut Hub, stored: &Hub) {
        if matches!(from, "v1alpha1" | "v1alpha2") && hub.spec.matches.is_empty() {
            hub.spec.matches = stored.spec.matches.clone();
        }
    }

    fn canonical(version: &str, obj: &Value) -> Result<Value, ConversionError> {
        let av = format!("{GROUP}/{version}");
        match version {
            "v1alpha1" => Ok(to_value(&parse::<v1alpha1::TrafficSplit>(&av, KIND, obj)?)),
            "v1alpha2" => Ok(to_value(&parse::<v1alpha2::TrafficSplit>(&av, KIND, obj)?)),
            "v1alpha3" => Ok(to_value(&parse::<v1alpha3::TrafficSplit>(&av, KIND, obj)?)),
            "v1alpha4" => Ok(to_value(&parse::<v1alpha4::TrafficSplit>(&av, KIND, obj)?)),
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
