//! The `meshlet` binary's `stat` and `canary` against the real operator's
//! TrafficMetrics API, through the real kube-apiserver aggregator: fake
//! meshed pods serve the real proxy `Metrics` with traffic of known counts
//! and latencies, the operator scrapes them, and the CLI (kubeconfig of the
//! test API server) reads the answers and, for `canary`, writes the real
//! TrafficSplit's weights.
//!
//! The APIServices are cluster-wide, so the tests of this binary take turns
//! ([`METRICS_API`]): each starts without them (to see the CLI's error when
//! the API is missing), then starts its own operator that registers them.

mod common;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use common::fake_pods::{fake_proxy, inbound, outbound, pod, proxy_metrics, service, traffic};
use common::metrics_api::{self, Scraping};
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, Client};
use meshlet_crds::split::v1alpha4::TrafficSplit;
use meshlet_operator::context::Running;
use meshlet_operator::trafficmetrics::window::PodKey;
use meshlet_proxy::metrics::Metrics;
use meshlet_testenv::TestEnv;
use serde_json::{json, Value};

/// Held while a test has (or expects no) metrics APIServices.
static METRICS_API: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The `meshlet` binary of this build (built once per test binary).
fn meshlet_bin() -> Result<PathBuf> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| common::processes::workspace_bin("meshlet").map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

/// One run of the CLI.
#[derive(Debug)]
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `meshlet args…` with `KUBECONFIG` naming the test API server, and
/// prints the command and what it wrote (the test's log shows real output).
async fn meshlet(env: &TestEnv, args: &[&str], timeout: Duration) -> Result<Ran> {
    let out = tokio::time::timeout(
        timeout,
        tokio::process::Command::new(meshlet_bin()?)
            .args(args)
            .env("KUBECONFIG", env.kubeconfig_path())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .with_context(|| format!("meshlet {} still running after {timeout:?}", args.join(" ")))??;
    let ran = Ran {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout)?,
        stderr: String::from_utf8(out.stderr)?,
    };
    println!(
        "$ meshlet {}\n{}{}[exit {:?}]\n",
        args.join(" "),
        ran.stdout,
        ran.stderr,
        ran.code
    );
    Ok(ran)
}

