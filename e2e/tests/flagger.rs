//! Flagger scenario (`make e2e-flagger`): Flagger v1.36.1, built from its Go
//! module, drives a canary on Meshlet with its unchanged `linkerd` provider:
//! it writes the TrafficSplit (`split.smi-spec.io/v1alpha1`) and judges the
//! canary by Linkerd-style PromQL on a Prometheus (Debian's) that scrapes the
//! Meshlet proxies with deploy/observability/prometheus-scrape.yaml.
//!
//! 1. A healthy release (v2): Flagger steps the canary to 25 % and 50 %,
//!    then promotes; the Canary ends `Succeeded`, the TrafficSplit back at
//!    canary 0 / primary 100, and the primary serves v2. At each weight the
//!    load generator's own proxy must have sent that share to the canary.
//! 2. A failing release (v3 listens on the wrong port: its proxy answers
//!    5xx, its readiness probe passes): Flagger's request-success-rate
//!    check fails, it rolls back; the Canary ends `Failed`, the TrafficSplit
//!    at 0 / 100, and the primary still serves v2.

// Crate root of this test target: its modules live in tests/flagger/.
#[path = "flagger/observe.rs"]
mod observe;
#[path = "flagger/stack.rs"]
mod stack;

use anyhow::{ensure, Context};
use kube::Client;
use meshlet_e2e::mesh::{self, ClientPod};
use meshlet_e2e::{scenario, wait};
use observe::Window;
use serde_json::Value;
use stack::TARGET;
use std::time::{Duration, Instant};

#[tokio::test]
async fn flagger_promotes_a_healthy_canary_and_rolls_back_a_failing_one() {
    scenario::run("flagger", true, |client, ns| async move {
        run(&client, &ns).await
    })
    .await;
}

