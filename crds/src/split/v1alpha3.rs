//! TrafficSplit `split.smi-spec.io/v1alpha3`: whole-number weights and
//! `matches` referencing HTTPRouteGroups (specs.smi-spec.io v1alpha3).

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Spreads traffic for a root service over backend services in proportion
/// to their weights, optionally only for requests matching HTTPRouteGroups.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "split.smi-spec.io",
    version = "v1alpha3",
    kind = "TrafficSplit",
    namespaced,
    shortname = "ts",
    derive = "PartialEq",
    status = "crate::split::status::SmiStatus",
    printcolumn = r#"{"name":"Service","type":"string","description":"The apex service of this split.","jsonPath":".spec.service"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct TrafficSplitSpec {
    /// The root (apex) service that clients call.
    #[schemars(length(min = 1))]
    pub service: String,
    /// The HTTP route groups this split applies to (merged). Requests that
    /// match none go to the root service as usual. Empty: all requests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matches: Vec<TrafficSplitMatch>,
    /// The backend services and their weights.
    pub backends: Vec<TrafficSplitBackend>,
}

/// A reference to a route group whose matches this split applies to.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrafficSplitMatch {
    /// API group of the referenced object (`specs.smi-spec.io`); optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_group: Option<String>,
    /// Kind of the referenced object.
    pub kind: MatchKind,
    /// Name of the referenced object, in the split's namespace.
    #[schemars(length(min = 1))]
    pub name: String,
}

/// Kinds a split may match on.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum MatchKind {
    // An `HTTPRouteGroup` of specs.smi-spec.io.
    #[serde(rename = "HTTPRouteGroup")]
    HttpRouteGroup,
}

/// One backend of a split.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrafficSplitBackend {
    /// Name of the Kubernetes service.
    #[schemars(length(min = 1))]
    pub service: String,
    /// Traffic weight: a whole number, 0 or more.
    #[schemars(schema_with = "crate::schema::weight")]
    pub weight: u64,
}
