//! SMI access control at the proxy's inbound side, over real loopback
//! sockets with a real app behind the proxy: the authorization matrix built
//! from the SMI specification's examples (sources × rules × methods × paths
//! × headers, TCP ports, kubelet probes, plaintext under default deny,
//! permissive mode), the deny metrics, and a config update under load.
//!
//! Plaintext rows go through the proxy's real inbound listener. In the full
//! matrix, rows with a client identity are served by
//! `inbound::serve_with_peer` with the peer set, on a loopback listener of
//! the test: the same detection, handlers and policy as after mesh TLS
//! termination, without the handshake. `matrix_over_real_mtls` then runs
//! the main rows end to end: client proxies with certificates for each
//! identity from a test CA call the server proxy through real mTLS.
//! Run with `--nocapture` to see the matrices.

mod common;

use bytes::Bytes;
use common::pki::{self, Ca};
use common::*;
use http_body_util::{BodyExt, Empty};
use meshlet_crds::contract::config::*;
use meshlet_crds::contract::identity::SpiffeId;
use meshlet_proxy::app::Ctx;
use meshlet_proxy::inbound::{serve_with_peer, Peer};
use meshlet_proxy::{ConfigStore, Proxy, Settings};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn id(ns: &str, sa: &str) -> String {
    format!("spiffe://cluster.local/ns/{ns}/sa/{sa}")
}

fn m(name: &str, path: Option<&str>, methods: &[&str], headers: &[(&str, &str)]) -> HttpMatch {
    HttpMatch {
        name: Some(name.into()),
        path_regex: path.map(Into::into),
        methods: methods.iter().map(|s| s.to_string()).collect(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    }
}

/// The inbound config the operator computes for `api-service` from the SMI
/// examples: traffic-access (`api-service-routes` with matches `api` and
/// `metrics`; targets `api-service-api` and `api-service-metrics`, the
/// latter for prometheus in another namespace), traffic-specs (header
/// filters `android-insiders`, `iphone-users`; a TCPRoute with ports, one
/// with `ports: []`), plus the pod's kubelet probe.
fn smi_config(http_port: u16, tcp_port: u16, tcp_other: u16, permissive: bool) -> ProxyConfig {
    let policy =
        |name: &str, sources: &[String], http: Vec<HttpMatch>, tcp: Vec<u16>| InboundPolicy {
            name: name.into(),
            sources: sources.to_vec(),
            http,
            tcp_ports: tcp,
            ports: vec![],
        };
    let website = id("default", "website-service");
    let payments = id("default", "payments-service");
    let prometheus = id("monitoring", "prometheus");
    let bff = id("default", "mobile-bff");
    let admin = id("ops", "admin");
    ProxyConfig {
        inbound: InboundConfig {
            ports: vec![
                InboundPort {
                    port: http_port,
                    protocol: AppProtocol::Detect,
                },
                InboundPort {
                    port: tcp_port,
                    protocol: AppProtocol::Opaque,
                },
                InboundPort {
                    port: tcp_other,
                    protocol: AppProtocol::Opaque,
                },
            ],
            permissive,
            policies: vec![
                policy(
                    "api-service-api",
                    &[website.clone(), payments],
                    vec![m("api", Some("/api"), &["*"], &[])],
                    vec![],
                ),
                // The TCPRoute half of the same target (the operator keeps
                // HTTP and TCP grants apart).
                policy("api-service-api", &[website], vec![], vec![tcp_port]),
                policy(
                    "api-service-metrics",
                    &[prometheus],
                    vec![m("metrics", Some("/metrics"), &["GET"], &[])],
                    vec![],
                ),
                policy(
                    "mobile",
                    &[bff],
                    vec![
                        m(
                            "android-insiders",
                            None,
                            &[],
                            &[
                                ("user-agent", ".*Android.*"),
                                ("cookie", "^(.*?;)?(type=insider)(;.*)?$"),
                            ],
                        ),
                        m(
                            "iphone-users",
                            Some("/api/.*"),
                            &["GET", "HEAD"],
                            &[("user-agent", ".*iPhone.*")],
                        ),
                    ],
                    vec![],
                ),
                // A TCPRoute with `ports: []`: every port, HTTP included.
                policy("ops-all-ports", &[admin], vec![], vec![]),
                // A v1alpha2 TrafficTarget with `destination.port` (the
                // HTTP port) and the `everything` match.
                InboundPolicy {
                    ports: vec![http_port],
                    ..policy(
                        "legacy-port-bound",
                        &[id("default", "legacy")],
                        vec![m("everything", Some(".*"), &["*"], &[])],
                        vec![],
                    )
                },
            ],
            probes: vec![
                ProbeRoute {
                    port: http_port,
                    path: "/healthz".into(),
                },
                ProbeRoute {
                    port: http_port,
                    path: GRPC_HEALTH_CHECK_PATH.into(),
                },
            ],
        },
        ..Default::default()
    }
}

/// A TCP echo server counting the connections it accepts.
async fn counting_echo() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let conns = Arc::new(AtomicUsize::new(0));
    let c = conns.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            c.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    (addr, conns)
}

