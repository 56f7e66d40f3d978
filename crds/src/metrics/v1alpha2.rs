//! TrafficMetrics `metrics.smi-spec.io/v1alpha2`: as v1alpha1, plus the
//! `side` of an edge the metrics were measured on and, for metrics of a
//! TrafficSplit branch, the `backend` (apex, leaf, weight).

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ListMeta, ObjectMeta, Time};
use serde::{Deserialize, Serialize};

pub use super::v1alpha1::{Direction, Metric};

/// The apiVersion of this module's types.
pub const API_VERSION: &str = "metrics.smi-spec.io/v1alpha2";

/// Metrics of one resource, or of one edge when `edge` is set.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TrafficMetrics {
    /// Always [`API_VERSION`].
    pub api_version: String,
    /// Always `TrafficMetrics`.
    pub kind: String,
    /// Name and namespace are those of `resource`.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// End of the window the metrics were collected over.
    pub timestamp: Time,
    /// Length of the window, as a Go duration (`30s`).
    pub window: String,
    /// The resource the metrics are about.
    pub resource: ObjectReference,
    /// The other end, for edge metrics; `null` for resource metrics.
    pub edge: Option<Edge>,
    /// The TrafficSplit branch these metrics are for, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<Backend>,
    /// The metrics.
    pub metrics: Vec<Metric>,
}

/// The other resource of an edge.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Edge {
    /// Whether traffic goes to or comes from `resource`.
    pub direction: Direction,
    /// Which side of the connection measured the metrics.
    pub side: Side,
    /// The other resource.
    pub resource: ObjectReference,
}

/// The side of a connection that measured edge metrics.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// Measured by the server (the destination's proxy).
    Server,
    /// Measured by the client (the source's proxy).
    Client,
}

/// A branch of a TrafficSplit.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Backend {
    /// The split's root (apex) service.
    pub apex: String,
    /// The backend service.
    pub leaf: String,
    /// The backend's weight.
    pub weight: u64,
}

/// A list of TrafficMetrics for resources of one kind or the edges of one resource.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TrafficMetricsList {
    /// Always [`API_VERSION`].
    pub api_version: String,
    /// Always `TrafficMetricsList`.
    pub kind: String,
    /// List metadata.
    #[serde(default)]
    pub metadata: ListMeta,
    /// The resource (or kind, with an empty name) the list is about.
    pub resource: ObjectReference,
    /// The items.
    pub items: Vec<TrafficMetrics>,
}
