//! Unit tests of the config computation, on fixtures.

use std::sync::Arc;

use meshlet_crds::contract::config::{HttpMatch, PortMapping, ServiceRef};
use meshlet_crds::specs::HttpMethod;

use super::findings::reason;
use super::*;
use crate::fixtures::*;
use crate::state::ClusterState;

const NS: &str = "shop";

fn base() -> ClusterState {
    ClusterState {
        services: vec![
            Arc::new(with_cluster_ip(
                service(NS, "web", &[("http", 80, 8080)]),
                "10.0.0.10",
            )),
            Arc::new(with_cluster_ip(
                service(NS, "web-v1", &[("http", 80, 8080)]),
                "10.0.0.11",
            )),
            Arc::new(with_cluster_ip(
                service(NS, "web-v2", &[("http", 80, 9090)]),
                "10.0.0.12",
            )),
            Arc::new(with_cluster_ip(
                service(NS, "db", &[("", 5432, 5432)]),
                "10.0.0.13",
            )),
        ],
        endpoint_slices: vec![
            Arc::new(endpoint_slice(
                NS,
                "web-v1",
                "web-v1-a",
                "http",
                8080,
                &[
                    ("10.1.0.2", "v1-b", true),
                    ("10.1.0.1", "v1-a", true),
                    ("10.1.0.3", "v1-c", false),
                ],
            )),
            Arc::new(endpoint_slice(
                NS,
                "web-v2",
                "web-v2-a",
                "http",
                9090,
                &[("10.1.0.9", "v2-a", true)],
            )),
        ],
        pods: vec![
            Arc::new(pod(NS, "v1-a", "web", true, &[8080])),
            Arc::new(pod(NS, "v1-b", "web", false, &[8080])),
            Arc::new(pod(NS, "v2-a", "web", true, &[9090])),
        ],
        service_accounts: vec![
            Arc::new(service_account(NS, "web")),
            Arc::new(service_account(NS, "client")),
        ],
        ..Default::default()
    }
}

fn compute(state: &ClusterState) -> Computed {
    Computed::new(state, &MeshSettings::default())
}

fn reasons(c: &Computed) -> Vec<&'static str> {
    c.findings.iter().map(|f| f.reason).collect()
}

#[test]
fn services_carry_ports_ips_authorities_and_ready_endpoints() {
    let c = compute(&base());
    let names: Vec<_> = c.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        ["db", "web", "web-v1", "web-v2"],
        "sorted by namespace and name"
    );
    let v1 = c.services.iter().find(|s| s.name == "web-v1").unwrap();
    assert_eq!(
        v1.cluster_ips,
        vec!["10.0.0.11".parse::<std::net::IpAddr>().unwrap()]
    );
    assert_eq!(
        v1.authorities,
        [
            "web-v1.shop.svc.cluster.local:80",
            "web-v1.shop.svc:80",
            "web-v1.shop:80"
        ]
    );
    let port = &v1.ports[0];
    assert_eq!((port.port, port.name.as_deref()), (80, Some("http")));
    // Sorted, not-ready excluded, mapped to the slice's (target) port.
    let eps: Vec<_> = port.endpoints.iter().map(|e| e.addr.to_string()).collect();
    assert_eq!(eps, ["10.1.0.1:8080", "10.1.0.2:8080"]);
    let (meshed, plain) = (&port.endpoints[0], &port.endpoints[1]);
    assert!(meshed.meshed);
    assert_eq!(
        meshed.identity.as_deref(),
        Some("spiffe://cluster.local/ns/shop/sa/web")
    );
    assert_eq!(meshed.labels.get("pod").map(String::as_str), Some("v1-a"));
    assert!(!plain.meshed);
    assert_eq!(plain.identity, None);
    assert!(c.findings.is_empty(), "{:?}", c.findings);
}

#[test]
fn short_authorities_only_for_the_clients_namespace() {
    let c = compute(&base());
    let own = c.outbound_for(NS);
    let web = own.services.iter().find(|s| s.name == "web").unwrap();
    assert!(web.authorities.contains(&"web:80".to_string()));
    let other = c.outbound_for("elsewhere");
    let web = other.services.iter().find(|s| s.name == "web").unwrap();
    assert!(!web.authorities.contains(&"web:80".to_string()));
}

