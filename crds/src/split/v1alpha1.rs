//! TrafficSplit `split.smi-spec.io/v1alpha1`: weights are Kubernetes
//! quantities (`"500m"`, `"1"`); no `matches`.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::quantity::Quantity;

/// Spreads traffic for a root service over backend services in proportion
/// to their weights.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "split.smi-spec.io",
    version = "v1alpha1",
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
    /// The backend services and their weights.
    pub backends: Vec<TrafficSplitBackend>,
}

/// One backend of a split.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrafficSplitBackend {
    /// Name of the Kubernetes service.
    #[schemars(length(min = 1))]
    pub service: String,
    /// Traffic weight as a Kubernetes quantity, 0 or more (`"1"`, `"500m"`).
    pub weight: Quantity,
}