/// A loopback listener whose connections the proxy serves as coming from
/// `peer` to the app at `app`.
async fn peer_listener(ctx: Arc<Ctx>, app: SocketAddr, peer: Peer) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(serve_with_peer(ctx.clone(), s, app, peer.clone()));
        }
    });
    addr
}

/// Sends one HTTP/1 request; returns the status and the body.
async fn request(
    client: &H1Client,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let mut req = http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .header("host", "api-service.default.svc.cluster.local");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let rsp = client
        .request(req.body(Empty::<Bytes>::new()).unwrap())
        .await
        .expect("the proxy answers");
    let status = rsp.status().as_u16();
    let body = rsp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        String::from_utf8_lossy(&body).trim_end().to_string(),
    )
}

/// Opens a TCP connection, sends a line, returns whether it came back.
async fn tcp_echoes(addr: SocketAddr) -> bool {
    let mut s = TcpStream::connect(addr).await.unwrap();
    if s.write_all(b"ping\n").await.is_err() {
        return false;
    }
    let mut buf = [0u8; 5];
    matches!(
        tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut buf)).await,
        Ok(Ok(_)) if &buf == b"ping\n"
    )
}

/// (client, method, path, headers, expected: `200` or the deny reason)
type HttpRow = (
    &'static str,
    &'static str,
    &'static str,
    Vec<(&'static str, &'static str)>,
    &'static str,
);

/// One row of the matrix.
struct Row {
    client: String,
    traffic: String,
    expected: &'static str,
    got: String,
}

fn print_matrix(title: &str, rows: &[Row]) {
    println!("\n{title}\n");
    println!("| client | traffic | expected | got |");
    println!("| --- | --- | --- | --- |");
    for r in rows {
        println!(
            "| {} | {} | {} | {} |",
            r.client, r.traffic, r.expected, r.got
        );
    }
}

