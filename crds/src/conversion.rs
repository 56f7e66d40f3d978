//! Version conversion for every SMI kind Meshlet serves: one entry point,
//! [`convert`], that the conversion webhook calls with any served version
//! and a desired one.
//!
//! # How
//!
//! Each kind converts hub-and-spoke: every version converts to and from the
//! newest version (the hub). Converting `A → B` is `A → hub → B`.
//!
//! # Nothing is lost: the conversion-data annotation
//!
//! Where the target version cannot hold everything the source version says
//! (a newer field, an older field that was removed, a quantity written in a
//! non-canonical way), the source object's body is kept, as JSON, in the
//! annotation [`CONVERSION_DATA`] of the converted object:
//! `{"apiVersion": "<source apiVersion>", <the source's top-level fields but
//! apiVersion, kind and metadata>}` — the approach Kubernetes API
//! conversions take (Cluster API's `conversion-data`).
//!
//! Converting back to that apiVersion restores the stored body exactly, as
//! long as the object still says what the stored body says in the version
//! it is in now (i.e. nobody edited it meanwhile). If it was edited in an
//! old version and is converted to the hub, the edit is kept and the fields
//! the old version has no place for (a split's `matches`, UDPRoute rules,
//! headers, TCP ports) are put back from the stored hub body
//! ([`KindConversion::restore_hub`]), so an unrelated edit through an old
//! client does not, say, widen a split to all traffic. In the other
//! direction (an edit through the hub, read in an old version) the edit
//! wins and the stored old-only data (a TrafficTarget `port`, the spelling
//! of a quantity) is dropped: Meshlet gives it no meaning.
//! So newest → old → newest and old → newest → old are both lossless, and
//! a conversion that loses nothing adds no annotation.

use kube::core::conversion::{ConversionRequest, ConversionResponse, ConversionReview};
use kube::core::Status;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::contract::annotations::CONVERSION_DATA;

/// Why an object could not be converted. Messages name the object and, for
/// invalid content, the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConversionError {
    /// The object has no string `apiVersion`.
    #[error("apiVersion: missing or not a string")]
    MissingApiVersion,
    /// The object has no string `kind`.
    #[error("kind: missing or not a string")]
    MissingKind,
    /// The desired apiVersion is not `<group>/<version>`.
    #[error("desired apiVersion {0:?} is not of the form <group>/<version>")]
    BadDesiredApiVersion(String),
    /// The kind/group is not one Meshlet converts.
    #[error("{kind} in {api_version} is not a kind Meshlet converts")]
    UnknownKind {
        /// The object's kind.
        kind: String,
        /// The object's apiVersion.
        api_version: String,
    },
    /// The version is not served for this kind.
    #[error("{kind}: version {version:?} of {group} is not served (served: {served})")]
    UnknownVersion {
        /// The kind.
        kind: String,
        /// The group.
        group: String,
        /// The unknown version.
        version: String,
        /// The served versions, comma-separated.
        served: String,
    },
    /// Conversion across API groups was asked for.
    #[error("{kind}: cannot convert from group {from} to group {to}")]
    GroupMismatch {
        /// The kind.
        kind: String,
        /// The object's group.
        from: String,
        /// The desired group.
        to: String,
    },
    /// The object does not fit its version's type.
    #[error("{api_version} {kind}: {field}: {message}")]
    Invalid {
        /// The object's apiVersion.
        api_version: String,
        /// The kind.
        kind: String,
        /// Path of the offending field (`spec.backends[0].weight`), `.` for the object.
        field: String,
        /// What is wrong.
        message: String,
    },
}

