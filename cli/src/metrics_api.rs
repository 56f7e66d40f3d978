//! The SMI TrafficMetrics API (`/apis/metrics.smi-spec.io/v1alpha1`) through
//! the kube client, and the golden metrics read from its answers. When the
//! API is missing or down, the error says which and what to run.

use std::time::Duration;

use anyhow::Context as _;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use meshlet_crds::metrics::v1alpha1::{Metric, TrafficMetrics, TrafficMetricsList};
use meshlet_crds::metrics::v1alpha2;
use serde::de::DeserializeOwned;

use crate::duration::parse_duration;

/// Path of the API group version.
pub const API_PATH: &str = "/apis/metrics.smi-spec.io/v1alpha1";
/// Name of the APIService that registers it.
pub const APISERVICE: &str = "v1alpha1.metrics.smi-spec.io";
/// Name of the APIService of v1alpha2 (the TrafficSplit edges `stat ts`
/// and `canary` read); registered separately, so it can be missing alone.
pub const APISERVICE_V1ALPHA2: &str = "v1alpha2.metrics.smi-spec.io";

/// The APIService that serves `path`.
pub fn apiservice_of(path: &str) -> &'static str {
    if path.starts_with("/apis/metrics.smi-spec.io/v1alpha2/") {
        APISERVICE_V1ALPHA2
    } else {
        APISERVICE
    }
}

/// Path of one resource's metrics (`name` given) or of every resource of
/// the kind (`name` none). `plural` is `deployments`, `pods`,
/// `namespaces`…; namespaces are cluster-scoped.
pub fn resource_path(plural: &str, namespace: &str, name: Option<&str>) -> String {
    let base = if plural == "namespaces" {
        format!("{API_PATH}/namespaces")
    } else {
        format!("{API_PATH}/namespaces/{namespace}/{plural}")
    };
    match name {
        Some(name) => format!("{base}/{name}"),
        None => base,
    }
}

/// Path of a TrafficSplit's per-backend metrics (SMI v1alpha2 edges).
pub fn split_edges_path(namespace: &str, split: &str) -> String {
    format!("/apis/metrics.smi-spec.io/v1alpha2/namespaces/{namespace}/trafficsplits/{split}/edges")
}

/// Golden metrics of one resource over a window.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Golden {
    /// Successful responses in the window.
    pub success: u64,
    /// Failed responses in the window.
    pub failure: u64,
    /// Median latency, ms; `None` without traffic.
    pub p50_ms: Option<f64>,
    /// 99th percentile latency, ms; `None` without traffic.
    pub p99_ms: Option<f64>,
    /// The window.
    pub window: Duration,
}

impl Golden {
    /// Reads the metrics of one TrafficMetrics object.
    pub fn from_traffic_metrics(tm: &TrafficMetrics) -> anyhow::Result<Golden> {
        Golden::from_metrics(&tm.metrics, &tm.window)
    }

    /// Reads the metrics of one v1alpha2 TrafficMetrics object (a split's backend).
    pub fn from_v1alpha2(tm: &v1alpha2::TrafficMetrics) -> anyhow::Result<Golden> {
        Golden::from_metrics(&tm.metrics, &tm.window)
    }

    /// Reads named metrics over a window (a Go duration).
    pub fn from_metrics(metrics: &[Metric], window: &str) -> anyhow::Result<Golden> {
        let value = |name: &str| -> anyhow::Result<Option<f64>> {
            metrics
                .iter()
                .find(|m| m.name == name)
                .map(|m| {
                    m.value
                        .to_milli()
                        .map(|milli| milli as f64 / 1000.0)
                        .with_context(|| format!("metric {name}: value {:?}", m.value.0))
                })
                .transpose()
        };
        let window =
            parse_duration(window).map_err(|e| anyhow::anyhow!("window {window:?}: {e}"))?;
        let success = value("success_count")?.unwrap_or(0.0) as u64;
        let failure = value("failure_count")?.unwrap_or(0.0) as u64;
        let traffic = success + failure > 0;
        Ok(Golden {
            success,
            failure,
            p50_ms: value("p50_response_latency")?.filter(|_| traffic),
            p99_ms: value("p99_response_latency")?.filter(|_| traffic),
            window,
        })
    }

