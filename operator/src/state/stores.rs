//! Reflector caches of every kind the operator watches, one watcher each
//! (kube-runtime's `watcher` + `reflector`, with backoff on errors), and
//! the change signal the recompute loop waits on.

use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{Namespace, Pod, PodSpec, Service, ServiceAccount};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client, Resource};
use meshlet_crds::access::v1alpha3::TrafficTarget;
use meshlet_crds::contract::annotations::PREFIX;
use meshlet_crds::specs::v1alpha4::{HttpRouteGroup, TcpRoute, UdpRoute};
use meshlet_crds::split::v1alpha4::TrafficSplit;
use serde::de::DeserializeOwned;
use tokio::sync::Notify;

use super::ClusterState;
use crate::metrics::Metrics;

/// Signals that a watched object changed, remembering when the first
/// change not yet handled arrived (for the propagation latency metric).
#[derive(Default, Debug)]
pub struct Changes {
    notify: Notify,
    first_unhandled: Mutex<Option<Instant>>,
}

impl Changes {
    /// Records a change.
    pub fn mark(&self) {
        self.first_unhandled
            .lock()
            .expect("not poisoned")
            .get_or_insert_with(Instant::now);
        self.notify.notify_one();
    }

    /// Waits for a change (returns at once if one arrived since the last take).
    pub async fn wait(&self) {
        self.notify.notified().await;
    }

    /// Takes the time of the first change since the last take.
    pub fn take(&self) -> Option<Instant> {
        self.first_unhandled.lock().expect("not poisoned").take()
    }
}

/// The caches, readable at any time; cheap to clone.
#[derive(Clone)]
pub struct Stores {
    /// Services.
    pub services: Store<Service>,
    /// EndpointSlices.
    pub endpoint_slices: Store<EndpointSlice>,
    /// Pods, trimmed by [`trim_pod`].
    pub pods: Store<Pod>,
    /// ServiceAccounts.
    pub service_accounts: Store<ServiceAccount>,
    /// Namespaces.
    pub namespaces: Store<Namespace>,
    /// TrafficSplits.
    pub traffic_splits: Store<TrafficSplit>,
    /// TrafficTargets.
    pub traffic_targets: Store<TrafficTarget>,
    /// HTTPRouteGroups.
    pub http_route_groups: Store<HttpRouteGroup>,
    /// TCPRoutes.
    pub tcp_routes: Store<TcpRoute>,
    /// UDPRoutes.
    pub udp_routes: Store<UdpRoute>,
}

/// Keeps only what the config computation and the metrics scraper read of
/// a Pod (identity, meshing, ports, owner, IP), so 10,000 pods fit in
/// little memory.
pub fn trim_pod(pod: &mut Pod) {
    let meta = &mut pod.metadata;
    meta.managed_fields = None;
    if let Some(a) = meta.annotations.as_mut() {
        a.retain(|k, _| k.starts_with(PREFIX));
    }
    if let Some(spec) = pod.spec.as_mut() {
        let containers = std::mem::take(&mut spec.containers)
            .into_iter()
            .map(|c| k8s_openapi::api::core::v1::Container {
                name: c.name,
                ports: c.ports,
                // httpGet probes become the proxy's probe routes.
                liveness_probe: c.liveness_probe.and_then(probe_request_only),
                readiness_probe: c.readiness_probe.and_then(probe_request_only),
                startup_probe: c.startup_probe.and_then(probe_request_only),
                ..Default::default()
            })
            .collect();
        *spec = PodSpec {
            containers,
            service_account_name: spec.service_account_name.take(),
            ..Default::default()
        };
    }
    // The pod IP is kept: the TrafficMetrics scraper reaches the proxy there.
    pod.status =
        pod.status
            .take()
            .and_then(|s| s.pod_ip)
            .map(|ip| k8s_openapi::api::core::v1::PodStatus {
                pod_ip: Some(ip),
                ..Default::default()
            });
}

/// A probe's `httpGet` or `grpc` action alone (what the inbound config needs).
fn probe_request_only(
    p: k8s_openapi::api::core::v1::Probe,
) -> Option<k8s_openapi::api::core::v1::Probe> {
    if p.http_get.is_none() && p.grpc.is_none() {
        return None;
    }
    Some(k8s_openapi::api::core::v1::Probe {
        http_get: p
            .http_get
            .map(|get| k8s_openapi::api::core::v1::HTTPGetAction {
                http_headers: None,
                ..get
            }),
        grpc: p.grpc,
        ..Default::default()
    })
}