async fn run(client: &Client, ns: &str) -> anyhow::Result<()> {
    let t = Instant::now();
    stack::deploy_prometheus(client, ns).await?;
    stack::deploy_flagger(client, ns).await?;
    stack::deploy_target(client, ns).await?;
    for d in ["prometheus", "flagger", TARGET] {
        stack::wait_deployment(client, ns, d).await?;
    }
    println!(
        "[flagger] Prometheus, Flagger and {TARGET} v1 ready in {:.1?}",
        t.elapsed()
    );

    let t = Instant::now();
    stack::apply_canary(client, ns, stack::canary()).await?;
    wait::until(
        "the Canary to be Initialized",
        Duration::from_secs(180),
        Duration::from_secs(1),
        || async {
            let s = observe::canary_status(client, ns).await?;
            Ok((s.phase == "Initialized").then_some(()))
        },
    )
    .await?;
    let split = observe::split_weights(client, ns).await?;
    ensure!(
        split == (0, 100),
        "after initialisation the TrafficSplit should send everything to the primary, is {split:?}"
    );
    stack::start_load(client, ns).await?;
    wait_for_scrape(client, ns, &format!("{TARGET}-primary")).await?;
    println!(
        "[flagger] Canary Initialized (TrafficSplit canary=0 primary=100), load running, \
         Prometheus has {TARGET}-primary's proxy metrics: {:.1?}",
        t.elapsed()
    );

    // (a) A healthy release is promoted.
    let t = Instant::now();
    stack::release(client, ns, "v2", 8080).await?;
    let samples = observe::follow_rollout(client, ns, Duration::from_secs(300)).await?;
    let rollout = t.elapsed();
    let windows = observe::windows(&samples, Duration::from_secs(3));
    print_windows("healthy v2", &windows);
    let last = samples.last().context("no samples")?;
    ensure!(
        last.status.phase == "Succeeded",
        "healthy release: Canary ended {:?}; events:\n{}",
        last.status,
        observe::canary_events(client, ns).await?.join("\n")
    );
    let steps = weight_steps(&samples);
    ensure!(
        steps.starts_with(&[0, 25, 50]) && steps.last() == Some(&0),
        "healthy release: canary weights went {steps:?}, expected 0, 25, 50, …, 0"
    );
    check_routing(&windows, "healthy release")?;
    for w in windows.iter().filter(|w| w.canary_weight > 0) {
        let errors = w.canary.1 + w.primary.1;
        ensure!(
            errors * 100 <= w.total(),
            "healthy release: {errors} 5xx of {} at canary weight {}",
            w.total(),
            w.canary_weight
        );
    }
    ensure!(
        last.split == (0, 100),
        "after promotion the split is {:?}",
        last.split
    );
    expect_versions(client, ns, "after-promotion", "v2").await?;
    println!(
        "[flagger] healthy release promoted in {:.1?}; weights {steps:?}",
        rollout
    );

    // (b) A failing release is rolled back.
    let t = Instant::now();
    stack::release(client, ns, "v3", 8081).await?;
    let samples = observe::follow_rollout(client, ns, Duration::from_secs(240)).await?;
    let rollout = t.elapsed();
    let windows = observe::windows(&samples, Duration::from_secs(3));
    print_windows("failing v3", &windows);
    let events = observe::canary_events(client, ns).await?;
    println!("[flagger] Flagger's events on the Canary:");
    for e in &events {
        println!("    {e}");
    }
    let last = samples.last().context("no samples")?;
    ensure!(
        last.status.phase == "Failed",
        "failing release: Canary ended {:?}",
        last.status
    );
    ensure!(
        last.split == (0, 100),
        "after the rollback the split is {:?}",
        last.split
    );
    let steps = weight_steps(&samples);
    ensure!(
        steps.first() == Some(&0) && steps.contains(&25) && steps.last() == Some(&0),
        "failing release: canary weights went {steps:?}, expected 0, 25, …, 0"
    );
    check_routing(&windows, "failing release")?;
    let canary_seen: (u64, u64) = windows
        .iter()
        .filter(|w| w.canary_weight > 0)
        .fold((0, 0), |a, w| (a.0 + w.canary.0, a.1 + w.canary.1));
    ensure!(
        canary_seen.1 > 0 && canary_seen.1 >= 9 * canary_seen.0,
        "failing release: the canary answered {} ok and {} 5xx; expected mostly 5xx",
        canary_seen.0,
        canary_seen.1
    );
    ensure!(
        events
            .iter()
            .any(|e| e.contains("advancement success rate")),
        "no 'Halt … advancement success rate' event: the rollback was not the success-rate check's"
    );
    ensure!(
        events
            .iter()
            .any(|e| e.contains("Rolling back") && e.contains("failed checks threshold reached")),
        "no 'Rolling back … failed checks threshold reached' event"
    );
    expect_versions(client, ns, "after-rollback", "v2").await?;
    println!(
        "[flagger] failing release rolled back in {:.1?}; weights {steps:?}; canary answered {} ok / {} 5xx",
        rollout, canary_seen.0, canary_seen.1
    );
    Ok(())
}

/// The TrafficSplit's canary weight over time, consecutive repeats removed.
fn weight_steps(samples: &[observe::Sample]) -> Vec<i64> {
    let mut steps: Vec<i64> = samples.iter().map(|s| s.split.0).collect();
    steps.dedup();
    steps
}

fn print_windows(what: &str, windows: &[Window]) {
    for w in windows {
        println!(
            "[flagger] {what}: canary weight {:>3} for {:>5.1}s (counted): {:>4} requests, \
             canary {} ok/{} 5xx, primary {} ok/{} 5xx → canary share {:.0} %",
            w.canary_weight,
            w.seconds,
            w.total(),
            w.canary.0,
            w.canary.1,
            w.primary.0,
            w.primary.1,
            100.0 * w.canary_share()
        );
    }
}

