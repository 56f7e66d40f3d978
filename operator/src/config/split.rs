//! TrafficSplit resolution for a root service: the backends that can take
//! traffic (existing, not the root itself, with a port matching a root
//! port: the SMI port-matching rule), their weights and port mappings, and
//! the merged HTTPRouteGroup matches. A split that cannot be applied safely
//! is dropped (the root service then behaves as a plain Service) and the
//! reason is reported as a [`Finding`].

use std::collections::HashSet;

use k8s_openapi::api::core::v1::Service as KubeService;
use kube::{Resource, ResourceExt};
use meshlet_crds::contract::config::{PortMapping, ServiceRef, Split, SplitBackend};
use meshlet_crds::split::v1alpha4::TrafficSplit;

use super::findings::{reason, ObjectKey};
use super::index::{Index, Key};
use super::matches::http_match;
use super::outbound::tcp_ports;
use super::Finding;

/// The [`ObjectKey`] of any SMI or Kubernetes object.
pub fn object_key<K: Resource<DynamicType = ()>>(o: &K) -> ObjectKey {
    ObjectKey {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        namespace: o.meta().namespace.clone().unwrap_or_default(),
        name: o.meta().name.clone().unwrap_or_default(),
        uid: o.meta().uid.clone(),
    }
}

fn finding(split: &TrafficSplit, reason: &'static str, message: String) -> Finding {
    Finding {
        object: object_key(split),
        reason,
        message,
    }
}

/// The split applied to root service `root`, if any applies.
pub fn resolve(
    index: &Index,
    root: Key,
    root_svc: &KubeService,
    findings: &mut Vec<Finding>,
) -> Option<Split> {
    let splits = index.splits_by_root.get(&root)?;
    let (chosen, others) = splits.split_first()?;
    for other in others {
        findings.push(finding(
            other,
            reason::CONFLICTING_SPLIT,
            format!(
                "TrafficSplit {} is older and already splits service {}; this one is ignored",
                chosen.name_any(),
                root.1
            ),
        ));
    }
    resolve_one(index, root, root_svc, chosen, findings)
}

fn resolve_one(
    index: &Index,
    root: Key,
    root_svc: &KubeService,
    ts: &TrafficSplit,
    findings: &mut Vec<Finding>,
) -> Option<Split> {
    let (namespace, root_name) = root;
    let root_ports: Vec<u16> = tcp_ports(root_svc).map(|p| p.port as u16).collect();
    let mut backends = Vec::new();
    let mut seen = HashSet::new();
    for (i, b) in ts.spec.backends.iter().enumerate() {
        let field = format!("spec.backends[{i}]");
        if b.service == root_name {
            findings.push(finding(
                ts,
                reason::BACKEND_IS_ROOT,
                format!("{field}: service {root_name} is the root service of this split; a backend must be another service, so this backend is ignored"),
            ));
            continue;
        }
        if !seen.insert(b.service.as_str()) {
            findings.push(finding(
                ts,
                reason::DUPLICATE_BACKEND,
                format!(
                    "{field}: service {} is listed more than once; only the first entry counts",
                    b.service
                ),
            ));
            continue;
        }
        let Some(backend_svc) = index.services.get(&(namespace, b.service.as_str())) else {
            findings.push(finding(
                ts,
                reason::BACKEND_SERVICE_NOT_FOUND,
                format!("{field}: service {namespace}/{} does not exist; the backend gets no traffic until it does", b.service),
            ));
            continue;
        };
        let backend_ports: HashSet<u16> = tcp_ports(backend_svc).map(|p| p.port as u16).collect();
        let ports: Vec<PortMapping> = root_ports
            .iter()
            .filter(|p| backend_ports.contains(p))
            .map(|&port| PortMapping {
                port,
                backend_port: port,
            })
            .collect();
        if ports.is_empty() {
            let mut listed: Vec<u16> = backend_ports.into_iter().collect();
            listed.sort_unstable();
            findings.push(finding(
                ts,
                reason::BACKEND_PORT_MISMATCH,
                format!("{field}: service {} has no port matching a port of root service {root_name} (root ports {root_ports:?}, backend ports {listed:?}); the backend gets no traffic", b.service),
            ));
            continue;
        }
        backends.push(SplitBackend {
            service: ServiceRef {
                name: b.service.clone(),
                namespace: namespace.into(),
            },
            weight: u32::try_from(b.weight).unwrap_or(u32::MAX),
            ports,
        });
    }
    if !ts.spec.backends.is_empty() && ts.spec.backends.iter().all(|b| b.weight == 0) {
        findings.push(finding(
            ts,
            reason::ALL_WEIGHTS_ZERO,
            "every backend has weight 0; the split is not applied and the root service gets the traffic".into(),
        ));
        return None;
    }
    if backends.iter().all(|b| b.weight == 0) {
        findings.push(finding(
            ts,
            reason::NO_USABLE_BACKENDS,
            "no backend with a weight above 0 can take traffic; the split is not applied and the root service gets the traffic".into(),
        ));
        return None;
    }
    let mut matches = Vec::new();
    for (i, m) in ts.spec.matches.iter().enumerate() {
        match index.http_route_groups.get(&(namespace, m.name.as_str())) {
            Some(group) => matches.extend(group.spec.matches.iter().map(http_match)),
            None => {
                findings.push(finding(
                    ts,
                    reason::ROUTE_NOT_FOUND,
                    format!("spec.matches[{i}]: HTTPRouteGroup {namespace}/{} does not exist; the split is not applied until it does", m.name),
                ));
                return None;
            }
        }
    }
    Some(Split {
        name: ts.name_any(),
        backends,
        matches,
    })
}

/// Reports splits whose root service does not exist.
pub fn check_orphans(index: &Index, findings: &mut Vec<Finding>) {
    for (root, splits) in &index.splits_by_root {
        if index.services.contains_key(root) {
            continue;
        }
        for ts in splits {
            findings.push(finding(
                ts,
                reason::ROOT_SERVICE_NOT_FOUND,
                format!("spec.service: service {}/{} does not exist; the split has no effect until it does", root.0, root.1),
            ));
        }
    }
}