    /// Responses in the window.
    pub fn requests(&self) -> u64 {
        self.success + self.failure
    }

    /// Share of successful responses, `None` without traffic.
    pub fn success_rate(&self) -> Option<f64> {
        (self.requests() > 0).then(|| self.success as f64 / self.requests() as f64)
    }

    /// Requests per second over the window.
    pub fn rps(&self) -> f64 {
        let secs = self.window.as_secs_f64();
        if secs > 0.0 {
            self.requests() as f64 / secs
        } else {
            0.0
        }
    }

    /// Several resources together (the Deployments behind one backend):
    /// counts add up, the window is the longest, and the latencies are the
    /// highest of the parts (an upper bound: percentiles do not add).
    pub fn combine(parts: &[Golden]) -> Golden {
        let max = |f: fn(&Golden) -> Option<f64>| parts.iter().filter_map(f).reduce(f64::max);
        Golden {
            success: parts.iter().map(|g| g.success).sum(),
            failure: parts.iter().map(|g| g.failure).sum(),
            p50_ms: max(|g| g.p50_ms),
            p99_ms: max(|g| g.p99_ms),
            window: parts.iter().map(|g| g.window).max().unwrap_or_default(),
        }
    }
}

/// The TrafficMetrics API of one cluster.
#[derive(Clone)]
pub struct MetricsApi {
    client: kube::Client,
}

impl MetricsApi {
    /// The API through `client`.
    pub fn new(client: kube::Client) -> Self {
        MetricsApi { client }
    }

    /// GETs `path` and decodes it; a missing or unavailable API becomes an
    /// error that says so (see [`api_unavailable`]).
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let request = http::Request::get(path).body(Vec::new())?;
        match self.client.request_text(request).await {
            Ok(text) => serde_json::from_str(&text)
                .with_context(|| format!("GET {path}: not a TrafficMetrics answer")),
            Err(kube::Error::Api(status)) if matches!(status.code, 404 | 503) => {
                if let Some(problem) = api_unavailable(&self.client, apiservice_of(path)).await {
                    anyhow::bail!("{problem}");
                }
                Err(anyhow::anyhow!(
                    "GET {path}: {} ({})",
                    status.message,
                    status.code
                ))
            }
            Err(e) => Err(e).with_context(|| format!("GET {path}")),
        }
    }

    /// Metrics of one resource.
    pub async fn one(
        &self,
        plural: &str,
        namespace: &str,
        name: &str,
    ) -> anyhow::Result<TrafficMetrics> {
        self.get(&resource_path(plural, namespace, Some(name)))
            .await
    }

    /// A TrafficSplit's backends (v1alpha2 edges, one item per backend with
    /// its apex, leaf and weight): the traffic meshed clients sent to each.
    pub async fn split_backends(
        &self,
        namespace: &str,
        split: &str,
    ) -> anyhow::Result<v1alpha2::TrafficMetricsList> {
        self.get(&split_edges_path(namespace, split)).await
    }

    /// Metrics of every resource of a kind.
    pub async fn list(&self, plural: &str, namespace: &str) -> anyhow::Result<TrafficMetricsList> {
        self.get(&resource_path(plural, namespace, None)).await
    }
}

/// Why the TrafficMetrics API cannot answer, or `None` when `apiservice`
/// (the version asked for) is registered and Available (the failure is
/// elsewhere).
pub async fn api_unavailable(client: &kube::Client, apiservice: &str) -> Option<String> {
    let api: kube::Api<APIService> = kube::Api::all(client.clone());
    match api.get_opt(apiservice).await {
        Ok(None) => Some(format!(
            "the TrafficMetrics API is not installed: no APIService {apiservice}; \
             it comes with Meshlet's operator when the chart value metricsApi.enabled=true \
             (`meshlet check` shows what else is missing)"
        )),
        Ok(Some(service)) => apiservice_problem(&service).map(|problem| {
            format!(
                "the TrafficMetrics API is not available: {problem}; \
                 check meshlet-operator (`meshlet check`)"
            )
        }),
        Err(e) => Some(format!(
            "the TrafficMetrics API did not answer and APIService {apiservice} cannot be read: {e}"
        )),
    }
}

