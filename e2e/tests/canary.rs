//! Canary scenarios (`make e2e`): SMI TrafficSplit as meshed clients see it.
//! - weighted: 90/10 measured over 1,000 requests (each on a fresh
//!   connection) must fall within 5 standard deviations of 10 % to v2; then
//!   a shift to 0/100 while a client sends a request every 10 ms: the time
//!   from the change to the first request of the final all-v2 run is the
//!   propagation time (printed; the design budget is 1 s in kind).
//! - header A/B (TrafficSplit v1alpha4 `matches` → HTTPRouteGroup with a
//!   header): requests with `x-canary: true` go to v2, the rest to the root
//!   Service (v1 only).

use anyhow::{bail, ensure, Context};
use kube::Client;
use meshlet_e2e::mesh::{self, ClientPod, Server};
use meshlet_e2e::scenario;
use serde_json::{json, Value};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const REQUESTS: usize = 1000;

/// Two versions of `web` (one pod each), Services `web` (root, selecting
/// `root_selector`), `web-v1`, `web-v2`, and the access policy.
async fn two_versions(client: &Client, ns: &str, root_selector: Value) -> anyhow::Result<()> {
    mesh::service_account(client, ns, "web").await?;
    mesh::service_account(client, ns, "client").await?;
    mesh::allow_all_routes(client, ns, "client", "web").await?;
    for version in ["v1", "v2"] {
        mesh::deploy_server(
            client,
            ns,
            &Server {
                name: &format!("web-{version}"),
                app: "web",
                version,
                replicas: 1,
                service_account: "web",
            },
        )
        .await?;
        mesh::service(
            client,
            ns,
            &format!("web-{version}"),
            json!({"app": "web", "version": version}),
        )
        .await?;
    }
    mesh::service(client, ns, "web", root_selector).await?;
    for svc in ["web-v1", "web-v2"] {
        mesh::wait_endpoints(client, ns, svc, 1).await?;
    }
    Ok(())
}

fn split(weights: (u32, u32)) -> Value {
    json!({
        "apiVersion": "split.smi-spec.io/v1alpha4", "kind": "TrafficSplit",
        "metadata": { "name": "web" },
        "spec": {
            "service": "web",
            "backends": [
                { "service": "web-v1", "weight": weights.0 },
                { "service": "web-v2", "weight": weights.1 }
            ]
        }
    })
}

fn unix_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

#[tokio::test]
async fn weighted_split_and_weight_shift() {
    scenario::run("canary", true, |client, ns| async move {
        weighted(&client, &ns).await
    })
    .await;
}

