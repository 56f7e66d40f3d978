//! Benchmark of the config computation at the scale: 1,000
//! Services, 10,000 endpoints (10 per service, each a meshed pod), 100
//! TrafficSplits and 100 TrafficTargets in 10 namespaces. Prints the full
//! recompute time, the time to serialize every namespace's outbound half,
//! the message size, and the process's peak RSS (VmHWM).
//!
//! `cargo run --release -p meshlet-operator --example bench_compute`

use std::sync::Arc;
use std::time::{Duration, Instant};

use meshlet_operator::config::{Computed, MeshSettings, Workload};
use meshlet_operator::fixtures::*;
use meshlet_operator::state::ClusterState;

const NAMESPACES: usize = 10;
const SERVICES: usize = 1_000;
const ENDPOINTS_PER_SERVICE: usize = 10;

fn state() -> ClusterState {
    let mut s = ClusterState::default();
    for i in 0..SERVICES {
        let ns = format!("ns-{}", i % NAMESPACES);
        let name = format!("svc-{i}");
        s.services.push(Arc::new(with_cluster_ip(
            service(&ns, &name, &[("http", 80, 8080)]),
            &format!("10.96.{}.{}", i / 250, i % 250 + 1),
        )));
        let pods: Vec<(String, String)> = (0..ENDPOINTS_PER_SERVICE)
            .map(|j| {
                (
                    format!("10.{}.{}.{}", 100 + i / 250, i % 250, j + 1),
                    format!("{name}-{j}"),
                )
            })
            .collect();
        for (_, pod_name) in &pods {
            s.pods
                .push(Arc::new(pod(&ns, pod_name, &name, true, &[8080])));
        }
        let eps: Vec<(&str, &str, bool)> = pods
            .iter()
            .map(|(ip, p)| (ip.as_str(), p.as_str(), true))
            .collect();
        s.endpoint_slices.push(Arc::new(endpoint_slice(
            &ns,
            &name,
            &format!("{name}-x"),
            "http",
            8080,
            &eps,
        )));
        s.service_accounts
            .push(Arc::new(service_account(&ns, &name)));
        if i % 10 == 0 && i + 2 < SERVICES {
            // Backends in the same namespace: svc-(i+10) and svc-(i+20) share i's namespace.
            let b1 = format!("svc-{}", (i + NAMESPACES) % SERVICES);
            let b2 = format!("svc-{}", (i + 2 * NAMESPACES) % SERVICES);
            s.traffic_splits.push(Arc::new(traffic_split(
                &ns,
                &format!("split-{i}"),
                &name,
                &[(&b1, 90), (&b2, 10)],
            )));
            s.traffic_targets.push(Arc::new(traffic_target(
                &ns,
                &format!("tt-{i}"),
                &name,
                vec![subject(&ns, &b1)],
                vec![tcp_rule("all")],
            )));
        }
    }
    for n in 0..NAMESPACES {
        s.tcp_routes
            .push(Arc::new(tcp_route(&format!("ns-{n}"), "all", &[])));
    }
    s
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn main() {
    let state = state();
    let settings = MeshSettings::default();
    let mut compute = Vec::new();
    let mut serialize = Vec::new();
    let mut size = 0;
    for _ in 0..5 {
        let began = Instant::now();
        let computed = Computed::new(&state, &settings);
        compute.push(began.elapsed());
        let began = Instant::now();
        for n in 0..NAMESPACES {
            let ns = format!("ns-{n}");
            let outbound = serde_json::to_vec(&computed.outbound_for(&ns)).unwrap();
            let workload = Workload {
                namespace: ns,
                service_account: "svc-0".into(),
                ports: vec![8080],
                probes: vec![],
            };
            let inbound = serde_json::to_vec(&computed.inbound_for(&workload)).unwrap();
            size = outbound.len() + inbound.len();
        }
        serialize.push(began.elapsed());
        assert_eq!(computed.services.len(), SERVICES);
        assert!(
            computed.findings.is_empty(),
            "{:?}",
            &computed.findings[..1]
        );
    }
    let best = |v: &[Duration]| *v.iter().min().unwrap();
    println!(
        "{SERVICES} services, {} endpoints, {} pods, {} splits, {} targets in {NAMESPACES} namespaces",
        SERVICES * ENDPOINTS_PER_SERVICE,
        state.pods.len(),
        state.traffic_splits.len(),
        state.traffic_targets.len()
    );
    println!("full recompute (index, services, endpoints, splits, policies): best {:?} of 5 (budget < 1 s)", best(&compute));
    println!(
        "serialize all {NAMESPACES} namespaces' configs: best {:?}; one config is {:.1} MB",
        best(&serialize),
        size as f64 / 1e6
    );
    println!("peak RSS {:.0} MB (budget < 200 MB; includes the synthetic state, not the watch caches' overhead)", peak_rss_mb());
}
