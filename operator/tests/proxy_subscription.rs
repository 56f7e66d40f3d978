//! The real `meshlet-operator` and the real `meshlet-proxy` together against
//! a real API server (with kube-controller-manager): the proxy, trusting the
//! operator's anchors, subscribes over TLS with a Pod-bound ServiceAccount
//! token, gets ready with the TrafficSplit's
//! weights, follows a weight change (the propagation time is printed), and a
//! token for another audience is refused so that proxy never gets ready.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use common::{create, eventually, pod_token, processes, AUDIENCE};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use meshlet_crds::contract::config::ProxyConfig;
use meshlet_crds::contract::identity::{TRUST_ANCHORS_CONFIGMAP, TRUST_ANCHORS_KEY};
use meshlet_crds::contract::proxy_env;
use meshlet_crds::manifests::{self, CrdRender};
use meshlet_crds::split::v1alpha4::TrafficSplit;
use meshlet_operator::fixtures::*;
use meshlet_testenv::TestEnv;

const OPERATOR_BIN: &str = env!("CARGO_BIN_EXE_meshlet-operator");
const WAIT: Duration = Duration::from_secs(30);

/// A child process killed and reaped when dropped, so a failing test leaves
/// no orphans.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A plain HTTP/1.1 GET on loopback; (status code, body).
fn get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    processes::http_get(([127, 0, 0, 1], port).into(), "x", path)
}