async fn weighted(client: &Client, ns: &str) -> anyhow::Result<()> {
    two_versions(client, ns, json!({"app": "web"})).await?;
    mesh::apply_smi(client, ns, split((90, 10))).await?;
    let url = format!("http://web.{ns}.svc.cluster.local/canary");
    let count = REQUESTS.to_string();
    let mut pod = ClientPod::new(
        "measure",
        &[
            "get",
            "--wait-proxy",
            "60",
            "--wait-ready",
            "60",
            "--count",
            &count,
            &url,
        ],
    );
    pod.service_account = "client";
    let t0 = std::time::Instant::now();
    let logs = mesh::run_client(client, ns, &pod).await?;
    let versions = mesh::tally(&logs, "version");
    let (v1, v2) = (
        versions.get("v1").copied().unwrap_or(0),
        versions.get("v2").copied().unwrap_or(0),
    );
    let sd = (REQUESTS as f64 * 0.1 * 0.9).sqrt();
    println!(
        "90/10 split over {REQUESTS} requests: v1={v1} v2={v2} (expected v2 100 ± {:.0}, 5σ) in {:.1?}",
        5.0 * sd,
        t0.elapsed()
    );
    ensure!(
        v1 + v2 == REQUESTS,
        "not every request reached v1 or v2:\n{logs}"
    );
    ensure!(
        (v2 as f64 - 100.0).abs() <= 5.0 * sd,
        "v2 got {v2} of {REQUESTS}, outside 100 ± {:.0}:\n{logs}",
        5.0 * sd
    );

    // The shift, timed from the client's side.
    let mut watch = ClientPod::new(
        "watch",
        &[
            "get",
            "--wait-proxy",
            "60",
            "--wait-ready",
            "60",
            "--count",
            "1500",
            "--interval-ms",
            "10",
            "--print-changes",
            &url,
        ],
    );
    watch.service_account = "client";
    mesh::start_client(client, ns, &watch).await?;
    meshlet_e2e::wait::until(
        "the watching client to start counting",
        Duration::from_secs(120),
        Duration::from_millis(200),
        || async {
            let logs = mesh::container_logs(client, ns, "watch", mesh::CLIENT_CONTAINER)
                .await
                .unwrap_or_default();
            Ok(logs.contains("START ").then_some(()))
        },
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let changed_at = unix_ms();
    mesh::apply_smi(client, ns, split((0, 100))).await?;
    let (phase, logs) = mesh::finish(client, ns, "watch", Duration::from_secs(180)).await?;
    ensure!(
        phase == "Succeeded",
        "watching client ended {phase}:\n{logs}"
    );
    let changes: Vec<(u128, &str)> = logs
        .lines()
        .filter_map(|l| l.strip_prefix("CHANGE "))
        .filter_map(|l| {
            let (t, v) = l.split_once(' ')?;
            Some((t.parse().ok()?, v))
        })
        .collect();
    let end: u128 = logs
        .lines()
        .find_map(|l| {
            l.strip_prefix("END ")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .context("no END line")?;
    let Some(&(switched, version)) = changes.last() else {
        bail!("no CHANGE lines:\n{logs}");
    };
    ensure!(
        version == "v2",
        "the last requests went to {version}, not v2:\n{logs}"
    );
    ensure!(
        changes.iter().any(|(t, v)| *v == "v1" && *t < changed_at),
        "v1 never answered before the shift (was 90/10 in force?):\n{logs}"
    );
    let propagation = switched.saturating_sub(changed_at);
    println!(
        "0/100 shift: every request from {propagation} ms after the change reached v2 \
         ({} ms of all-v2 traffic after that)",
        end - switched
    );
    ensure!(
        end - switched >= 3000,
        "too little traffic after the switch to tell ({} ms)",
        end - switched
    );
    ensure!(
        propagation <= 1000,
        "the 0/100 shift took {propagation} ms to reach every request (budget 1 s)"
    );
    Ok(())
}

#[tokio::test]
async fn header_matched_ab_split() {
    scenario::run(
        "ab",
        true,
        |client, ns| async move { ab(&client, &ns).await },
    )
    .await;
}

async fn ab(client: &Client, ns: &str) -> anyhow::Result<()> {
    // The root Service selects v1 only: unmatched requests stay on v1.
    two_versions(client, ns, json!({"app": "web", "version": "v1"})).await?;
    mesh::apply_smi(
        client,
        ns,
        json!({
            "apiVersion": "specs.smi-spec.io/v1alpha4", "kind": "HTTPRouteGroup",
            "metadata": { "name": "canary-users" },
            "spec": { "matches": [{ "name": "canary-header", "headers": [{ "x-canary": "true" }] }] }
        }),
    )
    .await?;
    mesh::apply_smi(
        client,
        ns,
        json!({
            "apiVersion": "split.smi-spec.io/v1alpha4", "kind": "TrafficSplit",
            "metadata": { "name": "web-ab" },
            "spec": {
                "service": "web",
                "matches": [{ "kind": "HTTPRouteGroup", "name": "canary-users" }],
                "backends": [{ "service": "web-v2", "weight": 100 }]
            }
        }),
    )
    .await?;
    mesh::wait_endpoints(client, ns, "web", 1).await?;
    let url = format!("http://web.{ns}.svc.cluster.local/ab");
    for (name, header, want) in [
        ("plain", None, "v1"),
        ("canary", Some("x-canary: true"), "v2"),
    ] {
        let mut args = vec![
            "get",
            "--wait-proxy",
            "60",
            "--wait-ready",
            "60",
            "--count",
            "50",
        ];
        if let Some(h) = header {
            args.extend(["--header", h]);
        }
        args.push(&url);
        let mut pod = ClientPod::new(name, &args);
        pod.service_account = "client";
        let logs = mesh::run_client(client, ns, &pod).await?;
        let versions = mesh::tally(&logs, "version");
        println!("A/B {name} requests ({header:?}): {versions:?}");
        ensure!(
            versions.get(want) == Some(&50) && versions.len() == 1,
            "{name}: expected all 50 on {want}, got {versions:?}:\n{logs}"
        );
    }
    Ok(())
}