fn deny_reason(body: &str, reasons: &BTreeMap<String, &'static str>) -> &'static str {
    reasons
        .iter()
        .find(|(fragment, _)| body.contains(fragment.as_str()))
        .map(|(_, r)| *r)
        .unwrap_or("?")
}

#[tokio::test]
async fn smi_authorization_matrix() {
    let app = Upstream::start("app").await;
    let (tcp_app, tcp_conns) = counting_echo().await;
    let (tcp_other, other_conns) = counting_echo().await;
    let cfg = smi_config(app.addr.port(), tcp_app.port(), tcp_other.port(), false);
    let proxy = start_proxy(cfg, None, Some(app.addr.port())).await;
    let ctx = proxy.ctx().clone();

    let clients: [(&str, Peer); 8] = [
        ("plaintext", Peer::Plaintext),
        ("website-service", mtls("default", "website-service")),
        ("payments-service", mtls("default", "payments-service")),
        ("monitoring/prometheus", mtls("monitoring", "prometheus")),
        ("mobile-bff", mtls("default", "mobile-bff")),
        ("ops/admin", mtls("ops", "admin")),
        ("legacy", mtls("default", "legacy")),
        ("stranger", mtls("default", "stranger")),
    ];
    let mut http_addr = BTreeMap::new();
    let mut tcp_addr = BTreeMap::new();
    let mut other_addr = BTreeMap::new();
    for (name, peer) in &clients {
        let http = if *name == "plaintext" {
            // Plaintext goes through the real inbound listener.
            proxy.inbound_addr
        } else {
            peer_listener(ctx.clone(), app.addr, peer.clone()).await
        };
        http_addr.insert(*name, http);
        tcp_addr.insert(
            *name,
            peer_listener(ctx.clone(), tcp_app, peer.clone()).await,
        );
        other_addr.insert(
            *name,
            peer_listener(ctx.clone(), tcp_other, peer.clone()).await,
        );
    }

    const UA_IPHONE: (&str, &str) = ("user-agent", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0)");
    const UA_ANDROID: (&str, &str) = ("user-agent", "Mozilla/5.0 (Linux; Android 14)");
    let http_rows: Vec<HttpRow> = vec![
        ("website-service", "GET", "/api", vec![], "200"),
        ("website-service", "DELETE", "/api", vec![], "200"),
        ("payments-service", "POST", "/api", vec![], "200"),
        ("payments-service", "PUT", "/api", vec![], "200"),
        (
            "website-service",
            "GET",
            "/api/v1",
            vec![],
            "no_matching_rule",
        ),
        (
            "website-service",
            "GET",
            "/v1/api",
            vec![],
            "no_matching_rule",
        ),
        (
            "website-service",
            "GET",
            "/metrics",
            vec![],
            "no_matching_rule",
        ),
        ("monitoring/prometheus", "GET", "/metrics", vec![], "200"),
        (
            "monitoring/prometheus",
            "POST",
            "/metrics",
            vec![],
            "no_matching_rule",
        ),
        (
            "monitoring/prometheus",
            "GET",
            "/metrics.json",
            vec![],
            "no_matching_rule",
        ),
        (
            "monitoring/prometheus",
            "GET",
            "/api",
            vec![],
            "no_matching_rule",
        ),
        ("mobile-bff", "GET", "/api/items", vec![UA_IPHONE], "200"),
        ("mobile-bff", "HEAD", "/api/items", vec![UA_IPHONE], "200"),
        (
            "mobile-bff",
            "POST",
            "/api/items",
            vec![UA_IPHONE],
            "no_matching_rule",
        ),
        (
            "mobile-bff",
            "GET",
            "/api",
            vec![UA_IPHONE],
            "no_matching_rule",
        ),
        (
            "mobile-bff",
            "GET",
            "/api/items",
            vec![UA_ANDROID],
            "no_matching_rule",
        ),
        // `/api/.*` must not let `/api/../admin` through.
        (
            "mobile-bff",
            "GET",
            "/api/../admin",
            vec![UA_IPHONE],
            "no_matching_rule",
        ),
        (
            "mobile-bff",
            "GET",
            "/api/%2e%2e/admin",
            vec![UA_IPHONE],
            "no_matching_rule",
        ),
        (
            "mobile-bff",
            "PATCH",
            "/anything",
            vec![UA_ANDROID, ("cookie", "lang=en;type=insider")],
            "200",
        ),
        (
            "mobile-bff",
            "GET",
            "/",
            vec![UA_ANDROID, ("cookie", "type=insiders")],
            "no_matching_rule",
        ),
        (
            "mobile-bff",
            "GET",
            "/",
            vec![("cookie", "type=insider")],
            "no_matching_rule",
        ),
        ("ops/admin", "DELETE", "/anything", vec![], "200"),
        ("legacy", "POST", "/anything", vec![], "200"),
        ("stranger", "GET", "/api", vec![], "unauthorized_source"),
        ("stranger", "GET", "/metrics", vec![], "unauthorized_source"),
        ("plaintext", "GET", "/api", vec![], "tls_required"),
        ("plaintext", "GET", "/healthz", vec![], "200"),
        ("plaintext", "POST", "/healthz", vec![], "tls_required"),
        ("plaintext", "GET", "/healthz/deep", vec![], "tls_required"),
        // The kubelet's gRPC probe: h2c POST of the health check.
        (
            "plaintext",
            "POST h2",
            GRPC_HEALTH_CHECK_PATH,
            vec![],
            "200",
        ),
        (
            "plaintext",
            "POST h2",
            "/grpc.health.v1.Health/Watch",
            vec![],
            "tls_required",
        ),
        (
            "website-service",
            "GET",
            "/healthz",
            vec![],
            "no_matching_rule",
        ),
    ];
    let reasons: BTreeMap<String, &str> = [
        (
            "is not a source of any TrafficTarget".to_string(),
            "unauthorized_source",
        ),
        (
            "matches no rule of TrafficTarget".to_string(),
            "no_matching_rule",
        ),
        ("plaintext client".to_string(), "tls_required"),
    ]
    .into_iter()
    .collect();
    let client = h1_client();
    let mut rows = Vec::new();
    let mut denied_by_reason: BTreeMap<&str, u64> = BTreeMap::new();
    let h2 = h2_client();
    for (who, method, path, headers, expected) in &http_rows {
        let hits = app.hits.load(Ordering::SeqCst);
        let (verb, via) = match method.strip_suffix(" h2") {
            Some(verb) => (verb, &h2),
            None => (*method, &client),
        };
        let (status, body) = request(via, http_addr[who], verb, path, headers).await;
        let app_hit = app.hits.load(Ordering::SeqCst) > hits;
        let got = match status {
            200 if app_hit => "200".to_string(),
            403 if !app_hit => {
                assert!(
                    body.starts_with("meshlet: denied: ") && !body.contains('\n'),
                    "one-line body: {body:?}"
                );
                let r = deny_reason(&body, &reasons);
                *denied_by_reason.entry(r).or_default() += 1;
                r.to_string()
            }
            other => format!("{other} (app contacted: {app_hit}) {body}"),
        };
        let headers: Vec<String> = headers.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        rows.push(Row {
            client: who.to_string(),
            traffic: format!("{method} {path} {}", headers.join("; "))
                .trim_end()
                .to_string(),
            expected,
            got,
        });
    }
    // TCP: the allowed TCPRoute port, another port, each client.
    let tcp_rows: Vec<(&str, bool, &str)> = vec![
        ("website-service", true, "open"),
        ("website-service", false, "closed"),
        ("payments-service", true, "closed"),
        ("monitoring/prometheus", true, "closed"),
        ("ops/admin", true, "open"),
        ("ops/admin", false, "open"),
        ("legacy", true, "closed"),
        ("stranger", true, "closed"),
        ("plaintext", true, "closed"),
    ];
    for (who, allowed_port, expected) in &tcp_rows {
        let (addr, conns, port) = if *allowed_port {
            (tcp_addr[who], &tcp_conns, tcp_app.port())
        } else {
            (other_addr[who], &other_conns, tcp_other.port())
        };
        let before = conns.load(Ordering::SeqCst);
        let open = tcp_echoes(addr).await;
        // A denied connection must not reach the app at all.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let reached = conns.load(Ordering::SeqCst) > before;
        let got = match (open, reached) {
            (true, true) => "open",
            (false, false) => "closed",
            _ => "app reached but connection closed",
        };
        let name = if *allowed_port {
            "TCPRoute port"
        } else {
            "other port"
        };
        rows.push(Row {
            client: who.to_string(),
            traffic: format!("TCP {name} ({port})"),
            expected,
            got: got.into(),
        });
    }
    print_matrix("Authorization matrix (default deny)", &rows);
    let wrong: Vec<_> = rows
        .iter()
        .filter(|r| r.expected != r.got)
        .map(|r| {
            format!(
                "{} {} expected {} got {}",
                r.client, r.traffic, r.expected, r.got
            )
        })
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");

    // The deny counters agree with what the clients saw.
    let (_, metrics) = admin_get(proxy.admin_addr, "/metrics").await;
    for (reason, n) in &denied_by_reason {
        let total: u64 = metrics
            .lines()
            .filter(|l| {
                l.starts_with("inbound_http_authz_deny_total{")
                    && l.contains(&format!("reason=\"{reason}\""))
            })
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum();
        assert_eq!(total, *n, "{reason}\n{metrics}");
    }
    for needle in [
        r#"inbound_tcp_authz_deny_total{reason="tls_required",tls="no_identity"} 1"#,
        r#"inbound_tcp_authz_deny_total{reason="unauthorized_source",tls="true",client_id="spiffe://cluster.local/ns/default/sa/stranger"} 1"#,
        r#"inbound_http_authz_deny_total{reason="no_matching_rule",tls="true",client_id="spiffe://cluster.local/ns/monitoring/sa/prometheus"} 3"#,
        r#"response_total{direction="inbound",dst_namespace="",dst_service="",route="",tls="true",client_id="spiffe://cluster.local/ns/monitoring/sa/prometheus",status_code="200",classification="success"} 1"#,
        r#"response_total{direction="inbound",dst_namespace="",dst_service="",route="",tls="no_identity",status_code="403",classification="success"} 4"#,
    ] {
        assert!(metrics.contains(needle), "{needle} not in\n{metrics}");
    }

    // Permissive mode (install default or namespace annotation): everyone,
    // meshed or not, reaches the app.
    let open_cfg = smi_config(app.addr.port(), tcp_app.port(), tcp_other.port(), true);
    ctx.store.apply(2, open_cfg).unwrap();
    let mut rows = Vec::new();
    for (who, method, path) in [
        ("plaintext", "POST", "/api"),
        ("stranger", "DELETE", "/admin"),
        ("monitoring/prometheus", "POST", "/metrics"),
    ] {
        let (status, _) = request(&client, http_addr[who], method, path, &[]).await;
        rows.push(Row {
            client: who.to_string(),
            traffic: format!("{method} {path}"),
            expected: "200",
            got: status.to_string(),
        });
    }
    for who in ["plaintext", "stranger"] {
        let open = tcp_echoes(other_addr[who]).await;
        rows.push(Row {
            client: who.to_string(),
            traffic: format!("TCP other port ({})", tcp_other.port()),
            expected: "open",
            got: if open { "open" } else { "closed" }.into(),
        });
    }
    print_matrix("Permissive mode", &rows);
    assert!(rows.iter().all(|r| r.expected == r.got));
}

fn mtls(ns: &str, sa: &str) -> Peer {
    Peer::Mtls(id(ns, sa).parse::<SpiffeId>().unwrap())
}

/// Requests keep flowing on kept-alive connections while the policy
/// changes: each request is decided with the policy live when it arrives,
/// so new requests flip from allowed to denied and back, with no error.
#[tokio::test]
async fn a_config_update_under_load_flips_decisions_for_new_requests() {
    let app = Upstream::start("app").await;
    let (tcp_app, _) = counting_echo().await;
    let (tcp_other, _) = counting_echo().await;
    let allowed = smi_config(app.addr.port(), tcp_app.port(), tcp_other.port(), false);
    let mut revoked = allowed.clone();
    // website-service loses its HTTP grant (payments-service keeps it).
    revoked.inbound.policies[0].sources.remove(0);
    let proxy = start_proxy(allowed.clone(), None, Some(app.addr.port())).await;
    let ctx = proxy.ctx().clone();
    let addr = peer_listener(ctx.clone(), app.addr, mtls("default", "website-service")).await;

    // `applying` moves before a swap, `applied` after it: a request that
    // saw `applied == g` before it was sent and `applying == g` after its
    // response ran entirely under generation g.
    let applying = Arc::new(AtomicUsize::new(1));
    let applied = Arc::new(AtomicUsize::new(1));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (applying, applied, stop) = (applying.clone(), applied.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            // One pooled client per worker: requests reuse connections.
            let client = h1_client();
            // (generation when sent, generation when answered, status)
            let mut seen = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let before = applied.load(Ordering::SeqCst);
                let (status, _) = request(&client, addr, "GET", "/api", &[]).await;
                seen.push((before, applying.load(Ordering::SeqCst), status));
            }
            seen
        }));
    }
    let store = ctx.store.clone();
    for g in 2..=21u64 {
        tokio::time::sleep(Duration::from_millis(30)).await;
        let cfg = if g % 2 == 0 { &revoked } else { &allowed };
        applying.store(g as usize, Ordering::SeqCst);
        store.apply(g, cfg.clone()).unwrap();
        applied.store(g as usize, Ordering::SeqCst);
    }
    tokio::time::sleep(Duration::from_millis(30)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut ok, mut denied, mut wrong) = (0, 0, Vec::new());
    for w in workers {
        for (before, after, status) in w.await.unwrap() {
            // Only requests sent and answered under one config are judged;
            // the ones racing a swap may see either policy.
            if before != after {
                continue;
            }
            let expected = if before % 2 == 0 { 403 } else { 200 };
            match status {
                200 => ok += 1,
                403 => denied += 1,
                _ => {}
            }
            if status != expected {
                wrong.push((before, status));
            }
        }
    }
    println!(
        "config flips under load: {ok} allowed, {denied} denied, {} wrong",
        wrong.len()
    );
    assert!(wrong.is_empty(), "decided with a stale policy: {wrong:?}");
    assert!(ok > 20 && denied > 20, "{ok} allowed, {denied} denied");
}