#[test]
fn headless_and_external_name_services() {
    let mut state = base();
    let mut headless = service(NS, "hl", &[("", 80, 80)]);
    headless.spec.as_mut().unwrap().cluster_ip = Some("None".into());
    let mut external = service(NS, "ext", &[("", 80, 80)]);
    external.spec.as_mut().unwrap().type_ = Some("ExternalName".into());
    state.services.push(Arc::new(headless));
    state.services.push(Arc::new(external));
    let c = compute(&state);
    let hl = c.services.iter().find(|s| s.name == "hl").unwrap();
    assert!(hl.cluster_ips.is_empty());
    assert!(c.services.iter().all(|s| s.name != "ext"));
}

#[test]
fn split_resolves_backends_with_weights_and_port_mappings() {
    let mut state = base();
    state.traffic_splits.push(Arc::new(traffic_split(
        NS,
        "canary",
        "web",
        &[("web-v1", 90), ("web-v2", 10)],
    )));
    let c = compute(&state);
    let web = c.services.iter().find(|s| s.name == "web").unwrap();
    let split = web.split.as_ref().expect("split applied");
    assert_eq!(split.name, "canary");
    let got: Vec<_> = split
        .backends
        .iter()
        .map(|b| (b.service.name.as_str(), b.weight))
        .collect();
    assert_eq!(got, [("web-v1", 90), ("web-v2", 10)]);
    assert_eq!(
        split.backends[1].ports,
        [PortMapping {
            port: 80,
            backend_port: 80
        }]
    );
    assert_eq!(
        split.backends[1].service,
        ServiceRef {
            name: "web-v2".into(),
            namespace: NS.into()
        }
    );
    assert!(split.matches.is_empty());
    // Backends are outbound services themselves, with their own targetPorts.
    let v2 = c.services.iter().find(|s| s.name == "web-v2").unwrap();
    assert_eq!(v2.ports[0].endpoints[0].addr.port(), 9090);
    assert!(c.findings.is_empty(), "{:?}", c.findings);
}

#[test]
fn backend_without_matching_port_or_service_gets_no_traffic() {
    let mut state = base();
    state
        .services
        .push(Arc::new(service(NS, "web-v3", &[("http", 8080, 8080)])));
    state.traffic_splits.push(Arc::new(traffic_split(
        NS,
        "canary",
        "web",
        &[("web-v1", 50), ("web-v3", 25), ("web-v4", 25)],
    )));
    let c = compute(&state);
    let split = c
        .services
        .iter()
        .find(|s| s.name == "web")
        .unwrap()
        .split
        .clone()
        .unwrap();
    assert_eq!(split.backends.len(), 1);
    assert_eq!(split.backends[0].service.name, "web-v1");
    assert_eq!(
        reasons(&c),
        [
            reason::BACKEND_PORT_MISMATCH,
            reason::BACKEND_SERVICE_NOT_FOUND
        ]
    );
    let mismatch = &c.findings[0];
    assert_eq!(mismatch.object.kind, "TrafficSplit");
    assert_eq!(mismatch.object.name, "canary");
    assert!(
        mismatch.message.contains("spec.backends[1]"),
        "{}",
        mismatch.message
    );
    assert!(
        c.findings[1].message.contains("shop/web-v4"),
        "{}",
        c.findings[1].message
    );
}

#[test]
fn all_weights_zero_drops_the_split() {
    let mut state = base();
    state.traffic_splits.push(Arc::new(traffic_split(
        NS,
        "off",
        "web",
        &[("web-v1", 0), ("web-v2", 0)],
    )));
    let c = compute(&state);
    assert!(c
        .services
        .iter()
        .find(|s| s.name == "web")
        .unwrap()
        .split
        .is_none());
    assert_eq!(reasons(&c), [reason::ALL_WEIGHTS_ZERO]);
}