/// Where requests went must follow the weights: at weight 0 none to the
/// canary; at 0 < w < 100, a share within 5 standard deviations (+ 5 points
/// for the window edges, sampled once a second) of w, for every window
/// long enough to count 40 requests.
fn check_routing(windows: &[Window], what: &str) -> anyhow::Result<()> {
    for w in windows.iter().filter(|w| w.total() >= 40) {
        let p = w.canary_weight as f64 / 100.0;
        if w.canary_weight == 0 {
            ensure!(
                w.canary.0 + w.canary.1 == 0,
                "{what}: at canary weight 0, {} requests still reached the canary: {w:?}",
                w.canary.0 + w.canary.1
            );
        } else {
            let sd = (p * (1.0 - p) / w.total() as f64).sqrt();
            let tolerance = 5.0 * sd + 0.05;
            ensure!(
                (w.canary_share() - p).abs() <= tolerance,
                "{what}: at canary weight {} the canary got {:.1} % of {} requests (allowed ± {:.1} points): {w:?}",
                w.canary_weight,
                100.0 * w.canary_share(),
                w.total(),
                100.0 * tolerance
            );
        }
    }
    ensure!(
        windows
            .iter()
            .any(|w| w.canary_weight > 0 && w.total() >= 40),
        "{what}: no window with canary traffic long enough to count"
    );
    Ok(())
}

/// A fresh meshed client's 20 requests to the apex Service all answer
/// `version` (the primary's).
async fn expect_versions(
    client: &Client,
    ns: &str,
    pod: &str,
    version: &str,
) -> anyhow::Result<()> {
    let url = format!("http://{TARGET}.{ns}.svc.cluster.local/check");
    let mut c = ClientPod::new(pod, &["get", "--wait-proxy", "60", "--count", "20", &url]);
    c.service_account = stack::LOADGEN;
    let logs = mesh::run_client(client, ns, &c).await?;
    let versions = mesh::tally(&logs, "version");
    println!("[flagger] {pod}: versions {versions:?}");
    ensure!(
        versions.get(version) == Some(&20) && versions.len() == 1,
        "{pod}: expected 20 × {version}, got {versions:?}:\n{logs}"
    );
    Ok(())
}

/// Wait until Prometheus has a `response_total` series of `deployment`'s
/// inbound side in this namespace (the series Flagger's queries select).
async fn wait_for_scrape(client: &Client, ns: &str, deployment: &str) -> anyhow::Result<()> {
    let query = format!(
        "response_total{{namespace=\"{ns}\",deployment=\"{deployment}\",direction=\"inbound\"}}"
    );
    wait::until(
        &format!("Prometheus to scrape {deployment}'s proxy"),
        Duration::from_secs(120),
        Duration::from_secs(2),
        || async {
            let result = prometheus_query(client, ns, &query).await?;
            Ok((!result.as_array().is_none_or(|a| a.is_empty())).then_some(()))
        },
    )
    .await
}

/// An instant query through the API server's service proxy; `data.result`.
async fn prometheus_query(client: &Client, ns: &str, query: &str) -> anyhow::Result<Value> {
    let path = format!(
        "/api/v1/namespaces/{ns}/services/prometheus:9090/proxy/api/v1/query?query={}",
        percent_encode(query)
    );
    let text = client
        .request_text(http::Request::get(&path).body(Vec::new())?)
        .await
        .with_context(|| format!("GET {path}"))?;
    let body: Value = serde_json::from_str(&text).with_context(|| format!("not JSON: {text}"))?;
    ensure!(body["status"] == "success", "query {query}: {body}");
    Ok(body["data"]["result"].clone())
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The scenario's scrape job (DNS discovery, for Debian's Prometheus) must
/// keep what the shipped kubernetes_sd job does: the same job, path,
/// honor_labels, pod label and port name.
#[test]
fn scrape_job_matches_the_shipped_one() {
    let shipped = stack::SHIPPED_SCRAPE_CONFIGS;
    let ours = stack::prometheus_config("ns");
    for needle in [
        "job_name: meshlet-proxy",
        "honor_labels: true",
        "metrics_path: /metrics",
    ] {
        assert!(shipped.contains(needle), "shipped file lost {needle:?}");
        assert!(ours.contains(needle), "scenario config lacks {needle:?}");
    }
    // What the shipped job selects on, and what the headless Service uses.
    assert!(shipped.contains("__meta_kubernetes_pod_label_meshlet_dev_meshed"));
    assert!(shipped.contains("regex: meshlet-admin"));
    assert_eq!(
        meshlet_crds::contract::annotations::MESHED_LABEL,
        "meshlet.dev/meshed"
    );
}