/// A proxy on loopback holding a certificate for `ns/sa` from `ca`.
async fn proxy_with_identity(
    ca: &Ca,
    ns: &str,
    sa: &str,
    cfg: ProxyConfig,
    settings: Settings,
) -> Proxy {
    let store = Arc::new(ConfigStore::default());
    store.apply(1, cfg).unwrap();
    let tls = ca.store(&ca.workload(&pki::spiffe(ns, sa)));
    Proxy::start_with_identity(settings, store, tls)
        .await
        .unwrap()
}

/// The main rows end to end over real mTLS: the server proxy (identity
/// `default/api-service`) has the SMI example policy; each client proxy
/// has a certificate for its ServiceAccount and reaches the server's
/// inbound through its outbound side, with TLS and identity verification.
#[tokio::test]
async fn matrix_over_real_mtls() {
    const HOST: &str = "api-service.default.svc.cluster.local";
    let ca = Ca::new("mesh-ca");
    let app = Upstream::start("app").await;
    let server = proxy_with_identity(
        &ca,
        "default",
        "api-service",
        smi_config(app.addr.port(), 1, 2, false),
        Settings {
            inbound_fallback_port: Some(app.addr.port()),
            detect_timeout: Duration::from_millis(300),
            ..Settings::loopback()
        },
    )
    .await;
    let mut svc = service("api-service", "10.96.0.1", &[server.inbound_addr]);
    svc.namespace = "default".into();
    svc.authorities = vec![format!("{HOST}:80")];
    let ep = &mut svc.ports[0].endpoints[0];
    ep.meshed = true;
    ep.identity = Some(pki::spiffe("default", "api-service").to_string());
    let client_cfg = config(vec![svc]);
    let client_settings = || Settings {
        outbound_fallback: Some("10.96.0.1:80".parse().unwrap()),
        detect_timeout: Duration::from_millis(300),
        ..Settings::loopback()
    };
    let mut clients = BTreeMap::new();
    for (ns, sa) in [
        ("default", "website-service"),
        ("monitoring", "prometheus"),
        ("default", "mobile-bff"),
        ("default", "stranger"),
    ] {
        let p = proxy_with_identity(&ca, ns, sa, client_cfg.clone(), client_settings()).await;
        clients.insert(sa, p);
    }
    let rows: Vec<HttpRow> = vec![
        ("website-service", "GET", "/api", vec![], "200"),
        ("website-service", "DELETE", "/api", vec![], "200"),
        (
            "website-service",
            "GET",
            "/api/v1",
            vec![],
            "no_matching_rule",
        ),
        (
            "website-service",
            "GET",
            "/metrics",
            vec![],
            "no_matching_rule",
        ),
        ("prometheus", "GET", "/metrics", vec![], "200"),
        ("prometheus", "POST", "/metrics", vec![], "no_matching_rule"),
        (
            "mobile-bff",
            "GET",
            "/api/items",
            vec![("user-agent", "x iPhone y")],
            "200",
        ),
        (
            "mobile-bff",
            "GET",
            "/api/items",
            vec![("user-agent", "x Android y")],
            "no_matching_rule",
        ),
        ("stranger", "GET", "/api", vec![], "unauthorized_source"),
        ("plaintext", "GET", "/api", vec![], "tls_required"),
        ("plaintext", "GET", "/healthz", vec![], "200"),
        // HTTP/2 from the app (prior knowledge; h2 over mTLS by ALPN).
        ("website-service", "POST h2", "/api", vec![], "200"),
        ("prometheus", "GET h2", "/api", vec![], "no_matching_rule"),
        (
            "stranger",
            "GET h2",
            "/metrics",
            vec![],
            "unauthorized_source",
        ),
    ];
    let h1 = h1_client();
    let h2 = h2_client();
    let mut table = Vec::new();
    for (who, method, path, headers, expected) in &rows {
        // Plaintext calls the server's inbound directly (an unmeshed client).
        let addr = match clients.get(who) {
            Some(p) => p.outbound_addr,
            None => server.inbound_addr,
        };
        let hits = app.hits.load(Ordering::SeqCst);
        let (verb, client) = match method.strip_suffix(" h2") {
            Some(verb) => (verb, &h2),
            None => (*method, &h1),
        };
        let mut req = http::Request::builder()
            .method(verb)
            .uri(format!("http://{addr}{path}"))
            .header("host", HOST);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let rsp = client
            .request(req.body(Empty::<Bytes>::new()).unwrap())
            .await
            .unwrap();
        let status = rsp.status().as_u16();
        let reason = rsp
            .headers()
            .get("meshlet-proxy-error")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let app_hit = app.hits.load(Ordering::SeqCst) > hits;
        let got = match status {
            200 if app_hit => "200".to_string(),
            403 if !app_hit => reason,
            other => format!("{other} (app contacted: {app_hit})"),
        };
        let headers: Vec<String> = headers.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        table.push(Row {
            client: who.to_string(),
            traffic: format!("{method} {path} {}", headers.join("; "))
                .trim_end()
                .to_string(),
            expected,
            got,
        });
    }
    print_matrix("Over real mTLS (client proxy → server proxy)", &table);
    let wrong: Vec<_> = table
        .iter()
        .filter(|r| r.expected != r.got)
        .map(|r| {
            format!(
                "{} {} expected {} got {}",
                r.client, r.traffic, r.expected, r.got
            )
        })
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
    let (_, metrics) = admin_get(server.admin_addr, "/metrics").await;
    assert!(
        metrics.contains(r#"inbound_http_authz_deny_total{reason="unauthorized_source",tls="true",client_id="spiffe://cluster.local/ns/default/sa/stranger"} 2"#),
        "{metrics}"
    );
}