/// A fake meshed pod: its proxy's metrics, served on `ip`.
struct FakePod {
    metrics: Arc<Metrics>,
    _server: AbortOnDrop,
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Pod `name` of Deployment `deployment` at `ip`, its proxy answering scrapes on `port`.
async fn fake_pod(
    client: &Client,
    ns: &str,
    deployment: &str,
    name: &str,
    ip: &str,
    port: u16,
) -> Result<FakePod> {
    let metrics = proxy_metrics(ns, deployment, name);
    let server = fake_proxy(ip, port, metrics.clone()).await?;
    pod(client, ns, deployment, name, ip).await?;
    Ok(FakePod {
        metrics,
        _server: AbortOnDrop(server),
    })
}

/// `client` calling the two backends `web-v1` and `web-v2` of TrafficSplit `web`.
struct Shop {
    client: FakePod,
    v1: FakePod,
    v2: FakePod,
}

/// The fake pods, their Services, and TrafficSplit `web` (apex `web`) with
/// the given weights; pod IPs are `127.0.0.{first_ip}` and the next two.
async fn shop(
    client: &Client,
    ns: &str,
    first_ip: u8,
    port: u16,
    weights: (u64, u64),
) -> Result<Shop> {
    let ip = |i: u8| format!("127.0.0.{}", first_ip + i);
    let shop = Shop {
        client: fake_pod(client, ns, "client", "client-a", &ip(0), port).await?,
        v1: fake_pod(client, ns, "web-v1", "web-v1-a", &ip(1), port).await?,
        v2: fake_pod(client, ns, "web-v2", "web-v2-a", &ip(2), port).await?,
    };
    service(client, ns, "web-v1", &[("web-v1-a", &ip(1))]).await?;
    service(client, ns, "web-v2", &[("web-v2-a", &ip(2))]).await?;
    traffic_split(client, ns, weights).await?;
    Ok(shop)
}

/// TrafficSplit `web` (apex `web`) over `web-v1` and `web-v2` with `weights`.
async fn traffic_split(client: &Client, ns: &str, weights: (u64, u64)) -> Result<()> {
    let split: TrafficSplit = serde_json::from_value(json!({
        "apiVersion": "split.smi-spec.io/v1alpha4", "kind": "TrafficSplit",
        "metadata": {"name": "web"},
        "spec": {"service": "web", "backends": [
            {"service": "web-v1", "weight": weights.0},
            {"service": "web-v2", "weight": weights.1}]}
    }))?;
    common::create(client, ns, &split).await?;
    Ok(())
}

/// Waits until the operator holds an increase (two scrapes) for each pod
/// of `ns`, so traffic recorded from now on counts in the window.
async fn scraped(op: &Running, ns: &str, pods: &[&str]) -> Result<()> {
    let windows = op
        .traffic_metrics
        .as_ref()
        .context("metrics API started")?
        .windows
        .clone();
    common::eventually("the fake pods scraped", Duration::from_secs(20), || async {
        let increases = windows.increases(Instant::now());
        Ok(pods
            .iter()
            .all(|name| {
                increases.contains_key(&PodKey {
                    namespace: ns.into(),
                    name: name.to_string(),
                })
            })
            .then_some(()))
    })
    .await
}

/// A TrafficMetrics item's metric `name`, as a number.
fn metric(item: &Value, name: &str) -> f64 {
    let text = item["metrics"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["name"] == name))
        .and_then(|m| m["value"].as_str())
        .unwrap_or_else(|| panic!("{name} missing in {item}"));
    match text.strip_suffix('m') {
        Some(milli) => milli.parse::<f64>().unwrap() / 1000.0,
        None => text.parse().unwrap(),
    }
}

