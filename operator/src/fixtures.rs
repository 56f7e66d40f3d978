//! Builders of Kubernetes and SMI objects for tests (unit tests and the
//! integration tests against a real API server).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, ObjectReference, Pod, PodSpec, Service, ServicePort, ServiceSpec,
};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::ObjectMeta;
use meshlet_crds::access::v1alpha3::{
    IdentityBindingSubject, RuleKind, TrafficTarget, TrafficTargetRule, TrafficTargetSpec,
};
use meshlet_crds::contract::annotations::{INJECTED, INJECTED_TRUE, MESHED_LABEL, MESHED_TRUE};
use meshlet_crds::specs::v1alpha4::{
    HttpMatch, HttpRouteGroup, HttpRouteGroupSpec, PortMatch, TcpRoute, TcpRouteSpec,
};
use meshlet_crds::specs::HttpMethod;
use meshlet_crds::split::v1alpha4::{
    MatchKind, TrafficSplit, TrafficSplitBackend, TrafficSplitMatch, TrafficSplitSpec,
};

use crate::config::index::SERVICE_NAME_LABEL;

fn meta(namespace: &str, name: &str) -> ObjectMeta {
    ObjectMeta {
        namespace: Some(namespace.into()),
        name: Some(name.into()),
        ..Default::default()
    }
}