/// One SMI kind's versions and its conversions to and from the hub.
pub trait KindConversion {
    /// API group, e.g. `split.smi-spec.io`.
    const GROUP: &'static str;
    /// Kind, e.g. `TrafficSplit`.
    const KIND: &'static str;
    /// Served versions, oldest first; the last is the hub.
    const VERSIONS: &'static [&'static str];
    /// The hub type (the newest version).
    type Hub: Serialize + DeserializeOwned;

    /// Reads `obj` (in `version`) and converts it to the hub.
    fn to_hub(version: &str, obj: &Value) -> Result<Self::Hub, ConversionError>;
    /// Converts the hub to `version` and writes it as JSON (with apiVersion and kind).
    fn from_hub(hub: &Self::Hub, version: &str) -> Result<Value, ConversionError>;
    /// Reads `obj` as `version` and writes it back: the canonical JSON form.
    fn canonical(version: &str, obj: &Value) -> Result<Value, ConversionError>;
    /// After an edit in old version `from`, puts back into `hub` what `from`
    /// cannot express, from `stored` (the hub body from before the edit).
    /// Only fields `from` has no place for may be touched, so the edit
    /// itself is kept whole. Default: nothing to put back.
    fn restore_hub(from: &str, hub: &mut Self::Hub, stored: &Self::Hub) {
        let _ = (from, hub, stored);
    }
}

/// Converts `obj`, any served version of a Meshlet-converted SMI kind, to
/// `desired_api_version` (`group/version`). apiVersion, kind and metadata
/// are carried over; metadata changes only in the [`CONVERSION_DATA`]
/// annotation.
pub fn convert(obj: &Value, desired_api_version: &str) -> Result<Value, ConversionError> {
    let api_version = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .ok_or(ConversionError::MissingApiVersion)?;
    let kind = obj
        .get("kind")
        .and_then(Value::as_str)
        .ok_or(ConversionError::MissingKind)?;
    let (group, _) =
        split_api_version(api_version).ok_or_else(|| ConversionError::UnknownKind {
            kind: kind.to_string(),
            api_version: api_version.to_string(),
        })?;
    match (group, kind) {
        (crate::split::GROUP, "TrafficSplit") => {
            convert_kind::<crate::split::convert::TrafficSplitConversion>(obj, desired_api_version)
        }
        (crate::access::GROUP, "TrafficTarget") => convert_kind::<
            crate::access::convert::TrafficTargetConversion,
        >(obj, desired_api_version),
        (crate::specs::GROUP, "HTTPRouteGroup") => convert_kind::<
            crate::specs::convert::HttpRouteGroupConversion,
        >(obj, desired_api_version),
        (crate::specs::GROUP, "TCPRoute") => {
            convert_kind::<crate::specs::convert::TcpRouteConversion>(obj, desired_api_version)
        }
        (crate::specs::GROUP, "UDPRoute") => {
            convert_kind::<crate::specs::convert::UdpRouteConversion>(obj, desired_api_version)
        }
        _ => Err(ConversionError::UnknownKind {
            kind: kind.to_string(),
            api_version: api_version.to_string(),
        }),
    }
}

/// [`convert`] for a [`kube::core::DynamicObject`].
pub fn convert_dynamic(
    obj: &kube::core::DynamicObject,
    desired_api_version: &str,
) -> Result<kube::core::DynamicObject, ConversionError> {
    let converted = convert(&to_value(obj), desired_api_version)?;
    parse(desired_api_version, "DynamicObject", &converted)
}

/// Answers an `apiextensions.k8s.io/v1` ConversionReview: every object
/// converted with [`convert`], or a failure naming the first object that
/// could not be (the API server then fails the whole request with that
/// message). This is all a conversion webhook computes.
pub fn review(review: ConversionReview) -> ConversionReview {
    let request = match ConversionRequest::try_from(review) {
        Ok(request) => request,
        Err(e) => {
            return ConversionResponse::invalid(Status::failure(&e.to_string(), "BadRequest"))
                .into_review()
        }
    };
    let converted: Result<Vec<Value>, String> = request
        .objects
        .iter()
        .map(|obj| {
            convert(obj, &request.desired_api_version).map_err(|e| {
                let name = obj
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let namespace = obj
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .map(|ns| format!("{ns}/"))
                    .unwrap_or_default();
                format!(
                    "converting {namespace}{name} to {}: {e}",
                    request.desired_api_version
                )
            })
        })
        .collect();
    let response = ConversionResponse::for_request(request);
    match converted {
        Ok(objects) => response.success(objects),
        Err(message) => response.failure(Status::failure(&message, "Invalid")),
    }
    .into_review()
}