#[test]
fn only_broken_backends_with_weight_drops_the_split() {
    let mut state = base();
    state.traffic_splits.push(Arc::new(traffic_split(
        NS,
        "s",
        "web",
        &[("web-v1", 0), ("missing", 100)],
    )));
    let c = compute(&state);
    assert!(c
        .services
        .iter()
        .find(|s| s.name == "web")
        .unwrap()
        .split
        .is_none());
    assert_eq!(
        reasons(&c),
        [
            reason::BACKEND_SERVICE_NOT_FOUND,
            reason::NO_USABLE_BACKENDS
        ]
    );
}

#[test]
fn a_split_naming_itself_is_reported_and_that_backend_skipped() {
    let mut state = base();
    state.traffic_splits.push(Arc::new(traffic_split(
        NS,
        "self",
        "web",
        &[("web", 50), ("web-v1", 50), ("web-v1", 5)],
    )));
    let c = compute(&state);
    let split = c
        .services
        .iter()
        .find(|s| s.name == "web")
        .unwrap()
        .split
        .clone()
        .unwrap();
    assert_eq!(split.backends.len(), 1);
    assert_eq!(split.backends[0].weight, 50);
    assert_eq!(
        reasons(&c),
        [reason::BACKEND_IS_ROOT, reason::DUPLICATE_BACKEND]
    );
}

#[test]
fn split_matches_merge_route_groups_and_a_missing_group_drops_the_split() {
    let mut state = base();
    state.http_route_groups.push(Arc::new(http_route_group(
        NS,
        "api",
        &[("get-api", HttpMethod::Get, "/api/.*")],
    )));
    state.http_route_groups.push(Arc::new(http_route_group(
        NS,
        "all",
        &[("any", HttpMethod::Any, ".*")],
    )));
    state.traffic_splits.push(Arc::new(with_matches(
        traffic_split(NS, "canary", "web", &[("web-v1", 1), ("web-v2", 1)]),
        &["api", "all"],
    )));
    let c = compute(&state);
    let split = c
        .services
        .iter()
        .find(|s| s.name == "web")
        .unwrap()
        .split
        .clone()
        .unwrap();
    assert_eq!(
        split.matches,
        [
            HttpMatch {
                name: Some("get-api".into()),
                path_regex: Some("/api/.*".into()),
                methods: vec!["GET".into()],
                ..Default::default()
            },
            HttpMatch {
                name: Some("any".into()),
                path_regex: Some(".*".into()),
                methods: vec!["*".into()],
                ..Default::default()
            },
        ]
    );
    state.http_route_groups.pop();
    let c = compute(&state);
    assert!(c
        .services
        .iter()
        .find(|s| s.name == "web")
        .unwrap()
        .split
        .is_none());
    assert_eq!(reasons(&c), [reason::ROUTE_NOT_FOUND]);
}

#[test]
fn oldest_split_wins_and_orphans_are_reported() {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    let mut state = base();
    let mut newer = traffic_split(NS, "a-newer", "web", &[("web-v2", 1)]);
    newer.metadata.creation_timestamp = Some(Time("2026-01-02T00:00:00Z".parse().unwrap()));
    let mut older = traffic_split(NS, "z-older", "web", &[("web-v1", 1)]);
    older.metadata.creation_timestamp = Some(Time("2026-01-01T00:00:00Z".parse().unwrap()));
    state.traffic_splits.push(Arc::new(newer));
    state.traffic_splits.push(Arc::new(older));
    state.traffic_splits.push(Arc::new(traffic_split(
        NS,
        "orphan",
        "nope",
        &[("web-v1", 1)],
    )));
    let c = compute(&state);
    let split = c
        .services
        .iter()
        .find(|s| s.name == "web")
        .unwrap()
        .split
        .clone()
        .unwrap();
    assert_eq!(split.name, "z-older");
    let mut got: Vec<_> = c
        .findings
        .iter()
        .map(|f| (f.reason, f.object.name.as_str()))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            (reason::CONFLICTING_SPLIT, "a-newer"),
            (reason::ROOT_SERVICE_NOT_FOUND, "orphan")
        ]
    );
}

