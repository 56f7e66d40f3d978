//! The `status` Meshlet writes on TrafficSplits and TrafficTargets (every
//! served version, same shape): Kubernetes conditions saying whether the
//! object is applied and whether everything it refers to exists. A Meshlet
//! extension: upstream SMI CRDs have no status.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Condition type: the object is applied as written (`False`: partly or
/// not at all; the reason and message say which field and why).
pub const ACCEPTED: &str = "Accepted";
/// Condition type: every object it refers to (services, routes,
/// ServiceAccounts) exists.
pub const RESOLVED_REFS: &str = "ResolvedRefs";

/// Status of an SMI object, written by the operator (field manager
/// `meshlet-operator`) through the status subresource.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SmiStatus {
    /// `Accepted` and `ResolvedRefs`, one of each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}
