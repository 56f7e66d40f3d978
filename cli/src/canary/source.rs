//! Where the canary's observations come from: a trait, so the driver can be
//! tested with scripted traffic, and its real implementation reading the
//! TrafficMetrics API for the Deployments behind the canary backend.

use std::future::Future;

use super::machine::Observation;
use crate::metrics_api::{Golden, MetricsApi};
use anyhow::Context as _;

/// A source of the canary backend's traffic, one reading per interval.
pub trait CanaryMetrics {
    /// The backend Service's traffic in the latest window.
    fn observe(
        &self,
        namespace: &str,
        backend: &str,
    ) -> impl Future<Output = anyhow::Result<Observation>> + Send;
}

/// Observations from the TrafficMetrics API: the split's edge to the canary
/// backend (the traffic meshed clients sent to it through the split).
pub struct TrafficMetricsSource {
    /// The API.
    pub api: MetricsApi,
    /// The TrafficSplit.
    pub split: String,
}

impl CanaryMetrics for TrafficMetricsSource {
    async fn observe(&self, namespace: &str, backend: &str) -> anyhow::Result<Observation> {
        let list = self.api.split_backends(namespace, &self.split).await?;
        let item = list
            .items
            .iter()
            .find(|tm| tm.backend.as_ref().is_some_and(|b| b.leaf == backend))
            .with_context(|| {
                format!(
                    "the TrafficMetrics of TrafficSplit {namespace}/{} have no backend {backend}",
                    self.split
                )
            })?;
        Ok(observation(&Golden::from_v1alpha2(item)?))
    }
}

/// The machine's view of golden metrics.
pub fn observation(golden: &Golden) -> Observation {
    Observation {
        requests: golden.requests(),
        failures: golden.failure,
        p99_ms: golden.p99_ms,
    }
}