/// Converts `obj` to the hub (newest) version of its kind.
pub fn to_hub_value(obj: &Value) -> Result<Value, ConversionError> {
    let api_version = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .ok_or(ConversionError::MissingApiVersion)?;
    let kind = obj
        .get("kind")
        .and_then(Value::as_str)
        .ok_or(ConversionError::MissingKind)?;
    let hub = match (split_api_version(api_version).map(|(g, _)| g), kind) {
        (Some(crate::split::GROUP), "TrafficSplit") => crate::split::VERSIONS.last(),
        (Some(crate::access::GROUP), "TrafficTarget") => crate::access::VERSIONS.last(),
        (Some(crate::specs::GROUP), "HTTPRouteGroup") => {
            crate::specs::HTTP_ROUTE_GROUP_VERSIONS.last()
        }
        (Some(crate::specs::GROUP), "TCPRoute") => crate::specs::TCP_ROUTE_VERSIONS.last(),
        (Some(crate::specs::GROUP), "UDPRoute") => crate::specs::UDP_ROUTE_VERSIONS.last(),
        _ => None,
    };
    let hub = hub.ok_or_else(|| ConversionError::UnknownKind {
        kind: kind.to_string(),
        api_version: api_version.to_string(),
    })?;
    let group = split_api_version(api_version)
        .map(|(g, _)| g)
        .unwrap_or_default();
    convert(obj, &format!("{group}/{hub}"))
}

fn split_api_version(api_version: &str) -> Option<(&str, &str)> {
    api_version
        .split_once('/')
        .filter(|(g, v)| !g.is_empty() && !v.is_empty())
}

fn check_version<K: KindConversion>(version: &str) -> Result<(), ConversionError> {
    if K::VERSIONS.contains(&version) {
        Ok(())
    } else {
        Err(ConversionError::UnknownVersion {
            kind: K::KIND.to_string(),
            group: K::GROUP.to_string(),
            version: version.to_string(),
            served: K::VERSIONS.join(", "),
        })
    }
}

/// Converts one kind's object to `desired_api_version`, with the
/// conversion-data annotation rule from the module docs.
pub fn convert_kind<K: KindConversion>(
    obj: &Value,
    desired_api_version: &str,
) -> Result<Value, ConversionError> {
    let api_version = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .ok_or(ConversionError::MissingApiVersion)?;
    let (from_group, from) =
        split_api_version(api_version).ok_or_else(|| ConversionError::UnknownKind {
            kind: K::KIND.to_string(),
            api_version: api_version.to_string(),
        })?;
    let (to_group, to) = split_api_version(desired_api_version)
        .ok_or_else(|| ConversionError::BadDesiredApiVersion(desired_api_version.to_string()))?;
    if from_group != K::GROUP || to_group != K::GROUP {
        return Err(ConversionError::GroupMismatch {
            kind: K::KIND.to_string(),
            from: from_group.to_string(),
            to: to_group.to_string(),
        });
    }
    check_version::<K>(from)?;
    check_version::<K>(to)?;
    if from == to {
        // Already in the desired version (a ConversionReview may carry such
        // objects): handed back untouched.
        return Ok(obj.clone());
    }

    let source = K::canonical(from, obj)?;
    let metadata = metadata_without_conversion_data(obj);

    // 1. Exact restore from the annotation, when it was written for `to` and
    //    the object still says what it said. Unusable stored data is ignored.
    if let Some(stored) = stored_conversion_data(obj) {
        if stored.get("apiVersion").and_then(Value::as_str) == Some(desired_api_version) {
            let candidate = assemble(&stored, desired_api_version, K::KIND, metadata.clone());
            let restored = K::canonical(to, &candidate).ok().filter(|candidate| {
                K::to_hub(to, candidate)
                    .and_then(|hub| K::from_hub(&hub, from))
                    .is_ok_and(|projected| body(&projected) == body(&source))
            });
            if let Some(restored) = restored {
                return Ok(restored);
            }
        }
    }

    // 2. Plain conversion through the hub (putting back hub-only fields
    //    after an edit in an old version); keep the source body in the
    //    annotation when converting back would not give it again.
    let mut hub = K::to_hub(from, &source)?;
    let hub_version = K::VERSIONS.last().copied().unwrap_or_default();
    if to == hub_version {
        let stored_hub = stored_conversion_data(obj)
            .filter(|stored| {
                stored.get("apiVersion").and_then(Value::as_str) == Some(desired_api_version)
            })
            .and_then(|stored| {
                let candidate = assemble(&stored, desired_api_version, K::KIND, metadata.clone());
                K::to_hub(to, &candidate).ok()
            });
        if let Some(stored_hub) = stored_hub {
            K::restore_hub(from, &mut hub, &stored_hub);
        }
    }
    let mut out = K::from_hub(&hub, to)?;
    set_metadata(&mut out, metadata);
    let back = K::from_hub(&K::to_hub(to, &out)?, from)?;
    if body(&back) != body(&source) {
        let mut stored = body(&source);
        stored.insert("apiVersion".into(), Value::String(api_version.to_string()));
        let text = serde_json::to_string(&Value::Object(stored)).expect("JSON values serialize");
        set_annotation(&mut out, CONVERSION_DATA, text);
    }
    Ok(out)
}