/// Responses (success, failure) the API reports for `path`'s items, summed.
async fn counts(client: &Client, path: &str) -> Result<(f64, f64)> {
    let list = metrics_api::get(client, path).await?;
    let items = list["items"].as_array().context("items")?;
    Ok(items.iter().fold((0.0, 0.0), |(s, f), i| {
        (
            s + metric(i, "success_count"),
            f + metric(i, "failure_count"),
        )
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stat_prints_the_operators_traffic_metrics() -> Result<()> {
    meshlet_bin()?;
    let env = common::env().await?;
    let client = env.client();
    let _turn = METRICS_API.lock().await;
    metrics_api::unregister(&client).await?;
    let ns = env.create_namespace("stat").await?;
    let empty = env.create_namespace("stat-empty").await?;
    let quick = Duration::from_secs(30);

    // No APIService: the error says what is missing and how to get it.
    let ran = meshlet(env, &["stat", "deploy", "-n", &ns], quick).await?;
    assert_eq!(ran.code, Some(1), "{ran:?}");
    assert!(
        ran.stderr.starts_with(
            "error: the TrafficMetrics API is not installed: no APIService v1alpha1.metrics.smi-spec.io; \
             it comes with Meshlet's operator when the chart value metricsApi.enabled=true"
        ),
        "{ran:?}"
    );
    assert_eq!(ran.stdout, "");

    let port = meshlet_testenv::ports::free_port()?;
    let shop = shop(&client, &ns, 31, port, (900, 100)).await?;
    let (op, _) = metrics_api::start(
        env,
        &ns,
        Scraping {
            port,
            interval: Duration::from_millis(200),
            // Long enough that nothing leaves the window while the test runs.
            window: Duration::from_secs(60),
        },
    )
    .await?;
    metrics_api::discovery(&client, "v1alpha1", Duration::from_secs(60)).await?;
    metrics_api::discovery(&client, "v1alpha2", Duration::from_secs(60)).await?;
    scraped(&op, &ns, &["client-a", "web-v1-a", "web-v2-a"]).await?;

    // Served (inbound): web-v1 90 successes at 3 ms; web-v2 27 at 3 ms and
    // 3 failures at 40 ms. Sent by the client (outbound, through the split):
    // the same counts at 4 ms and 40 ms.
    traffic(&shop.v1.metrics, inbound(), 90, 200, 3);
    traffic(&shop.v2.metrics, inbound(), 27, 200, 3);
    traffic(&shop.v2.metrics, inbound(), 3, 503, 40);
    traffic(&shop.client.metrics, outbound(&ns, "web-v1"), 90, 200, 4);
    traffic(&shop.client.metrics, outbound(&ns, "web-v2"), 27, 200, 4);
    traffic(&shop.client.metrics, outbound(&ns, "web-v2"), 3, 503, 40);
    let deployments = format!("/apis/metrics.smi-spec.io/v1alpha1/namespaces/{ns}/deployments");
    let edges =
        format!("/apis/metrics.smi-spec.io/v1alpha2/namespaces/{ns}/trafficsplits/web/edges");
    common::eventually("every response scraped", quick, || async {
        let all = (117.0, 3.0);
        // A failed read is retried like a short count.
        let deployments = counts(&client, &deployments).await.ok();
        let edges = counts(&client, &edges).await.ok();
        Ok((deployments == Some(all) && edges == Some(all)).then_some(()))
    })
    .await?;

    // Window 60 s: web-v1 90 / 60 s = 1.5 rps; web-v2 30 / 60 s = 0.5 rps.
    // Latencies interpolate inside the proxy's buckets: 90 in (2, 3] ms give
    // p50 2.5 ms and p99 2.99 ms; 27 in (2, 3] and 3 in (30, 40] give p50
    // 2 + 15/27 ms and p99 30 + 10 * 2.7/3 = 39 ms.
    let ran = meshlet(env, &["stat", "deploy", "-n", &ns], quick).await?;
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert_eq!(
        ran.stdout,
        "NAME     SUCCESS   RPS   LATENCY_P50   LATENCY_P99\n\
         client   -         0.0   -             -\n\
         web-v1   100.00%   1.5   2.5ms         3.0ms\n\
         web-v2   90.00%    0.5   2.6ms         39ms\n"
    );

    // The split's backends: what the client sent to each, with the weights.
    let ran = meshlet(env, &["stat", "ts", "web", "-n", &ns], quick).await?;
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert_eq!(
        ran.stdout,
        "TRAFFICSPLIT   NAME     WEIGHT   SUCCESS   RPS   LATENCY_P50   LATENCY_P99\n\
         web            web-v1   900      100.00%   1.5   3.5ms         4.0ms\n\
         web            web-v2   100      90.00%    0.5   3.6ms         39ms\n"
    );

    // The same numbers as JSON, unrounded.
    let ran = meshlet(
        env,
        &["stat", "deploy", "web-v2", "-n", &ns, "-o", "json"],
        quick,
    )
    .await?;
    assert_eq!(ran.code, Some(0), "{ran:?}");
    let rows: Value = serde_json::from_str(&ran.stdout)?;
    assert_eq!(
        rows,
        json!([{"name": "web-v2", "success_rate": 0.9, "rps": 0.5, "p50_ms": 2.556, "p99_ms": 39.0}])
    );

    // The namespace: every pod's inbound traffic.
    let ran = meshlet(env, &["stat", "ns", &ns], quick).await?;
    assert_eq!(ran.code, Some(0), "{ran:?}");
    let row = ran.stdout.lines().nth(1).context("a row")?;
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells, [ns.as_str(), "97.50%", "2.0", "2.5ms", "36ms"]);

    // A namespace without meshed pods: said so, not an error.
    for kind in ["deploy", "ts"] {
        let ran = meshlet(env, &["stat", kind, "-n", &empty], quick).await?;
        assert_eq!(ran.code, Some(0), "{ran:?}");
        assert_eq!(ran.stdout, "");
        assert_eq!(
            ran.stderr,
            format!("No traffic metrics found in {empty}.\n")
        );
    }

    // Names that do not exist: the operator's 404 message, exit status 1.
    let ran = meshlet(env, &["stat", "deploy", "nope", "-n", &ns], quick).await?;
    assert_eq!(ran.code, Some(1), "{ran:?}");
    assert!(
        ran.stderr.contains("\"nope\" not found") && ran.stderr.contains("no meshed pod"),
        "{ran:?}"
    );
    let ran = meshlet(env, &["stat", "ts", "nope", "-n", &ns], quick).await?;
    assert_eq!(ran.code, Some(1), "{ran:?}");
    assert!(ran.stderr.contains("\"nope\" not found"), "{ran:?}");

    // v1alpha2 not registered: deployments (v1alpha1) still answer; the
    // split's edges name the missing APIService.
    let apiservices: Api<APIService> = Api::all(client.clone());
    apiservices
        .delete("v1alpha2.metrics.smi-spec.io", &DeleteParams::default())
        .await?;
    common::eventually("v1alpha2 gone", quick, || async {
        Ok(metrics_api::get(&client, &edges)
            .await
            .is_err()
            .then_some(()))
    })
    .await?;
    let ran = meshlet(env, &["stat", "deploy", "web-v1", "-n", &ns], quick).await?;
    assert_eq!(ran.code, Some(0), "{ran:?}");
    let ran = meshlet(env, &["stat", "ts", "web", "-n", &ns], quick).await?;
    assert_eq!(ran.code, Some(1), "{ran:?}");
    assert!(
        ran.stderr.starts_with(
            "error: the TrafficMetrics API is not installed: no APIService v1alpha2.metrics.smi-spec.io;"
        ),
        "{ran:?}"
    );

    // The APIService leads where nothing answers (the operator down): the
    // aggregator marks it not Available, and the CLI says so.
    let dead_port = meshlet_testenv::ports::free_port()?;
    apiservices
        .patch(
            "v1alpha1.metrics.smi-spec.io",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"service": {"port": dead_port}}})),
        )
        .await?;
    common::eventually("v1alpha1 not Available", quick, || async {
        let service = apiservices.get("v1alpha1.metrics.smi-spec.io").await?;
        let available = service
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .into_iter()
            .any(|c| c.type_ == "Available" && c.status == "True");
        Ok((!available).then_some(()))
    })
    .await?;
    let ran = meshlet(env, &["stat", "deploy", "-n", &ns], quick).await?;
    assert_eq!(ran.code, Some(1), "{ran:?}");
    assert!(
        ran.stderr.starts_with(
            "error: the TrafficMetrics API is not available: \
             APIService v1alpha1.metrics.smi-spec.io is not Available (FailedDiscoveryCheck: "
        ) && ran
            .stderr
            .ends_with("; check meshlet-operator (`meshlet check`)\n"),
        "{ran:?}"
    );
    assert_eq!(ran.stdout, "");

    drop(op);
    metrics_api::unregister(&client).await?;
    Ok(())
}