#[test]
fn traffic_targets_become_inbound_policies_of_their_destination() {
    let mut state = base();
    state.http_route_groups.push(Arc::new(http_route_group(
        NS,
        "routes",
        &[
            ("read", HttpMethod::Get, "/items/.*"),
            ("write", HttpMethod::Post, "/items"),
        ],
    )));
    state
        .tcp_routes
        .push(Arc::new(tcp_route(NS, "metrics", &[9100])));
    state.traffic_targets.push(Arc::new(traffic_target(
        NS,
        "client-reads",
        "web",
        vec![subject(NS, "client"), subject("other", "batch")],
        vec![http_rule("routes", &["read"]), tcp_rule("metrics")],
    )));
    let c = compute(&state);
    let workload = Workload::of_pod(&pod(NS, "v1-a", "web", true, &[8080, 9100, 8080]));
    assert_eq!(workload.ports, [8080, 9100]);
    let inbound = c.inbound_for(&workload);
    assert_eq!(
        inbound.ports.iter().map(|p| p.port).collect::<Vec<_>>(),
        [8080, 9100]
    );
    assert!(!inbound.permissive);
    assert_eq!(inbound.policies.len(), 2, "{:?}", inbound.policies);
    let http = &inbound.policies[0];
    assert_eq!(
        http.sources,
        [
            "spiffe://cluster.local/ns/other/sa/batch",
            "spiffe://cluster.local/ns/shop/sa/client"
        ]
    );
    assert_eq!(http.http.len(), 1);
    assert_eq!(http.http[0].name.as_deref(), Some("read"));
    assert!(http.tcp_ports.is_empty());
    let tcp = &inbound.policies[1];
    assert!(tcp.http.is_empty());
    assert_eq!(tcp.tcp_ports, [9100]);
    // Another ServiceAccount gets nothing.
    let other = Workload {
        service_account: "client".into(),
        ..workload.clone()
    };
    assert!(c.inbound_for(&other).policies.is_empty());
    assert!(c.findings.is_empty(), "{:?}", c.findings);
    // Permissive mode is passed through.
    let permissive = Computed::new(
        &state,
        &MeshSettings {
            permissive: true,
            ..Default::default()
        },
    );
    assert!(permissive.inbound_for(&workload).permissive);
}

#[test]
fn a_target_with_missing_routes_allows_nothing() {
    let mut state = base();
    state.http_route_groups.push(Arc::new(http_route_group(
        NS,
        "routes",
        &[("read", HttpMethod::Get, "/")],
    )));
    state.traffic_targets.push(Arc::new(traffic_target(
        NS,
        "broken",
        "web",
        vec![subject(NS, "client")],
        vec![
            http_rule("missing", &[]),
            http_rule("routes", &["nope"]),
            tcp_rule("gone"),
        ],
    )));
    state.traffic_targets.push(Arc::new(traffic_target(
        NS,
        "ghost",
        "nobody",
        vec![subject(NS, "client")],
        vec![http_rule("routes", &[])],
    )));
    let c = compute(&state);
    let workload = Workload::of_pod(&pod(NS, "x", "web", true, &[80]));
    assert!(
        c.inbound_for(&workload).policies.is_empty(),
        "an unresolvable target must not allow everything"
    );
    let mut got: Vec<_> = c
        .findings
        .iter()
        .map(|f| (f.object.name.as_str(), f.reason))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("broken", reason::NOTHING_ALLOWED),
            ("broken", reason::ROUTE_MATCH_NOT_FOUND),
            ("broken", reason::ROUTE_NOT_FOUND),
            ("broken", reason::ROUTE_NOT_FOUND),
            ("ghost", reason::DESTINATION_NOT_FOUND),
        ]
    );
}

#[test]
fn result_does_not_depend_on_cache_order() {
    let mut state = base();
    state.traffic_splits.push(Arc::new(traffic_split(
        NS,
        "canary",
        "web",
        &[("web-v1", 1), ("web-v2", 1)],
    )));
    let workload = Workload::of_pod(&pod(NS, "c", "client", true, &[80]));
    let a = serde_json::to_string(&compute(&state).proxy_config(&workload)).unwrap();
    state.services.reverse();
    state.endpoint_slices.reverse();
    state.pods.reverse();
    let b = serde_json::to_string(&compute(&state).proxy_config(&workload)).unwrap();
    assert_eq!(a, b);
}

