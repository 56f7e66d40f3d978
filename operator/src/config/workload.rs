//! The proxy's own workload: what of its pod decides its inbound config.

use k8s_openapi::api::core::v1::Pod;
use meshlet_crds::contract::config::{AppProtocol, InboundPort};

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
        }
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