/// A ClusterIP Service with TCP `ports` as (name, port, targetPort); the API
/// server allocates the cluster IP (see [`with_cluster_ip`] for unit tests).
pub fn service(namespace: &str, name: &str, ports: &[(&str, u16, u16)]) -> Service {
    Service {
        metadata: meta(namespace, name),
        spec: Some(ServiceSpec {
            ports: Some(
                ports
                    .iter()
                    .map(|&(port_name, port, target)| ServicePort {
                        name: (!port_name.is_empty()).then(|| port_name.into()),
                        port: port.into(),
                        target_port: Some(IntOrString::Int(target.into())),
                        protocol: Some("TCP".into()),
                        ..Default::default()
                    })
                    .collect(),
            ),
            selector: Some(BTreeMap::from([("app".to_string(), name.to_string())])),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// `svc` with the cluster IP `ip`, as the API server would allocate it.
pub fn with_cluster_ip(mut svc: Service, ip: &str) -> Service {
    let spec = svc.spec.get_or_insert_with(Default::default);
    spec.cluster_ip = Some(ip.into());
    spec.cluster_ips = Some(vec![ip.into()]);
    svc
}

/// An IPv4 EndpointSlice of `service` with one port (`port_name`, `port`)
/// and endpoints (ip, pod name, ready).
pub fn endpoint_slice(
    namespace: &str,
    service: &str,
    slice: &str,
    port_name: &str,
    port: u16,
    endpoints: &[(&str, &str, bool)],
) -> EndpointSlice {
    let mut metadata = meta(namespace, slice);
    metadata.labels = Some(BTreeMap::from([(
        SERVICE_NAME_LABEL.to_string(),
        service.to_string(),
    )]));
    EndpointSlice {
        metadata,
        address_type: "IPv4".into(),
        ports: Some(vec![EndpointPort {
            name: Some(port_name.into()),
            port: Some(port.into()),
            protocol: Some("TCP".into()),
            ..Default::default()
        }]),
        endpoints: endpoints
            .iter()
            .map(|&(ip, pod, ready)| Endpoint {
                addresses: vec![ip.into()],
                conditions: Some(EndpointConditions {
                    ready: Some(ready),
                    ..Default::default()
                }),
                target_ref: (!pod.is_empty()).then(|| ObjectReference {
                    kind: Some("Pod".into()),
                    name: Some(pod.into()),
                    namespace: Some(namespace.into()),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .collect(),
    }
}

/// A Pod running as `service_account`, with TCP container `ports`, meshed
/// (injected by Meshlet) or not.
pub fn pod(namespace: &str, name: &str, service_account: &str, meshed: bool, ports: &[u16]) -> Pod {
    let mut metadata = meta(namespace, name);
    if meshed {
        metadata.labels = Some(BTreeMap::from([(MESHED_LABEL.into(), MESHED_TRUE.into())]));
        metadata.annotations = Some(BTreeMap::from([(INJECTED.into(), INJECTED_TRUE.into())]));
    }
    Pod {
        metadata,
        spec: Some(PodSpec {
            service_account_name: Some(service_account.into()),
            containers: vec![Container {
                name: "app".into(),
                image: Some("registry.invalid/app:1".into()),
                ports: Some(
                    ports
                        .iter()
                        .map(|&p| ContainerPort {
                            container_port: p.into(),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A ServiceAccount.
pub fn service_account(namespace: &str, name: &str) -> ServiceAccount {
    ServiceAccount {
        metadata: meta(namespace, name),
        ..Default::default()
    }
}

/// A TrafficSplit of `root` over (backend, weight).
pub fn traffic_split(
    namespace: &str,
    name: &str,
    root: &str,
    backends: &[(&str, u64)],
) -> TrafficSplit {
    let mut ts = TrafficSplit::new(
        name,
        TrafficSplitSpec {
            service: root.into(),
            matches: Vec::new(),
            backends: backends
                .iter()
                .map(|&(service, weight)| TrafficSplitBackend {
                    service: service.into(),
                    weight,
                })
                .collect(),
        },
    );
    ts.metadata.namespace = Some(namespace.into());
    ts
}

/// `ts` restricted to requests matching the HTTPRouteGroups `groups`.
pub fn with_matches(mut ts: TrafficSplit, groups: &[&str]) -> TrafficSplit {
    ts.spec.matches = groups
        .iter()
        .map(|g| TrafficSplitMatch {
            api_group: Some(meshlet_crds::specs::GROUP.into()),
            kind: MatchKind::HttpRouteGroup,
            name: (*g).into(),
        })
        .collect();
    ts
}

/// An HTTPRouteGroup with matches (name, method or "*", path regex).
pub fn http_route_group(
    namespace: &str,
    name: &str,
    matches: &[(&str, HttpMethod, &str)],
) -> HttpRouteGroup {
    let mut g = HttpRouteGroup::new(
        name,
        HttpRouteGroupSpec {
            matches: matches
                .iter()
                .map(|&(n, method, path)| HttpMatch {
                    name: n.into(),
                    methods: vec![method],
                    path_regex: Some(path.into()),
                    headers: Default::default(),
                })
                .collect(),
        },
    );
    g.metadata.namespace = Some(namespace.into());
    g
}

/// A TCPRoute on `ports` (every port when empty).
pub fn tcp_route(namespace: &str, name: &str, ports: &[u16]) -> TcpRoute {
    let mut r = TcpRoute::new(
        name,
        TcpRouteSpec {
            matches: PortMatch {
                name: None,
                ports: ports.to_vec(),
            },
        },
    );
    r.metadata.namespace = Some(namespace.into());
    r
}

/// A ServiceAccount subject in `namespace`.
pub fn subject(namespace: &str, name: &str) -> IdentityBindingSubject {
    IdentityBindingSubject {
        kind: "ServiceAccount".into(),
        name: name.into(),
        namespace: Some(namespace.into()),
    }
}

/// A rule referring to an HTTPRouteGroup, narrowed to `matches` (all when empty).
pub fn http_rule(group: &str, matches: &[&str]) -> TrafficTargetRule {
    TrafficTargetRule {
        kind: RuleKind::HttpRouteGroup,
        name: group.into(),
        matches: matches.iter().map(|m| (*m).into()).collect(),
    }
}

/// A rule referring to a TCPRoute.
pub fn tcp_rule(route: &str) -> TrafficTargetRule {
    TrafficTargetRule {
        kind: RuleKind::TcpRoute,
        name: route.into(),
        matches: Vec::new(),
    }
}

/// A TrafficTarget letting `sources` reach ServiceAccount `destination` (in
/// `namespace`) on `rules`.
pub fn traffic_target(
    namespace: &str,
    name: &str,
    destination: &str,
    sources: Vec<IdentityBindingSubject>,
    rules: Vec<TrafficTargetRule>,
) -> TrafficTarget {
    let mut tt = TrafficTarget::new(
        name,
        TrafficTargetSpec {
            destination: subject(namespace, destination),
            sources,
            rules,
        },
    );
    tt.metadata.namespace = Some(namespace.into());
    tt
}