/// The client's traffic through the split, as a meshed client's proxy
/// would count it: every 100 ms, 20 requests shared by the weights the API
/// server holds now; web-v2 answers 503 when `canary_fails`. Records each
/// distinct (web-v1, web-v2) weight pair it saw.
fn drive_traffic(
    client: Client,
    ns: String,
    shop: Arc<Shop>,
    canary_fails: bool,
    seen: Arc<Mutex<Vec<(u64, u64)>>>,
) -> AbortOnDrop {
    AbortOnDrop(tokio::spawn(async move {
        let splits: Api<TrafficSplit> = Api::namespaced(client, &ns);
        loop {
            if let Ok(split) = splits.get("web").await {
                let weight = |name: &str| {
                    split
                        .spec
                        .backends
                        .iter()
                        .find(|b| b.service == name)
                        .map_or(0, |b| b.weight)
                };
                let (w1, w2) = (weight("web-v1"), weight("web-v2"));
                {
                    let mut seen = seen.lock().unwrap();
                    if seen.last() != Some(&(w1, w2)) {
                        seen.push((w1, w2));
                    }
                }
                let to_v2 = if w1 + w2 == 0 {
                    0
                } else {
                    (20 * w2 as usize).div_ceil((w1 + w2) as usize)
                };
                let to_v1 = 20 - to_v2;
                let v2_status = if canary_fails { 503 } else { 200 };
                traffic(&shop.client.metrics, outbound(&ns, "web-v1"), to_v1, 200, 4);
                traffic(&shop.v1.metrics, inbound(), to_v1, 200, 3);
                traffic(
                    &shop.client.metrics,
                    outbound(&ns, "web-v2"),
                    to_v2,
                    v2_status,
                    5,
                );
                traffic(&shop.v2.metrics, inbound(), to_v2, v2_status, 4);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }))
}

/// A shop whose split starts with all traffic on web-v1, an operator with a
/// 2 s window (one canary interval), and the client's traffic flowing.
struct Canary {
    env: &'static TestEnv,
    client: Client,
    ns: String,
    seen: Arc<Mutex<Vec<(u64, u64)>>>,
    _traffic: AbortOnDrop,
    _op: Running,
}

async fn canary(prefix: &str, first_ip: u8, canary_fails: bool) -> Result<Canary> {
    let env = common::env().await?;
    let client = env.client();
    let ns = env.create_namespace(prefix).await?;
    let port = meshlet_testenv::ports::free_port()?;
    let shop = Arc::new(shop(&client, &ns, first_ip, port, (100, 0)).await?);
    let (op, _) = metrics_api::start(
        env,
        &ns,
        Scraping {
            port,
            interval: Duration::from_millis(200),
            window: Duration::from_secs(2),
        },
    )
    .await?;
    metrics_api::discovery(&client, "v1alpha2", Duration::from_secs(60)).await?;
    scraped(&op, &ns, &["client-a", "web-v1-a", "web-v2-a"]).await?;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let traffic = drive_traffic(client.clone(), ns.clone(), shop, canary_fails, seen.clone());
    Ok(Canary {
        env,
        client,
        ns,
        seen,
        _traffic: traffic,
        _op: op,
    })
}

impl Canary {
    /// The weights the client's traffic followed, once it has seen `last`
    /// (it reads the split every 100 ms, so it may lag the CLI's last write).
    async fn weights_seen_until(&self, last: (u64, u64)) -> Result<Vec<(u64, u64)>> {
        let seen = || self.seen.lock().unwrap().clone();
        common::eventually(
            "the traffic follows the split",
            Duration::from_secs(5),
            || async {
                let seen = seen();
                Ok((seen.last() == Some(&last)).then_some(seen))
            },
        )
        .await
        .with_context(|| format!("weights seen: {:?}", seen()))
    }
}

async fn weights(client: &Client, ns: &str) -> Result<Vec<(String, u64)>> {
    let split = Api::<TrafficSplit>::namespaced(client.clone(), ns)
        .get("web")
        .await?;
    Ok(split
        .spec
        .backends
        .iter()
        .map(|b| (b.service.clone(), b.weight))
        .collect())
}

fn pairs(v1: u64, v2: u64) -> Vec<(String, u64)> {
    vec![("web-v1".into(), v1), ("web-v2".into(), v2)]
}

/// The `observed web-v2: N requests, F failed, …` lines: (N, F).
fn observations(stdout: &str) -> Vec<(u64, u64)> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("observed web-v2: "))
        .map(|l| {
            let n: Vec<u64> = l
                .split(|c: char| !c.is_ascii_digit())
                .filter_map(|w| w.parse().ok())
                .collect();
            (n[0], n[1])
        })
        .collect()
}

