//! Fake meshed pods for the TrafficMetrics tests: Pod objects (owned by a
//! Deployment's ReplicaSet) whose IP is a loopback address where an HTTP
//! server serves the real proxy's `Metrics` at `/metrics`, Services with
//! their EndpointSlices, and traffic recorded straight into those metrics.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use meshlet_crds::contract::metrics as names;
use meshlet_proxy::metrics::{Metrics, PeerId, RequestLabels};
use serde_json::{json, Value};

/// A fake pod's proxy admin server: the real proxy `Metrics`, served at
/// `/metrics` on `ip:port`. Stops when the handle is aborted.
pub async fn fake_proxy(
    ip: &str,
    port: u16,
    metrics: Arc<Metrics>,
) -> Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind((ip, port))
        .await
        .with_context(|| format!("binding {ip}:{port}"))?;
    Ok(tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |_req| {
                    let body = metrics.encode();
                    async move {
                        Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from(body))))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    }))
}

/// The proxy metrics of pod `ns/pod` of Deployment `deployment`.
pub fn proxy_metrics(ns: &str, deployment: &str, pod: &str) -> Arc<Metrics> {
    Arc::new(Metrics::new(&[
        (names::NAMESPACE, ns.into()),
        (names::DEPLOYMENT, deployment.into()),
        (names::POD, pod.into()),
    ]))
}

/// Labels of requests a proxy served (inbound).
pub fn inbound() -> RequestLabels {
    RequestLabels::inbound("true", PeerId::None)
}

/// Labels of requests a proxy sent to `ns/service` (outbound; for a
/// TrafficSplit the proxy names the backend it chose).
pub fn outbound(ns: &str, service: &str) -> RequestLabels {
    RequestLabels {
        direction: names::DIRECTION_OUTBOUND,
        dst_namespace: ns.into(),
        dst_service: service.into(),
        route: String::new(),
        tls: "true",
        peer_id: PeerId::None,
    }
}

/// Records `n` responses with `status` and `latency_ms` on `m`.
pub fn traffic(m: &Metrics, labels: RequestLabels, n: usize, status: u16, latency_ms: u64) {
    for _ in 0..n {
        m.request(&labels);
        m.response(labels.clone(), status, Duration::from_millis(latency_ms));
    }
}

/// A pod of Deployment `deployment` (via a ReplicaSet), meshed, at `ip`.
pub async fn pod(client: &Client, ns: &str, deployment: &str, name: &str, ip: &str) -> Result<()> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {
            "name": name,
            "labels": {"app": deployment, "pod-template-hash": "5f7c9d", "meshlet.dev/meshed": "true"},
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("{deployment}-5f7c9d"),
                "uid": "00000000-0000-0000-0000-000000000001", "controller": true,
            }],
        },
        "spec": {"containers": [{"name": "app", "image": "app"}]},
    }))?;
    super::create(client, ns, &pod).await?;
    pods.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"podIP": ip, "podIPs": [{"ip": ip}]}})),
    )
    .await
    .context("patching the pod IP")?;
    Ok(())
}

/// Service `name` whose EndpointSlice lists `pods` (name, ip).
pub async fn service(client: &Client, ns: &str, name: &str, pods: &[(&str, &str)]) -> Result<()> {
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"ports": [{"port": 80}], "selector": {"app": name}},
    }))?;
    super::create(client, ns, &svc).await?;
    let endpoints: Vec<Value> = pods
        .iter()
        .enumerate()
        .map(|(i, (pod, _))| json!({"addresses": [format!("10.1.0.{}", i + 1)], "targetRef": {"kind": "Pod", "name": pod, "namespace": ns}}))
        .collect();
    let slice: EndpointSlice = serde_json::from_value(json!({
        "metadata": {"name": format!("{name}-1"), "labels": {"kubernetes.io/service-name": name}},
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"port": 80, "protocol": "TCP"}],
    }))?;
    super::create(client, ns, &slice).await?;
    Ok(())
}