/// What is wrong with an APIService, from its `Available` condition.
pub fn apiservice_problem(service: &APIService) -> Option<String> {
    let available = service
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Available"));
    match available {
        Some(c) if c.status == "True" => None,
        Some(c) => Some(format!(
            "APIService {} is not Available ({}: {})",
            service.metadata.name.as_deref().unwrap_or(APISERVICE),
            c.reason.as_deref().unwrap_or("no reason"),
            c.message.as_deref().unwrap_or("no message")
        )),
        None => Some(format!(
            "APIService {} has no Available condition yet",
            service.metadata.name.as_deref().unwrap_or(APISERVICE)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            resource_path("deployments", "shop", Some("web")),
            "/apis/metrics.smi-spec.io/v1alpha1/namespaces/shop/deployments/web"
        );
        assert_eq!(
            resource_path("pods", "shop", None),
            "/apis/metrics.smi-spec.io/v1alpha1/namespaces/shop/pods"
        );
        assert_eq!(
            resource_path("namespaces", "ignored", Some("shop")),
            "/apis/metrics.smi-spec.io/v1alpha1/namespaces/shop"
        );
        assert_eq!(
            resource_path("namespaces", "ignored", None),
            "/apis/metrics.smi-spec.io/v1alpha1/namespaces"
        );
    }

    #[test]
    fn each_path_is_served_by_its_versions_apiservice() {
        assert_eq!(
            apiservice_of(&resource_path("deployments", "shop", None)),
            "v1alpha1.metrics.smi-spec.io"
        );
        assert_eq!(
            apiservice_of(&split_edges_path("shop", "web")),
            "v1alpha2.metrics.smi-spec.io"
        );
    }

    fn tm(success: &str, failure: &str, p50: &str, p99: &str, window: &str) -> TrafficMetrics {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "metrics.smi-spec.io/v1alpha1", "kind": "TrafficMetrics",
            "metadata": {"name": "web", "namespace": "shop"},
            "timestamp": "2026-01-01T00:00:00Z", "window": window,
            "resource": {"kind": "Deployment", "name": "web", "namespace": "shop"},
            "edge": null,
            "metrics": [
                {"name": "p99_response_latency", "unit": "ms", "value": p99},
                {"name": "p90_response_latency", "unit": "ms", "value": "0"},
                {"name": "p50_response_latency", "unit": "ms", "value": p50},
                {"name": "success_count", "value": success},
                {"name": "failure_count", "value": failure},
            ]
        }))
        .unwrap()
    }

    #[test]
    fn golden_metrics_from_traffic_metrics() {
        let g = Golden::from_traffic_metrics(&tm("297", "3", "2500m", "120", "30s")).unwrap();
        assert_eq!((g.success, g.failure), (297, 3));
        assert_eq!(g.success_rate(), Some(0.99));
        assert_eq!(g.rps(), 10.0);
        assert_eq!(g.p50_ms, Some(2.5));
        assert_eq!(g.p99_ms, Some(120.0));
        // Without traffic there is no latency and no success rate.
        let idle = Golden::from_traffic_metrics(&tm("0", "0", "0", "0", "30s")).unwrap();
        assert_eq!((idle.success_rate(), idle.p99_ms), (None, None));
        let bad = Golden::from_traffic_metrics(&tm("x", "0", "0", "0", "30s")).unwrap_err();
        assert!(format!("{bad:#}").contains("success_count"), "{bad:#}");
    }

    #[test]
    fn combining_adds_counts_and_bounds_latency() {
        let a = Golden::from_traffic_metrics(&tm("10", "0", "2", "10", "30s")).unwrap();
        let b = Golden::from_traffic_metrics(&tm("20", "10", "5", "7", "30s")).unwrap();
        let c = Golden::combine(&[a, b]);
        assert_eq!(
            (c.success, c.failure, c.p50_ms, c.p99_ms),
            (30, 10, Some(5.0), Some(10.0))
        );
    }
}