const CANARY_FLAGS: &[&str] = &[
    "--to",
    "web-v2",
    "--step",
    "25",
    "--interval",
    "2s",
    "--min-requests",
    "10",
    "--max-idle-intervals",
    "2",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_promotes_a_healthy_backend() -> Result<()> {
    meshlet_bin()?;
    let env = common::env().await?;
    let admin = env.client();
    let _turn = METRICS_API.lock().await;
    metrics_api::unregister(&admin).await?;

    // Without the API the canary refuses to start and writes nothing.
    let ns = env.create_namespace("canary-noapi").await?;
    traffic_split(&admin, &ns, (100, 0)).await?;
    let mut args = vec!["canary", "web", "-n", &ns];
    args.extend_from_slice(CANARY_FLAGS);
    let ran = meshlet(env, &args, Duration::from_secs(30)).await?;
    assert_eq!(ran.code, Some(1), "{ran:?}");
    assert!(
        ran.stderr
            .starts_with("error: the TrafficMetrics API is not installed"),
        "{ran:?}"
    );
    assert_eq!(weights(&admin, &ns).await?, pairs(100, 0));

    let c = canary("canary-ok", 41, false).await?;
    let mut args = vec!["canary", "web", "-n", &c.ns];
    args.extend_from_slice(CANARY_FLAGS);
    let ran = meshlet(c.env, &args, Duration::from_secs(45)).await?;
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert!(
        ran.stdout.starts_with(&format!(
            "canary {}/web: shifting to web-v2 from web-v1, 25% per 2s\n\
             weights: web-v2 25%, web-v1 75%\n",
            c.ns
        )),
        "{ran:?}"
    );
    for step in [
        "weights: web-v2 50%, web-v1 50%",
        "weights: web-v2 75%, web-v1 25%",
        "weights: web-v2 100%, web-v1 0%",
    ] {
        assert!(ran.stdout.contains(step), "{step}: {ran:?}");
    }
    assert!(
        ran.stdout
            .ends_with("promoted: web-v2 has all the traffic\n"),
        "{ran:?}"
    );
    // Each step was judged on real traffic: enough requests, none failed.
    let observed = observations(&ran.stdout);
    assert_eq!(observed.len(), 4, "{ran:?}");
    assert!(
        observed.iter().all(|&(n, f)| n >= 10 && f == 0),
        "{observed:?}"
    );
    // The split went through every step; the client's traffic followed it.
    assert_eq!(weights(&c.client, &c.ns).await?, pairs(0, 100));
    assert_eq!(
        c.weights_seen_until((0, 100)).await?,
        [(100, 0), (75, 25), (50, 50), (25, 75), (0, 100)]
    );
    drop(c);
    metrics_api::unregister(&admin).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_rolls_back_a_failing_backend() -> Result<()> {
    meshlet_bin()?;
    let env = common::env().await?;
    let admin = env.client();
    let _turn = METRICS_API.lock().await;
    metrics_api::unregister(&admin).await?;

    let c = canary("canary-fail", 51, true).await?;
    let mut args = vec!["canary", "web", "-n", &c.ns];
    args.extend_from_slice(CANARY_FLAGS);
    let ran = meshlet(c.env, &args, Duration::from_secs(45)).await?;
    assert_eq!(ran.code, Some(1), "{ran:?}");
    let observed = observations(&ran.stdout);
    assert_eq!(observed.len(), 1, "{ran:?}");
    let (n, f) = observed[0];
    assert!(n >= 10 && f == n, "{observed:?}");
    assert!(
        ran.stdout.ends_with(&format!(
            "rolled back: failure rate 100.00% ({n} of {n}) above the limit 1.00%\n\
             weights: web-v2 0%, web-v1 100%\n"
        )),
        "{ran:?}"
    );
    assert_eq!(weights(&c.client, &c.ns).await?, pairs(100, 0));
    assert_eq!(
        c.weights_seen_until((100, 0)).await?,
        [(100, 0), (75, 25), (100, 0)]
    );
    // Nothing went wrong for the CLI itself: the reason is on stdout.
    assert_eq!(ran.stderr, "");
    drop(c);
    metrics_api::unregister(&admin).await?;
    Ok(())
}
