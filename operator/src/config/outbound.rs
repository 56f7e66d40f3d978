//! The outbound side: every Service as the proxy sees it, with cluster IPs,
//! authorities, ports and the ready endpoints (from EndpointSlices) of each
//! port, each endpoint marked meshed or not with its expected identity.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use k8s_openapi::api::core::v1::{Pod, Service as KubeService, ServicePort as KubeServicePort};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use meshlet_crds::contract::annotations::{INJECTED, INJECTED_TRUE, MESHED_LABEL, MESHED_TRUE};
use meshlet_crds::contract::config::{AppProtocol, Endpoint, Service, ServicePort};
use meshlet_crds::contract::identity::SpiffeId;

use super::index::{Index, Key};
use super::{split, workload, Finding, MeshSettings};

/// Every Service except ExternalName ones, sorted by (namespace, name), with
/// fully qualified authorities and resolved splits.
pub fn services(
    index: &Index,
    settings: &MeshSettings,
    findings: &mut Vec<Finding>,
) -> Vec<Service> {
    let services = index
        .services
        .iter()
        .filter(|(_, svc)| !is_external_name(svc))
        .map(|(&key, svc)| {
            let mut service = service(index, settings, key, svc);
            service.split = split::resolve(index, key, svc, findings);
            service
        })
        .collect();
    split::check_orphans(index, findings);
    services
}

fn is_external_name(svc: &KubeService) -> bool {
    svc.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("ExternalName")
}

/// The TCP ports of a Service (the mesh carries TCP only).
pub fn tcp_ports(svc: &KubeService) -> impl Iterator<Item = &KubeServicePort> {
    svc.spec
        .iter()
        .flat_map(|s| s.ports.iter().flatten())
        .filter(|p| p.protocol.as_deref().unwrap_or("TCP") == "TCP")
        .filter(|p| (1..=65535).contains(&p.port))
}

fn service(index: &Index, settings: &MeshSettings, key: Key, svc: &KubeService) -> Service {
    let (namespace, name) = key;
    let spec = svc.spec.as_ref();
    let mut cluster_ips: Vec<IpAddr> = spec
        .and_then(|s| {
            s.cluster_ips
                .clone()
                .or_else(|| s.cluster_ip.clone().map(|ip| vec![ip]))
        })
        .unwrap_or_default()
        .iter()
        .filter_map(|ip| ip.parse().ok()) // "None" (headless) and "" parse to nothing
        .collect();
    cluster_ips.sort();
    cluster_ips.dedup();
    let ports: Vec<ServicePort> = tcp_ports(svc)
        .map(|p| ServicePort {
            port: p.port as u16,
            name: p.name.clone().filter(|n| !n.is_empty()),
            protocol: app_protocol(p.app_protocol.as_deref()),
            endpoints: endpoints(index, settings, key, p.name.as_deref().unwrap_or_default()),
        })
        .collect();
    let domain = &settings.cluster_domain;
    let authorities = ports
        .iter()
        .flat_map(|p| {
            [
                format!("{name}.{namespace}.svc.{domain}:{}", p.port),
                format!("{name}.{namespace}.svc:{}", p.port),
                format!("{name}.{namespace}:{}", p.port),
            ]
        })
        .collect();
    Service {
        name: name.into(),
        namespace: namespace.into(),
        cluster_ips,
        authorities,
        ports,
        split: None,
        routes: Vec::new(),
        timeout_ms: None,
        outlier: None,
    }
}

/// Adds `name:port` authorities, valid only for clients in the service's
/// own namespace (the resolver's search path makes `name` mean `name.<ns>`).
pub fn add_short_authorities(service: &mut Service) {
    let short: Vec<String> = service
        .ports
        .iter()
        .map(|p| format!("{}:{}", service.name, p.port))
        .collect();
    service.authorities.extend(short);
}

