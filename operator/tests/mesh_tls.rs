//! The whole identity path with real parts: the operator (its CA, TokenReview
//! against the real API server) and two real `meshlet-proxy` processes that
//! get their certificates from `/v1/certify` with Pod-bound ServiceAccount
//! tokens of Meshlet's audience. The server proxy and its app run in a
//! network namespace the test creates (an EndpointSlice may not name a
//! loopback address, so the server "pod" needs an address of its own); the
//! client proxy runs on the host's loopback. Needs root (`ip netns`). A request through the
//! client proxy reaches the app behind the server proxy over mTLS, allowed
//! by a TrafficTarget for the client's identity; the server proxy's metrics
//! show `tls="true"` and the client identity; plaintext straight to the
//! server proxy is refused (default deny needs an identity).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use common::processes::{free_port, http_get, workspace_bin, Killed};
use common::*;
use meshlet_crds::contract::identity::SpiffeId;
use meshlet_crds::contract::metrics as names;
use meshlet_crds::contract::proxy_env;
use meshlet_crds::specs::HttpMethod;
use meshlet_operator::context::Settings;
use meshlet_operator::fixtures::*;

const WAIT: Duration = Duration::from_secs(30);

struct Proxy {
    _child: Killed,
    admin: std::net::SocketAddr,
    log: PathBuf,
}

impl Proxy {
    fn log(&self) -> String {
        format!(
            "proxy log {}:\n{}",
            self.log.display(),
            std::fs::read_to_string(&self.log).unwrap_or_default()
        )
    }
}

/// What a proxy is told: who it is and where its listeners are.
struct ProxyArgs<'a> {
    name: &'a str,
    ns: &'a str,
    pod: &'a str,
    service_account: &'a str,
    token: &'a str,
    /// The operator's config port (`host:port`).
    operator: String,
    anchors: &'a str,
    outbound: u16,
    inbound: u16,
    /// App port for inbound connections (no iptables redirect on loopback).
    app: Option<u16>,
}