/// A pod whose app container has the three kinds of probe, in their
/// different spellings; the kubelet's plain-HTTP GETs become probe routes.
#[test]
fn kubelet_http_probes_become_probe_routes() {
    use k8s_openapi::api::core::v1::{ContainerPort, ExecAction, GRPCAction, HTTPGetAction, Probe};
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    use meshlet_crds::contract::config::ProbeRoute;

    let get = |port: IntOrString, path: Option<&str>| Probe {
        http_get: Some(HTTPGetAction {
            port,
            path: path.map(Into::into),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut p = pod(NS, "v1-a", "web", true, &[8080]);
    let app = &mut p.spec.as_mut().unwrap().containers[0];
    app.ports.as_mut().unwrap().push(ContainerPort {
        name: Some("admin".into()),
        container_port: 9901,
        ..Default::default()
    });
    app.liveness_probe = Some(get(IntOrString::Int(8080), Some("/healthz?verbose=1")));
    app.readiness_probe = Some(get(IntOrString::String("admin".into()), None));
    let mut elsewhere = get(IntOrString::Int(8080), Some("/elsewhere"));
    elsewhere.http_get.as_mut().unwrap().host = Some("10.0.0.1".into());
    app.startup_probe = Some(elsewhere);
    let mut sidecar = app.clone();
    sidecar.name = "sidecar".into();
    sidecar.liveness_probe = Some(get(IntOrString::String("nope".into()), Some("/x")));
    let mut https = get(IntOrString::Int(8443), Some("/tls"));
    https.http_get.as_mut().unwrap().scheme = Some("HTTPS".into());
    sidecar.readiness_probe = Some(https);
    sidecar.startup_probe = Some(Probe {
        exec: Some(ExecAction {
            command: Some(vec!["true".into()]),
        }),
        ..Default::default()
    });
    let mut grpc = sidecar.clone();
    grpc.name = "grpc".into();
    grpc.liveness_probe = Some(Probe {
        grpc: Some(GRPCAction {
            port: 9000,
            service: Some("app".into()),
        }),
        ..Default::default()
    });
    p.spec.as_mut().unwrap().containers.push(sidecar);
    p.spec.as_mut().unwrap().containers.push(grpc);
    // What the operator's pod cache keeps is enough.
    crate::state::stores::trim_pod(&mut p);
    let workload = Workload::of_pod(&p);
    let probes = compute(&base()).inbound_for(&workload).probes;
    assert_eq!(
        probes,
        [
            ProbeRoute {
                port: 8080,
                path: "/healthz".into()
            },
            ProbeRoute {
                port: 9000,
                path: meshlet_crds::contract::config::GRPC_HEALTH_CHECK_PATH.into()
            },
            ProbeRoute {
                port: 9901,
                path: "/".into()
            },
        ],
        "sorted; query dropped; named port resolved; empty path is /; gRPC \
         is the health check; host, HTTPS, unknown port names and exec \
         probes skipped; duplicates merged"
    );
}

#[test]
fn namespace_annotation_overrides_the_install_default() {
    use k8s_openapi::api::core::v1::Namespace;
    use meshlet_crds::contract::annotations::DEFAULT_POLICY;

    let namespace = |name: &str, policy: Option<&str>| {
        let mut ns = Namespace::default();
        ns.metadata.name = Some(name.into());
        ns.metadata.uid = Some(format!("uid-{name}"));
        if let Some(p) = policy {
            ns.metadata.annotations = Some([(DEFAULT_POLICY.to_string(), p.to_string())].into());
        }
        Arc::new(ns)
    };
    let mut state = base();
    state.namespaces = vec![
        namespace("open", Some("permissive")),
        namespace("strict", Some("deny")),
        namespace("typo", Some("allow")),
        namespace("plain", None),
    ];
    let in_ns = |ns: &str| Workload {
        namespace: ns.into(),
        ..Workload::of_pod(&pod(ns, "p", "web", true, &[80]))
    };
    for install_permissive in [false, true] {
        let c = Computed::new(
            &state,
            &MeshSettings {
                permissive: install_permissive,
                ..Default::default()
            },
        );
        assert!(c.inbound_for(&in_ns("open")).permissive);
        assert!(!c.inbound_for(&in_ns("strict")).permissive);
        assert_eq!(c.inbound_for(&in_ns("typo")).permissive, install_permissive);
        assert_eq!(
            c.inbound_for(&in_ns("plain")).permissive,
            install_permissive
        );
        assert_eq!(
            c.inbound_for(&in_ns("no-such-namespace")).permissive,
            install_permissive
        );
        assert_eq!(reasons(&c), [reason::INVALID_DEFAULT_POLICY]);
        let f = &c.findings[0];
        assert_eq!(
            (
                f.object.kind.as_str(),
                f.object.name.as_str(),
                f.object.namespace.as_str()
            ),
            ("Namespace", "typo", "typo")
        );
        assert!(
            f.message.contains("meshlet.dev/default-policy") && f.message.contains("\"allow\""),
            "{}",
            f.message
        );
    }
}

/// SMI: sources may be ServiceAccounts of any namespace (an empty namespace
/// means the TrafficTarget's), but a TrafficTarget only opens workloads of
/// its own namespace.
#[test]
fn sources_may_be_elsewhere_but_the_destination_is_home() {
    let mut state = base();
    state.http_route_groups.push(Arc::new(http_route_group(
        NS,
        "routes",
        &[("all", HttpMethod::Any, ".*")],
    )));
    let mut same_ns_source = subject(NS, "client");
    same_ns_source.namespace = None;
    state.traffic_targets.push(Arc::new(traffic_target(
        NS,
        "from-anywhere",
        "web",
        vec![same_ns_source, subject("monitoring", "prometheus")],
        vec![http_rule("routes", &[])],
    )));
    let mut sneaky = traffic_target(
        NS,
        "into-other-namespace",
        "web",
        vec![subject(NS, "client")],
        vec![http_rule("routes", &[])],
    );
    sneaky.spec.destination.namespace = Some("payments".into());
    state.traffic_targets.push(Arc::new(sneaky));
    state
        .service_accounts
        .push(Arc::new(service_account("payments", "web")));
    let c = compute(&state);
    let home = c.inbound_for(&Workload::of_pod(&pod(NS, "p", "web", true, &[80])));
    assert_eq!(home.policies.len(), 1);
    assert_eq!(
        home.policies[0].sources,
        [
            "spiffe://cluster.local/ns/monitoring/sa/prometheus",
            "spiffe://cluster.local/ns/shop/sa/client"
        ]
    );
    let other = c.inbound_for(&Workload::of_pod(&pod("payments", "p", "web", true, &[80])));
    assert!(other.policies.is_empty(), "{:?}", other.policies);
    assert_eq!(reasons(&c), [reason::CROSS_NAMESPACE_DESTINATION]);
}

/// The SMI traffic-access example resolves to the grants the proxy's
/// authorization matrix (proxy/tests/authz_matrix.rs) is built on.
#[test]
fn smi_access_example_resolves_to_the_matrix_policies() {
    let mut state = base();
    state.http_route_groups.push(Arc::new(http_route_group(
        NS,
        "api-service-routes",
        &[
            ("api", HttpMethod::Any, "/api"),
            ("metrics", HttpMethod::Get, "/metrics"),
        ],
    )));
    state.traffic_targets.push(Arc::new(traffic_target(
        NS,
        "api-service-metrics",
        "api-service",
        vec![subject("monitoring", "prometheus")],
        vec![http_rule("api-service-routes", &["metrics"])],
    )));
    state.traffic_targets.push(Arc::new(traffic_target(
        NS,
        "api-service-api",
        "api-service",
        vec![
            subject(NS, "website-service"),
            subject(NS, "payments-service"),
        ],
        vec![http_rule("api-service-routes", &["api"])],
    )));
    state
        .service_accounts
        .push(Arc::new(service_account(NS, "api-service")));
    let c = compute(&state);
    let inbound = c.inbound_for(&Workload::of_pod(&pod(
        NS,
        "a",
        "api-service",
        true,
        &[8080],
    )));
    let got: Vec<_> = inbound
        .policies
        .iter()
        .map(|p| {
            (
                p.name.as_str(),
                p.sources.clone(),
                p.http
                    .iter()
                    .map(|m| (m.path_regex.clone().unwrap(), m.methods.clone()))
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "api-service-api",
                vec![
                    "spiffe://cluster.local/ns/shop/sa/payments-service".to_string(),
                    "spiffe://cluster.local/ns/shop/sa/website-service".to_string()
                ],
                vec![("/api".to_string(), vec!["*".to_string()])]
            ),
            (
                "api-service-metrics",
                vec!["spiffe://cluster.local/ns/monitoring/sa/prometheus".to_string()],
                vec![("/metrics".to_string(), vec!["GET".to_string()])]
            ),
        ]
    );
    assert!(c.findings.is_empty(), "{:?}", c.findings);
}

/// A v1alpha2 TrafficTarget's `destination.port` survives conversion to
/// the stored version only in the conversion-data annotation; it still
/// limits the grant, until the object is edited in v1alpha3.
#[test]
fn a_v1alpha2_destination_port_limits_the_grant() {
    use meshlet_crds::access::v1alpha3::TrafficTarget;

    let written = serde_json::json!({
        "apiVersion": "access.smi-spec.io/v1alpha2",
        "kind": "TrafficTarget",
        "metadata": {"name": "legacy", "namespace": NS},
        "spec": {
            "destination": {"kind": "ServiceAccount", "name": "web", "namespace": NS, "port": 8080},
            "rules": [{"kind": "HTTPRouteGroup", "name": "routes"}],
            "sources": [{"kind": "ServiceAccount", "name": "client", "namespace": NS}]
        }
    });
    let stored =
        meshlet_crds::conversion::convert(&written, "access.smi-spec.io/v1alpha3").unwrap();
    let stored: TrafficTarget = serde_json::from_value(stored).unwrap();
    let mut state = base();
    state.http_route_groups.push(Arc::new(http_route_group(
        NS,
        "routes",
        &[("all", HttpMethod::Any, ".*")],
    )));
    state.traffic_targets.push(Arc::new(stored.clone()));
    let workload = Workload::of_pod(&pod(NS, "p", "web", true, &[8080, 9090]));
    let policies = compute(&state).inbound_for(&workload).policies;
    assert_eq!(policies.len(), 1);
    assert_eq!(policies[0].ports, [8080]);

    // The same in v1alpha1 (fields at the top level, rules are `specs`).
    let written_v1 = serde_json::json!({
        "apiVersion": "access.smi-spec.io/v1alpha1",
        "kind": "TrafficTarget",
        "metadata": {"name": "legacy", "namespace": NS},
        "destination": {"kind": "ServiceAccount", "name": "web", "namespace": NS, "port": 9090},
        "specs": [{"kind": "HTTPRouteGroup", "name": "routes"}],
        "sources": [{"kind": "ServiceAccount", "name": "client", "namespace": NS}]
    });
    let stored_v1 =
        meshlet_crds::conversion::convert(&written_v1, "access.smi-spec.io/v1alpha3").unwrap();
    let stored_v1: TrafficTarget = serde_json::from_value(stored_v1).unwrap();
    let mut state_v1 = state.clone();
    state_v1.traffic_targets = vec![Arc::new(stored_v1)];
    let policies = compute(&state_v1).inbound_for(&workload).policies;
    assert_eq!(policies[0].ports, [9090]);

    // Edited in v1alpha3 since: the annotation is stale and ignored.
    let mut edited = stored;
    edited.spec.sources.push(subject(NS, "batch"));
    state.traffic_targets = vec![Arc::new(edited)];
    let policies = compute(&state).inbound_for(&workload).policies;
    assert!(policies[0].ports.is_empty(), "{policies:?}");
}
