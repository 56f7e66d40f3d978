//! TrafficMetrics `metrics.smi-spec.io/v1alpha2`: as v1alpha1, plus the
//! `side` of an edge the metrics were measured on and, for metrics of a
//! TrafficSplit branch, the `backend` (apex, leaf, weight).

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ListMeta, ObjectMeta, Time};
use serde::{Deserialize, Deserializer, Serialize};

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
    #[serde(default)]
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
    /// Which side of the connection measured the metrics; unknown when
    /// absent (read from `""` too, which Go clients write for "unset").
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "empty_as_none"
    )]
    pub side: Option<Side>,
    /// The other resource; empty (`{}`) for "any".
    #[serde(default)]
    pub resource: ObjectReference,
}

fn empty_as_none<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Side>, D::Error> {
    match Option::<String>::deserialize(d)?.as_deref() {
        None | Some("") => Ok(None),
        Some("server") => Ok(Some(Side::Server)),
        Some("client") => Ok(Some(Side::Client)),
        Some(other) => Err(serde::de::Error::custom(format!(
            "edge.side: {other:?} is not \"server\" or \"client\""
        ))),
    }
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
    /// The backend service. (The SMI text calls it `name`, the Go type
    /// `leaf`; both are read, `leaf` is written.)
    #[serde(alias = "name")]
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
    /// The label selector the items were filtered with, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    /// The items.
    pub items: Vec<TrafficMetrics>,
}

impl From<super::v1alpha1::TrafficMetrics> for TrafficMetrics {
    /// v1alpha1 → v1alpha2: the edge side is unknown, there is no backend.
    fn from(m: super::v1alpha1::TrafficMetrics) -> Self {
        TrafficMetrics {
            api_version: API_VERSION.into(),
            kind: m.kind,
            metadata: m.metadata,
            timestamp: m.timestamp,
            window: m.window,
            resource: m.resource,
            edge: m.edge.map(|e| Edge {
                direction: e.direction,
                side: None,
                resource: e.resource,
            }),
            backend: None,
            metrics: m.metrics,
        }
    }
}

impl From<TrafficMetrics> for super::v1alpha1::TrafficMetrics {
    /// v1alpha2 → v1alpha1: drops the edge side and the backend, which
    /// v1alpha1 has no place for.
    fn from(m: TrafficMetrics) -> Self {
        super::v1alpha1::TrafficMetrics {
            api_version: super::v1alpha1::API_VERSION.into(),
            kind: m.kind,
            metadata: m.metadata,
            timestamp: m.timestamp,
            window: m.window,
            resource: m.resource,
            edge: m.edge.map(|e| super::v1alpha1::Edge {
                direction: e.direction,
                resource: e.resource,
            }),
            metrics: m.metrics,
        }
    }
}