/// A network namespace joined to the host by a veth pair: host side
/// `198.18.N.1/30`, namespace side `198.18.N.2/30` (RFC 2544 test range,
/// never routed off the machine). Deleted (with the veth) when dropped.
struct Netns {
    name: String,
    host_ip: std::net::Ipv4Addr,
    ns_ip: std::net::Ipv4Addr,
}

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running `ip` (iproute2)")?;
    anyhow::ensure!(
        out.status.success(),
        "ip {}: {} (this test needs root)",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

impl Netns {
    fn create() -> Result<Netns> {
        let pid = std::process::id();
        let n = (pid % 250) as u8;
        let name = format!("meshlet-mtls-{pid}");
        let (host_if, ns_if) = (format!("mt{pid}h"), format!("mt{pid}n"));
        let host_ip = std::net::Ipv4Addr::new(198, 18, n, 1);
        let ns_ip = std::net::Ipv4Addr::new(198, 18, n, 2);
        ip(&["netns", "add", &name])?;
        let netns = Netns {
            name,
            host_ip,
            ns_ip,
        };
        ip(&[
            "link", "add", &host_if, "type", "veth", "peer", "name", &ns_if,
        ])?;
        ip(&["link", "set", &ns_if, "netns", &netns.name])?;
        ip(&["addr", "add", &format!("{host_ip}/30"), "dev", &host_if])?;
        ip(&["link", "set", &host_if, "up"])?;
        ip(&[
            "-n",
            &netns.name,
            "addr",
            "add",
            &format!("{ns_ip}/30"),
            "dev",
            &ns_if,
        ])?;
        ip(&["-n", &netns.name, "link", "set", &ns_if, "up"])?;
        ip(&["-n", &netns.name, "link", "set", "lo", "up"])?;
        Ok(netns)
    }

    /// `program` run inside the namespace.
    fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

fn start_proxy(bin: &Path, netns: Option<&Netns>, dir: &Path, a: ProxyArgs<'_>) -> Result<Proxy> {
    let token_file = dir.join(format!("{}.token", a.name));
    std::fs::write(&token_file, a.token)?;
    let log = dir.join(format!("{}.log", a.name));
    let log_file = std::fs::File::create(&log)?;
    let admin = free_port();
    let mut cmd = match netns {
        Some(netns) => netns.command(bin),
        None => Command::new(bin),
    };
    let host = netns.map_or(std::net::Ipv4Addr::LOCALHOST, |n| n.ns_ip);
    cmd.env(proxy_env::POD_NAME, a.pod)
        .env(proxy_env::POD_NAMESPACE, a.ns)
        .env(proxy_env::SERVICE_ACCOUNT, a.service_account)
        .env(proxy_env::TRUST_ANCHORS, a.anchors)
        .args(["--log", "info", "run", "--operator"])
        .arg(&a.operator)
        .arg("--token-file")
        .arg(&token_file)
        .args(["--outbound-addr", &format!("127.0.0.1:{}", a.outbound)])
        .args(["--inbound-addr", &format!("{host}:{}", a.inbound)])
        .args(["--admin-addr", &format!("{host}:{admin}")]);
    if let Some(app) = a.app {
        cmd.args(["--inbound-fallback-port", &app.to_string()]);
    }
    let child = cmd
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .stdin(Stdio::null())
        .spawn()
        .context("starting meshlet-proxy")?;
    Ok(Proxy {
        _child: Killed(child),
        admin: std::net::SocketAddr::from((host, admin)),
        log,
    })
}

/// A directory for token files and proxy logs, removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn two_proxies_talk_mtls_with_certificates_from_the_operator() -> Result<()> {
    let proxy = workspace_bin("meshlet-proxy")?;
    let testserver = workspace_bin("meshlet-testserver")?;
    let env = env().await?;
    let client = env.client();
    let ns = env.create_namespace("mesh-tls").await?;
    let dir =
        TempDir(std::env::temp_dir().join(format!("meshlet-mesh-tls-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0)?;
    let netns = Netns::create()?;

    // The server "pod": the app and the server proxy in the namespace. The
    // Service's endpoint is the proxy's inbound port on the pod address
    // (there is no iptables redirect here), on the meshed pod server-0
    // (ServiceAccount server); the proxy hands inbound connections to the
    // app on the namespace's 127.0.0.1.
    let app_port = free_port();
    let _app = Killed(
        netns
            .command(&testserver)
            .args(["serve", "--port", &app_port.to_string()])
            .env("POD_NAME", "server-0")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting meshlet-testserver")?,
    );
    let server_inbound = free_port();
    create(&client, &ns, &service_account(&ns, "client")).await?;
    create(&client, &ns, &service_account(&ns, "server")).await?;
    let client_pod = create(&client, &ns, &pod(&ns, "client-0", "client", true, &[8080])).await?;
    let server_pod = create(
        &client,
        &ns,
        &pod(&ns, "server-0", "server", true, &[app_port]),
    )
    .await?;
    create(
        &client,
        &ns,
        &service(&ns, "web", &[("http", 80, server_inbound)]),
    )
    .await?;
    let pod_ip = netns.ns_ip.to_string();
    create(
        &client,
        &ns,
        &endpoint_slice(
            &ns,
            "web",
            "web-x",
            "http",
            server_inbound,
            &[(&pod_ip, "server-0", true)],
        ),
    )
    .await?;
    // Default deny; the client's identity may call everything.
    create(
        &client,
        &ns,
        &http_route_group(&ns, "everything", &[("all", HttpMethod::Any, "/.*")]),
    )
    .await?;
    create(
        &client,
        &ns,
        &traffic_target(
            &ns,
            "client-to-server",
            "server",
            vec![subject(&ns, "client")],
            vec![http_rule("everything", &[])],
        ),
    )
    .await?;

    // The operator listens on the host side of the veth, reachable from
    // both proxies.
    let op = operator(
        env,
        Settings {
            config_addr: std::net::SocketAddr::from((netns.host_ip, 0)),
            ..Settings::default()
        },
    )
    .await?;
    let anchors = anchors(&op);
    let server_token = pod_token(&client, &ns, "server", &server_pod, AUDIENCE).await?;
    let client_token = pod_token(&client, &ns, "client", &client_pod, AUDIENCE).await?;
    let server = start_proxy(
        &proxy,
        Some(&netns),
        &dir.0,
        ProxyArgs {
            name: "server",
            ns: &ns,
            pod: "server-0",
            service_account: "server",
            token: &server_token,
            operator: op.config_addr.to_string(),
            anchors: &anchors,
            outbound: free_port(),
            inbound: server_inbound,
            app: Some(app_port),
        },
    )?;
    let client_outbound = free_port();
    let client_proxy = start_proxy(
        &proxy,
        None,
        &dir.0,
        ProxyArgs {
            name: "client",
            ns: &ns,
            pod: "client-0",
            service_account: "client",
            token: &client_token,
            operator: op.config_addr.to_string(),
            anchors: &anchors,
            outbound: client_outbound,
            inbound: free_port(),
            app: None,
        },
    )?;
    for proxy in [&server, &client_proxy] {
        eventually("the proxy ready (certified, configured)", WAIT, || async {
            Ok(http_get(proxy.admin, "x", "/ready")
                .is_ok_and(|(code, _)| code == 200)
                .then_some(()))
        })
        .await
        .with_context(|| proxy.log())?;
    }
    let issued = "meshlet_operator_certify_requests_total{result=\"issued\",reason=\"none\"}";
    let issued_count = op
        .context
        .metrics
        .encode()
        .lines()
        .find(|l| l.starts_with(issued))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(
        issued_count >= 2.0,
        "both proxies certified: {issued_count}"
    );

    // Through the client proxy to the app, over mTLS.
    let host = format!("web.{ns}.svc.cluster.local:80");
    let outbound = std::net::SocketAddr::from(([127, 0, 0, 1], client_outbound));
    let started = Instant::now();
    let (code, body) = eventually("a request through both proxies", WAIT, || async {
        let answer = http_get(outbound, &host, "/hello")?;
        Ok((answer.0 == 200).then_some(answer))
    })
    .await
    .with_context(|| format!("{}\n{}", client_proxy.log(), server.log()))?;
    assert_eq!(code, 200);
    assert!(
        body.contains("server-0") && body.contains("/hello"),
        "{body}"
    );
    println!(
        "first request through both proxies after {:?}",
        started.elapsed()
    );

    // The server proxy saw an mTLS connection from the client's identity.
    let client_id = SpiffeId::new("cluster.local", &ns, "client")?.to_string();
    let (_, metrics) = http_get(server.admin, "x", "/metrics")?;
    let inbound_line = metrics
        .lines()
        .find(|l| {
            l.contains(&format!("{}=\"true\"", names::TLS))
                && l.contains(&format!("{}=\"{client_id}\"", names::CLIENT_ID))
        })
        .with_context(|| format!("no tls=\"true\" line for {client_id} in\n{metrics}"))?;
    println!("server proxy: {inbound_line}");

    // Plaintext straight to the server proxy has no identity: refused.
    let inbound = std::net::SocketAddr::from((netns.ns_ip, server_inbound));
    let (code, body) = http_get(inbound, &host, "/hello")?;
    assert_eq!(code, 403, "{body}");
    assert!(!body.contains("server-0"), "{body}");
    Ok(())
}