fn strip_managed_fields<K: Resource>(o: &mut K) {
    o.meta_mut().managed_fields = None;
}

impl Stores {
    /// Starts one watcher per kind on `client` (all namespaces). The
    /// returned future drives them and never ends; every change marks `changes`.
    pub fn start(
        client: Client,
        changes: Arc<Changes>,
        metrics: Arc<Metrics>,
    ) -> (Stores, impl std::future::Future<Output = ()> + Send) {
        let mut tasks: Vec<futures::future::BoxFuture<'static, ()>> = Vec::new();
        macro_rules! watch {
            ($kind:ty, $name:literal, $modify:expr) => {{
                let (reader, writer) = reflector::store::<$kind>();
                let api: Api<$kind> = Api::all(client.clone());
                let stream = watcher::watcher(api, watcher::Config::default().any_semantic())
                    .default_backoff()
                    .modify($modify)
                    .reflect(writer);
                tasks.push(Box::pin(drive(
                    $name,
                    stream,
                    changes.clone(),
                    metrics.clone(),
                )));
                reader
            }};
        }
        let stores = Stores {
            services: watch!(Service, "Service", strip_managed_fields),
            endpoint_slices: watch!(EndpointSlice, "EndpointSlice", strip_managed_fields),
            pods: watch!(Pod, "Pod", trim_pod),
            service_accounts: watch!(ServiceAccount, "ServiceAccount", strip_managed_fields),
            namespaces: watch!(Namespace, "Namespace", strip_managed_fields),
            traffic_splits: watch!(TrafficSplit, "TrafficSplit", strip_managed_fields),
            traffic_targets: watch!(TrafficTarget, "TrafficTarget", strip_managed_fields),
            http_route_groups: watch!(HttpRouteGroup, "HTTPRouteGroup", strip_managed_fields),
            tcp_routes: watch!(TcpRoute, "TCPRoute", strip_managed_fields),
            udp_routes: watch!(UdpRoute, "UDPRoute", strip_managed_fields),
        };
        let driver = async move {
            futures::future::join_all(tasks).await;
        };
        (stores, driver)
    }

    /// Waits until every cache has its initial list.
    pub async fn wait_ready(&self) {
        // The writers live as long as the driver; a dropped writer means the
        // operator is shutting down, and waiting further is pointless.
        let _ = self.services.wait_until_ready().await;
        let _ = self.endpoint_slices.wait_until_ready().await;
        let _ = self.pods.wait_until_ready().await;
        let _ = self.service_accounts.wait_until_ready().await;
        let _ = self.namespaces.wait_until_ready().await;
        let _ = self.traffic_splits.wait_until_ready().await;
        let _ = self.traffic_targets.wait_until_ready().await;
        let _ = self.http_route_groups.wait_until_ready().await;
        let _ = self.tcp_routes.wait_until_ready().await;
        let _ = self.udp_routes.wait_until_ready().await;
    }

    /// A snapshot of every cache.
    pub fn state(&self) -> ClusterState {
        ClusterState {
            services: self.services.state(),
            endpoint_slices: self.endpoint_slices.state(),
            pods: self.pods.state(),
            service_accounts: self.service_accounts.state(),
            namespaces: self.namespaces.state(),
            traffic_splits: self.traffic_splits.state(),
            traffic_targets: self.traffic_targets.state(),
            http_route_groups: self.http_route_groups.state(),
            tcp_routes: self.tcp_routes.state(),
            udp_routes: self.udp_routes.state(),
        }
    }
}

async fn drive<K, S>(kind: &'static str, stream: S, changes: Arc<Changes>, metrics: Arc<Metrics>)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
    S: Stream<Item = Result<Event<K>, watcher::Error>> + Send,
{
    let mut stream = std::pin::pin!(stream);
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::Apply(_) | Event::Delete(_) | Event::InitDone) => {
                metrics.watch_event(kind);
                changes.mark();
            }
            Ok(Event::Init | Event::InitApply(_)) => {}
            Err(error) => {
                metrics.watch_error(kind);
                tracing::warn!(kind, %error, "watch failed; retrying with backoff");
            }
        }
    }
}
