//! Where the canary's observations come from: a trait, so the driver can be
//! tested with scripted traffic, and its real implementation reading the
//! TrafficMetrics API for the Deployments behind the canary backend.

use std::future::Future;

use super::machine::Observation;
use crate::backends;
use crate::metrics_api::{Golden, MetricsApi};

/// A source of the canary backend's traffic, one reading per interval.
pub trait CanaryMetrics {
    /// The backend Service's traffic in the latest window.
    fn observe(
        &self,
        namespace: &str,
        backend: &str,
    ) -> impl Future<Output = anyhow::Result<Observation>> + Send;
}

/// Observations from the TrafficMetrics API.
pub struct TrafficMetricsSource {
    /// The client (for the backend's Service and Deployments).
    pub client: kube::Client,
    /// The API.
    pub api: MetricsApi,
}

impl CanaryMetrics for TrafficMetricsSource {
    async fn observe(&self, namespace: &str, backend: &str) -> anyhow::Result<Observation> {
        let deployments = backends::deployments_of(&self.client, namespace, backend).await?;
        if deployments.is_empty() {
            anyhow::bail!(
                "backend Service {namespace}/{backend} selects no Deployment; \
                 its traffic cannot be read from TrafficMetrics"
            );
        }
        let mut parts = Vec::new();
        for deployment in deployments {
            let tm = self.api.one("deployments", namespace, &deployment).await?;
            parts.push(Golden::from_traffic_metrics(&tm)?);
        }
        Ok(observation(&Golden::combine(&parts)))
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
