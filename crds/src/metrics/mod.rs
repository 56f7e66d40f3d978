//! `metrics.smi-spec.io` TrafficMetrics and TrafficMetricsList, v1alpha1
//! and v1alpha2. This group is served by an aggregated API server (the
//! operator), not by a CRD, so these are plain serde types.

pub mod v1alpha1;
pub mod v1alpha2;

/// The API group.
pub const GROUP: &str = "metrics.smi-spec.io";

/// The versions the operator registers an APIService for, each with its
/// `versionPriority` (the newest is preferred). `meshlet check` checks one
/// line per entry.
pub const SERVED_VERSIONS: &[(&str, i32)] = &[("v1alpha1", 10), ("v1alpha2", 20)];

/// Metric names every TrafficMetrics carries, in the order SMI lists them.
pub const METRIC_NAMES: &[&str] = &[
    "p99_response_latency",
    "p90_response_latency",
    "p50_response_latency",
    "success_count",
    "failure_count",
];

/// The unit of the latency metrics.
pub const UNIT_MILLISECONDS: &str = "ms";
