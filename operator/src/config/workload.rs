//! The proxy's own workload: what of its pod decides its inbound config.

use k8s_openapi::api::core::v1::{Container, Pod, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use meshlet_crds::contract::config::{
    AppProtocol, InboundPort, ProbeRoute, GRPC_HEALTH_CHECK_PATH,
};

/// A proxy's workload: pods with equal workloads get equal configs, so the
/// stream computes and serializes once per workload, not once per pod.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Workload {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's ServiceAccount (its identity).
    pub service_account: String,
    /// The app's TCP container ports, sorted.
    pub ports: Vec<u16>,
    /// The kubelet's plain-HTTP `httpGet` and `grpc` probes as (port,
    /// path), sorted.
    pub probes: Vec<(u16, String)>,
}

/// The (port, path) a kubelet `httpGet` or `grpc` probe requests, if it is
/// plain HTTP to the pod itself: probes with a `host` go elsewhere, and
/// HTTPS probes are opaque to the proxy. Named ports resolve among
/// `container`'s ports.
fn http_probe(container: &Container, probe: &Probe) -> Option<(u16, String)> {
    if let Some(grpc) = &probe.grpc {
        let port = u16::try_from(grpc.port).ok().filter(|p| *p != 0)?;
        return Some((port, GRPC_HEALTH_CHECK_PATH.to_string()));
    }
    let get = probe.http_get.as_ref()?;
    if get.host.as_deref().is_some_and(|h| !h.is_empty())
        || get
            .scheme
            .as_deref()
            .is_some_and(|s| !s.eq_ignore_ascii_case("HTTP"))
    {
        return None;
    }
    let port = match &get.port {
        IntOrString::Int(n) => u16::try_from(*n).ok()?,
        IntOrString::String(name) => container
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .and_then(|p| u16::try_from(p.container_port).ok())?,
    };
    // The kubelet sends the path as given (`/` when empty); the proxy
    // compares paths without the query.
    let path = get.path.as_deref().unwrap_or_default();
    let path = path.split('?').next().unwrap_or_default();
    let path = if path.is_empty() {
        "/".to_string()
    } else if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    (port != 0).then_some((port, path))
}

/// Every plain-HTTP (or gRPC) kubelet probe of the pod's containers,
/// sorted, unique.
fn http_probes(pod: &Pod) -> Vec<(u16, String)> {
    let mut probes: Vec<(u16, String)> = pod
        .spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .flat_map(|c| {
            [&c.liveness_probe, &c.readiness_probe, &c.startup_probe]
                .into_iter()
                .flatten()
                .filter_map(move |p| http_probe(c, p))
        })
        .collect();
    probes.sort();
    probes.dedup();
    probes
}

/// The ServiceAccount a pod runs as (`default` when unset).
pub fn service_account(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.service_account_name.as_deref())
        .filter(|s| !s.is_empty())
        .unwrap_or("default")
}

impl Workload {
    /// The workload of `pod`.
    pub fn of_pod(pod: &Pod) -> Workload {
        let mut ports: Vec<u16> = pod
            .spec
            .iter()
            .flat_map(|s| s.containers.iter())
            .flat_map(|c| c.ports.iter().flatten())
            .filter(|p| p.protocol.as_deref().unwrap_or("TCP") == "TCP")
            .filter_map(|p| u16::try_from(p.container_port).ok())
            .filter(|p| *p != 0)
            .collect();
        ports.sort_unstable();
        ports.dedup();
        Workload {
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            service_account: service_account(pod).to_string(),
            ports,
            probes: http_probes(pod),
        }
    }

    /// The kubelet probes as the proxy reads them.
    pub fn probe_routes(&self) -> Vec<ProbeRoute> {
        self.probes
            .iter()
            .map(|(port, path)| ProbeRoute {
                port: *port,
                path: path.clone(),
            })
            .collect()
    }

    /// The app's ports as the proxy reads them.
    pub fn inbound_ports(&self) -> Vec<InboundPort> {
        self.ports
            .iter()
            .map(|&port| InboundPort {
                port,
                protocol: AppProtocol::Detect,
            })
            .collect()
    }
}