/// `appProtocol: tcp` (or any non-HTTP protocol name) opts a port out of
/// protocol detection; everything else is detected.
fn app_protocol(app_protocol: Option<&str>) -> AppProtocol {
    match app_protocol.map(str::to_ascii_lowercase).as_deref() {
        None | Some("http" | "https" | "http2" | "h2c" | "grpc" | "kubernetes.io/h2c") => {
            AppProtocol::Detect
        }
        Some(_) => AppProtocol::Opaque,
    }
}

/// The ready endpoints of the service port named `port_name` ("" for an
/// unnamed port), deduplicated and sorted by address.
fn endpoints(
    index: &Index,
    settings: &MeshSettings,
    service: Key,
    port_name: &str,
) -> Vec<Endpoint> {
    let mut out: BTreeMap<SocketAddr, Endpoint> = BTreeMap::new();
    for slice in index.slices.get(&service).into_iter().flatten() {
        if !matches!(slice.address_type.as_str(), "IPv4" | "IPv6") {
            continue;
        }
        let Some(port) = slice_port(slice, port_name) else {
            continue;
        };
        for ep in &slice.endpoints {
            let ready = ep.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
            if !ready {
                continue;
            }
            let pod = ep
                .target_ref
                .as_ref()
                .filter(|r| r.kind.as_deref() == Some("Pod"))
                .and_then(|r| {
                    let ns = r.namespace.as_deref().unwrap_or(service.0);
                    index.pods.get(&(ns, r.name.as_deref().unwrap_or_default()))
                })
                .copied();
            for address in &ep.addresses {
                let Ok(ip) = address.parse::<IpAddr>() else {
                    continue;
                };
                let addr = SocketAddr::new(ip, port);
                out.entry(addr)
                    .or_insert_with(|| endpoint(settings, addr, pod, ep.zone.clone()));
            }
        }
    }
    out.into_values().collect()
}

fn slice_port(slice: &EndpointSlice, port_name: &str) -> Option<u16> {
    slice
        .ports
        .iter()
        .flatten()
        .filter(|p| p.protocol.as_deref().unwrap_or("TCP") == "TCP")
        .find(|p| p.name.as_deref().unwrap_or_default() == port_name)
        .and_then(|p| p.port)
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0)
}

/// Whether Meshlet's proxy was injected into `pod`.
pub fn is_meshed(pod: &Pod) -> bool {
    let labelled = pod
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(MESHED_LABEL))
        .map(String::as_str)
        == Some(MESHED_TRUE);
    let annotated = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(INJECTED))
        .map(String::as_str)
        == Some(INJECTED_TRUE);
    labelled || annotated
}

fn endpoint(
    settings: &MeshSettings,
    addr: SocketAddr,
    pod: Option<&Pod>,
    zone: Option<String>,
) -> Endpoint {
    let meshed = pod.is_some_and(is_meshed);
    let identity = pod.filter(|_| meshed).and_then(|pod| {
        SpiffeId::new(
            &settings.trust_domain,
            pod.metadata.namespace.as_deref().unwrap_or_default(),
            workload::service_account(pod),
        )
        .ok()
        .map(|id| id.to_string())
    });
    Endpoint {
        addr,
        meshed,
        identity,
        zone,
        labels: pod.map(metric_labels).unwrap_or_default(),
        weight: 1,
    }
}

/// Labels for the proxy's metrics: the pod and its owning workload
/// (`deployment` is the ReplicaSet's name without its pod-template-hash).
fn metric_labels(pod: &Pod) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    if let Some(name) = &pod.metadata.name {
        labels.insert("pod".into(), name.clone());
    }
    let hash = pod
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("pod-template-hash"));
    for owner in pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .filter(|o| o.controller == Some(true))
    {
        match owner.kind.as_str() {
            "ReplicaSet" => {
                let deployment = hash
                    .and_then(|h| owner.name.strip_suffix(&format!("-{h}")))
                    .map(str::to_string);
                match deployment {
                    Some(d) => labels.insert("deployment".into(), d),
                    None => labels.insert("replicaset".into(), owner.name.clone()),
                };
            }
            "StatefulSet" | "DaemonSet" | "Job" => {
                labels.insert(owner.kind.to_ascii_lowercase(), owner.name.clone());
            }
            _ => {}
        }
    }
    labels
}