/// The shared control plane with kube-controller-manager and the SMI CRDs.
async fn env() -> Result<&'static TestEnv> {
    let env = meshlet_testenv::shared_with_controller_manager().await?;
    let client = env.client();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in manifests::all(CrdRender::StorageOnly) {
        match crds.create(&PostParams::default(), &crd).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(e).context("creating the SMI CRDs"),
        }
    }
    let splits: Api<TrafficSplit> = Api::all(client);
    eventually("TrafficSplit served", WAIT, || async {
        match splits.list(&ListParams::default().limit(1)).await {
            Ok(_) => Ok(Some(())),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(None),
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    Ok(env)
}

/// Client pod `client-0` (ServiceAccount `client`), services web, web-v1,
/// web-v2 with endpoints, and TrafficSplit `canary` web → 90/10.
async fn shop(client: &Client, ns: &str) -> Result<k8s_openapi::api::core::v1::Pod> {
    create(client, ns, &service_account(ns, "client")).await?;
    let pod = create(client, ns, &pod(ns, "client-0", "client", true, &[8080])).await?;
    for svc in ["web", "web-v1", "web-v2"] {
        create(client, ns, &service(ns, svc, &[("http", 80, 8080)])).await?;
    }
    for (svc, ip) in [("web-v1", "10.9.0.1"), ("web-v2", "10.9.0.2")] {
        let slice = endpoint_slice(
            ns,
            svc,
            &format!("{svc}-x"),
            "http",
            8080,
            &[(ip, "", true)],
        );
        create(client, ns, &slice).await?;
    }
    let split = traffic_split(ns, "canary", "web", &[("web-v1", 90), ("web-v2", 10)]);
    create(client, ns, &split).await?;
    Ok(pod)
}

/// Starts the operator binary (no leader election: one replica, its
/// identity CA in namespace `install_ns`) and waits for `/readyz`; returns
/// it with its config port.
fn start_operator(env: &TestEnv, install_ns: &str) -> Result<(Killed, u16)> {
    let (config_port, admin_port) = (free_port(), free_port());
    let child = Command::new(OPERATOR_BIN)
        .env("KUBECONFIG", env.kubeconfig_path())
        .args(["--namespace", install_ns])
        .args([
            "--config-addr",
            &format!("127.0.0.1:{config_port}"),
            "--admin-addr",
            &format!("127.0.0.1:{admin_port}"),
            "--no-leader-election",
            "--pod-name",
            "operator-test-0",
            "--log",
            "warn",
        ])
        .stdout(Stdio::null())
        .spawn()
        .context("starting meshlet-operator")?;
    let operator = Killed(child);
    let deadline = Instant::now() + WAIT;
    while !get(admin_port, "/readyz").is_ok_and(|(code, _)| code == 200) {
        if Instant::now() > deadline {
            bail!("the operator was not ready within {WAIT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok((operator, config_port))
}

/// A directory for token files and proxy logs, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<Self> {
        let dir =
            std::env::temp_dir().join(format!("meshlet-proxy-subscription-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(TempDir(dir))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A started proxy: its admin port and the file its output goes to.
struct Proxy {
    _child: Killed,
    admin_port: u16,
    log: PathBuf,
}

/// The trust anchors bundle the operator keeps in `install_ns`.
async fn trust_anchors(client: &Client, install_ns: &str) -> Result<String> {
    let cm = Api::<ConfigMap>::namespaced(client.clone(), install_ns)
        .get(TRUST_ANCHORS_CONFIGMAP)
        .await?;
    cm.data
        .unwrap_or_default()
        .remove(TRUST_ANCHORS_KEY)
        .context("the anchors bundle key")
}

/// Where a proxy connects and what it trusts.
struct Operator<'a> {
    port: u16,
    anchors: &'a str,
}

fn start_proxy(
    bin: &Path,
    dir: &Path,
    name: &str,
    operator: &Operator<'_>,
    (ns, pod, service_account): (&str, &str, &str),
    token: &str,
) -> Result<Proxy> {
    let token_file = dir.join(format!("{name}.token"));
    std::fs::write(&token_file, token)?;
    let log = dir.join(format!("{name}.log"));
    // Logs go to stdout (tracing's default); both streams land in the file.
    let log_file = std::fs::File::create(&log)?;
    let admin_port = free_port();
    let child = Command::new(bin)
        .env(proxy_env::POD_NAME, pod)
        .env(proxy_env::POD_NAMESPACE, ns)
        .env(proxy_env::SERVICE_ACCOUNT, service_account)
        .env(proxy_env::TRUST_ANCHORS, operator.anchors)
        .args(["--log", "info", "run", "--operator"])
        .arg(format!("127.0.0.1:{}", operator.port))
        .arg("--token-file")
        .arg(&token_file)
        .args(["--outbound-addr", &format!("127.0.0.1:{}", free_port())])
        .args(["--inbound-addr", &format!("127.0.0.1:{}", free_port())])
        .args(["--admin-addr", &format!("127.0.0.1:{admin_port}")])
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .spawn()
        .context("starting meshlet-proxy")?;
    Ok(Proxy {
        _child: Killed(child),
        admin_port,
        log,
    })
}

/// The proxy's current config from its admin `/config`; (generation, config).
fn proxy_config(proxy: &Proxy) -> Result<(u64, ProxyConfig)> {
    let (code, body) = get(proxy.admin_port, "/config")?;
    if code != 200 {
        bail!("/config answered {code}: {body}");
    }
    let v: serde_json::Value = serde_json::from_str(&body).context("/config JSON")?;
    let generation = v["generation"].as_u64().context("/config generation")?;
    let config = serde_json::from_value(v["config"].clone()).context("/config config")?;
    Ok((generation, config))
}

/// The split backends of service `ns/web` as (name, weight).
fn web_weights(config: &ProxyConfig, ns: &str) -> Option<Vec<(String, u32)>> {
    let web = config
        .outbound
        .services
        .iter()
        .find(|s| s.name == "web" && s.namespace == ns)?;
    Some(
        web.split
            .as_ref()?
            .backends
            .iter()
            .map(|b| (b.service.name.clone(), b.weight))
            .collect(),
    )
}

fn w(pairs: &[(&str, u32)]) -> Option<Vec<(String, u32)>> {
    Some(pairs.iter().map(|(n, w)| (n.to_string(), *w)).collect())
}

#[tokio::test]
async fn real_proxy_follows_the_real_operator() -> Result<()> {
    let proxy_bin = processes::workspace_bin("meshlet-proxy")?;
    let env = env().await?;
    assert!(env.has_controller_manager());
    let client = env.client();
    let ns = env.create_namespace("subscribe").await?;
    let pod = shop(&client, &ns).await?;
    let dir = TempDir::new()?;

    let install_ns = env.create_namespace("meshlet-id").await?;
    let (_operator, config_port) = start_operator(env, &install_ns)?;
    let anchors = trust_anchors(&client, &install_ns).await?;
    let operator = Operator {
        port: config_port,
        anchors: &anchors,
    };
    let token = pod_token(&client, &ns, "client", &pod, AUDIENCE).await?;
    let proxy = start_proxy(
        &proxy_bin,
        dir.path(),
        "good",
        &operator,
        (&ns, "client-0", "client"),
        &token,
    )?;

    // Ready, with web split 90/10 over backends that carry their endpoints.
    let started = Instant::now();
    let ready = eventually("the proxy ready with the 90/10 split", WAIT, || async {
        if !get(proxy.admin_port, "/ready").is_ok_and(|(code, _)| code == 200) {
            return Ok(None);
        }
        let (generation, config) = proxy_config(&proxy)?;
        Ok(
            (web_weights(&config, &ns) == w(&[("web-v1", 90), ("web-v2", 10)]))
                .then_some((generation, config)),
        )
    })
    .await
    .with_context(|| log_of(&proxy))?;
    println!(
        "proxy ready with the operator's config after {:?}",
        started.elapsed()
    );
    let (generation, config) = ready;
    for (svc, ip) in [("web-v1", "10.9.0.1:8080"), ("web-v2", "10.9.0.2:8080")] {
        let backend = config
            .outbound
            .services
            .iter()
            .find(|s| s.name == svc && s.namespace == ns)
            .with_context(|| format!("backend {svc} listed"))?;
        assert_eq!(backend.ports[0].endpoints[0].addr.to_string(), ip);
    }
    assert_eq!(config.inbound.ports[0].port, 8080, "the pod's own port");
    assert_eq!(
        config.identity.trust_anchors_pem, anchors,
        "the config carries the trust anchors"
    );

    // A weight change reaches the proxy's admin view; measure how fast.
    let splits: Api<TrafficSplit> = Api::namespaced(client.clone(), &ns);
    let patch = serde_json::json!({"spec": {"backends": [
        {"service": "web-v1", "weight": 0}, {"service": "web-v2", "weight": 100}]}});
    let patched = Instant::now();
    splits
        .patch("canary", &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    // Polled every 5 ms (not `eventually`'s 50 ms) for a finer figure.
    let next = loop {
        let (generation, config) = proxy_config(&proxy)?;
        if web_weights(&config, &ns) == w(&[("web-v1", 0), ("web-v2", 100)]) {
            break generation;
        }
        if patched.elapsed() > WAIT {
            bail!("the proxy not at 0/100 within {WAIT:?}; {}", log_of(&proxy));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let took = patched.elapsed();
    println!("TrafficSplit patch → proxy /config: {took:?} (generation {generation} → {next})");
    assert!(next > generation);
    assert!(took < Duration::from_secs(5), "propagation took {took:?}");

    // A token for another audience: the operator answers 401 (operator
    // README), so this proxy never loads a config and never gets ready.
    let other = pod_token(
        &client,
        &ns,
        "client",
        &pod,
        "https://kubernetes.default.svc",
    )
    .await?;
    let refused = start_proxy(
        &proxy_bin,
        dir.path(),
        "wrong-audience",
        &operator,
        (&ns, "client-0", "client"),
        &other,
    )?;
    eventually("the refusal in the proxy's log", WAIT, || async {
        let log = std::fs::read_to_string(&refused.log)?;
        Ok(log.contains("operator answered 401").then_some(()))
    })
    .await
    .with_context(|| log_of(&refused))?;
    let (code, _) = get(refused.admin_port, "/ready")?;
    assert_eq!(code, 503, "not ready without a config");
    let (generation, config) = proxy_config(&refused)?;
    assert_eq!(generation, 0, "no config applied");
    assert!(config.outbound.services.is_empty(), "{config:?}");
    assert_eq!(get(refused.admin_port, "/live")?.0, 200);
    // The good proxy is unaffected.
    assert_eq!(get(proxy.admin_port, "/ready")?.0, 200);
    Ok(())
}

fn log_of(proxy: &Proxy) -> String {
    format!(
        "proxy log:\n{}",
        std::fs::read_to_string(&proxy.log).unwrap_or_default()
    )
}