/// Deserializes `obj` as `T`, naming the offending field on error.
pub fn parse<T: DeserializeOwned>(
    api_version: &str,
    kind: &str,
    obj: &Value,
) -> Result<T, ConversionError> {
    // Objects always carry metadata on the API server; tolerate its absence
    // elsewhere (the Rust types require the field).
    let with_metadata;
    let obj = if obj.get("metadata").is_none() && obj.is_object() {
        let mut copy = obj.clone();
        copy["metadata"] = Value::Object(Map::new());
        with_metadata = copy;
        &with_metadata
    } else {
        obj
    };
    serde_path_to_error::deserialize(obj).map_err(|e| {
        let field = e.path().to_string();
        ConversionError::Invalid {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            field,
            message: e.into_inner().to_string(),
        }
    })
}

/// Serializes a typed object to JSON.
pub fn to_value<T: Serialize>(obj: &T) -> Value {
    serde_json::to_value(obj).expect("SMI types serialize to JSON")
}

/// The object's top-level fields but apiVersion, kind and metadata.
fn body(obj: &Value) -> Map<String, Value> {
    let mut map = obj.as_object().cloned().unwrap_or_default();
    for key in ["apiVersion", "kind", "metadata"] {
        map.remove(key);
    }
    map
}

fn assemble(stored: &Value, api_version: &str, kind: &str, metadata: Value) -> Value {
    let mut map = body(stored);
    map.insert("apiVersion".into(), Value::String(api_version.to_string()));
    map.insert("kind".into(), Value::String(kind.to_string()));
    map.insert("metadata".into(), metadata);
    Value::Object(map)
}

fn stored_conversion_data(obj: &Value) -> Option<Value> {
    let text = obj
        .pointer("/metadata/annotations")?
        .get(CONVERSION_DATA)?
        .as_str()?;
    serde_json::from_str(text).ok()
}

fn metadata_without_conversion_data(obj: &Value) -> Value {
    let mut metadata = obj
        .get("metadata")
        .cloned()
        .unwrap_or_else(|| Value::Object(Map::new()));
    if let Some(annotations) = metadata
        .get_mut("annotations")
        .and_then(Value::as_object_mut)
    {
        annotations.remove(CONVERSION_DATA);
        if annotations.is_empty() {
            metadata.as_object_mut().map(|m| m.remove("annotations"));
        }
    }
    metadata
}

fn set_metadata(obj: &mut Value, metadata: Value) {
    if let Some(map) = obj.as_object_mut() {
        map.insert("metadata".into(), metadata);
    }
}

fn set_annotation(obj: &mut Value, key: &str, value: String) {
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    let metadata = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(metadata) = metadata.as_object_mut() else {
        return;
    };
    let annotations = metadata
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(annotations) = annotations.as_object_mut() {
        annotations.insert(key.to_string(), Value::String(value));
    }
}
