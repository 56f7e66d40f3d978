//! Per-proxy configuration computed from a [`ClusterState`]: pure functions,
//! no I/O. [`Computed::new`] resolves everything that does not depend on the
//! proxy (every service with its endpoints and split, every TrafficTarget's
//! policies, the misconfigurations found); [`Computed::proxy_config`] then
//! assembles one proxy's [`ProxyConfig`] from it.

pub mod default_policy;
pub mod findings;
pub mod inbound;
pub mod index;
pub mod matches;
pub mod outbound;
pub mod split;
pub mod workload;

use std::collections::HashMap;

use meshlet_crds::contract::config::{
    InboundConfig, InboundPolicy, OutboundConfig, ProxyConfig, Service,
};
use meshlet_crds::contract::identity::DEFAULT_TRUST_DOMAIN;

use crate::state::ClusterState;
pub use findings::{Finding, ObjectKey};
pub use index::Index;
pub use workload::Workload;

/// Mesh-wide settings the computation needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeshSettings {
    /// SPIFFE trust domain of identities.
    pub trust_domain: String,
    /// DNS suffix of the cluster (`cluster.local`), for service authorities.
    pub cluster_domain: String,
    /// Allow callers no TrafficTarget allows (the install default; a
    /// namespace annotation overrides it).
    pub permissive: bool,
}

impl Default for MeshSettings {
    fn default() -> Self {
        MeshSettings {
            trust_domain: DEFAULT_TRUST_DOMAIN.into(),
            cluster_domain: "cluster.local".into(),
            permissive: false,
        }
    }
}

/// Everything resolved once per cluster change, shared by all proxies.
#[derive(Clone, Debug, Default)]
pub struct Computed {
    /// Every service (sorted by namespace, name) with its fully qualified
    /// authorities; short names are added per client namespace.
    pub services: Vec<Service>,
    /// Inbound policies by destination (namespace, ServiceAccount), sorted by name.
    pub policies: HashMap<(String, String), Vec<InboundPolicy>>,
    /// Namespaces whose `meshlet.dev/default-policy` annotation overrides
    /// [`MeshSettings::permissive`], mapped to whether they are permissive.
    pub namespace_permissive: HashMap<String, bool>,
    /// Misconfigurations found, sorted and deduplicated.
    pub findings: Vec<Finding>,
    /// Settings used.
    pub settings: MeshSettings,
}

impl Computed {
    /// Resolves `state` under `settings`.
    pub fn new(state: &ClusterState, settings: &MeshSettings) -> Computed {
        let index = Index::new(state);
        let mut findings = Vec::new();
        let services = outbound::services(&index, settings, &mut findings);
        let policies = inbound::policies(&index, settings, &mut findings);
        let namespace_permissive = default_policy::namespace_overrides(
            state.namespaces.iter().map(|n| n.as_ref()),
            &mut findings,
        );
        findings.sort();
        findings.dedup();
        Computed {
            services,
            policies,
            namespace_permissive,
            findings,
            settings: settings.clone(),
        }
    }

    /// The outbound side for a proxy in `namespace`: every service, with
    /// the short `name:port` authorities of the services in its own namespace.
    pub fn outbound_for(&self, namespace: &str) -> OutboundConfig {
        let services = self
            .services
            .iter()
            .map(|s| {
                let mut s = s.clone();
                if s.namespace == namespace {
                    outbound::add_short_authorities(&mut s);
                }
                s
            })
            .collect();
        OutboundConfig { services }
    }

    /// The inbound side for `workload`.
    pub fn inbound_for(&self, workload: &Workload) -> InboundConfig {
        InboundConfig {
            ports: workload.inbound_ports(),
            permissive: self.permissive(&workload.namespace),
            policies: self
                .policies
                .get(&(workload.namespace.clone(), workload.service_account.clone()))
                .cloned()
                .unwrap_or_default(),
            probes: workload.probe_routes(),
        }
    }

    /// Whether pods in `namespace` allow every client: the namespace's
    /// annotation if valid, else the install default.
    pub fn permissive(&self, namespace: &str) -> bool {
        self.namespace_permissive
            .get(namespace)
            .copied()
            .unwrap_or(self.settings.permissive)
    }

    /// The whole config of a proxy serving `workload`.
    pub fn proxy_config(&self, workload: &Workload) -> ProxyConfig {
        ProxyConfig {
            outbound: self.outbound_for(&workload.namespace),
            inbound: self.inbound_for(workload),
            identity: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests;
