//! TrafficMetrics `metrics.smi-spec.io/v1alpha1`: metrics of one resource
//! (pod, deployment, namespace…) or of one edge between two resources, over
//! a time window.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ListMeta, ObjectMeta, Time};
use serde::{Deserialize, Serialize};

use crate::quantity::Quantity;

/// The apiVersion of this module's types.
pub const API_VERSION: &str = "metrics.smi-spec.io/v1alpha1";

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
    #[serde(default)]
    pub edge: Option<Edge>,
    /// The metrics.
    pub metrics: Vec<Metric>,
}

/// The other resource of an edge.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Edge {
    /// Whether traffic goes to or comes from `resource`.
    pub direction: Direction,
    /// The other resource; empty (`{}`) for "any".
    #[serde(default)]
    pub resource: ObjectReference,
}

/// Direction of an edge, seen from the TrafficMetrics' resource.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// The resource sends traffic to the edge's resource.
    To,
    /// The resource receives traffic from the edge's resource.
    From,
}

/// One named metric value.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Metric {
    /// Metric name, one of [`super::METRIC_NAMES`].
    pub name: String,
    /// Unit (`ms` for latencies); absent for counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// The value, as a Kubernetes quantity (`"17"`, `"2500m"`); read from a
    /// string or a number, written as a string.
    pub value: Quantity,
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
    /// The label selector the items were filtered with, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    /// The items.
    pub items: Vec<TrafficMetrics>,
}
