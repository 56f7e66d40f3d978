//! Mesh mTLS between two real proxies on loopback, with certificates from
//! a test CA: HTTP/1.1, HTTP/2 and opaque TCP through mTLS, identity
//! checks (mismatch, expiry, unknown CA: refused, never plaintext),
//! certificate rotation under load, trust-anchor updates from the config,
//! and app-level TLS passing through untouched.

mod common;

use common::pki::{self, Ca, Issued};
use common::*;
use meshlet_crds::contract::config::*;
use meshlet_crds::contract::identity::{SpiffeId, ALPN_HTTP1};
use meshlet_proxy::identity::TlsStore;
use meshlet_proxy::{ConfigStore, Proxy, Settings};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const HOST: &str = "web.shop.svc.cluster.local";

fn client_id() -> SpiffeId {
    pki::spiffe("shop", "client")
}

fn server_id() -> SpiffeId {
    pki::spiffe("shop", "server")
}

/// The server proxy's config: only the client identity may call.
fn server_config(app_port: u16, opaque: bool) -> ProxyConfig {
    ProxyConfig {
        inbound: InboundConfig {
            ports: vec![InboundPort {
                port: app_port,
                protocol: if opaque {
                    AppProtocol::Opaque
                } else {
                    AppProtocol::Detect
                },
            }],
            permissive: false,
            policies: vec![InboundPolicy {
                name: "client-to-server".into(),
                sources: vec![client_id().to_string()],
                ..Default::default()
            }],
            probes: vec![],
        },
        ..Default::default()
    }
}

/// The client proxy's config: `web` with one meshed endpoint expected to be
/// `expect`.
fn client_config(server_inbound: SocketAddr, expect: &SpiffeId, opaque: bool) -> ProxyConfig {
    let mut svc = service("web", "10.96.0.1", &[server_inbound]);
    svc.namespace = "shop".into();
    svc.authorities = vec![format!("{HOST}:80")];
    let port = &mut svc.ports[0];
    if opaque {
        port.protocol = AppProtocol::Opaque;
    }
    port.endpoints[0].meshed = true;
    port.endpoints[0].identity = Some(expect.to_string());
    config(vec![svc])
}

struct Mesh {
    client: Proxy,
    server: Proxy,
    client_tls: Arc<TlsStore>,
    server_tls: Arc<TlsStore>,
    client_store: Arc<ConfigStore>,
}

async fn mesh(
    client_tls: Arc<TlsStore>,
    server_tls: Arc<TlsStore>,
    expect: &SpiffeId,
    app_port: u16,
    opaque: bool,
) -> Mesh {
    let server_store = Arc::new(ConfigStore::default());
    server_store
        .apply(1, server_config(app_port, opaque))
        .unwrap();
    let server = Proxy::start_with_identity(
        Settings {
            inbound_fallback_port: Some(app_port),
            detect_timeout: Duration::from_millis(300),
            ..Settings::loopback()
        },
        server_store,
        server_tls.clone(),
    )
    .await
    .unwrap();
    let client_store = Arc::new(ConfigStore::default());
    client_store
        .apply(1, client_config(server.inbound_addr, expect, opaque))
        .unwrap();
    let client = Proxy::start_with_identity(
        Settings {
            outbound_fallback: Some("10.96.0.1:80".parse().unwrap()),
            detect_timeout: Duration::from_millis(300),
            ..Settings::loopback()
        },
        client_store.clone(),
        client_tls.clone(),
    )
    .await
    .unwrap();
    Mesh {
        client,
        server,
        client_tls,
        server_tls,
        client_store,
    }
}

/// Client and server proxies with valid certificates from one CA.
async fn good_mesh(ca: &Ca, app_port: u16, opaque: bool) -> Mesh {
    mesh(
        ca.store(&ca.workload(&client_id())),
        ca.store(&ca.workload(&server_id())),
        &server_id(),
        app_port,
        opaque,
    )
    .await
}

async fn metrics(admin: SocketAddr) -> String {
    admin_get(admin, "/metrics").await.1
}

#[tokio::test]
async fn http1_and_http2_through_mtls_carry_the_client_identity() {
    let ca = Ca::new("mesh-ca");
    let app = Upstream::start("app").await;
    let m = good_mesh(&ca, app.addr.port(), false).await;

    let h1 = h1_client();
    let h2 = h2_client();
    for _ in 0..3 {
        assert_eq!(
            get(&h1, m.client.outbound_addr, HOST, "/").await,
            (200, "app".into())
        );
        assert_eq!(
            get(&h2, m.client.outbound_addr, HOST, "/").await,
            (200, "app".into())
        );
    }
    // gRPC (HTTP/2 with trailers) too.
    assert_eq!(get(&h2, m.client.outbound_addr, HOST, "/grpc").await.0, 200);

    // The server allowed the calls because mTLS proved the client's
    // identity: the same request in plaintext is refused.
    let (status, _) = get(&h1, m.server.inbound_addr, HOST, "/").await;
    assert_eq!(
        status, 403,
        "plaintext must not pass a policy for an identity"
    );

    let server_metrics = metrics(m.server.admin_addr).await;
    assert!(
        server_metrics.contains(&format!("client_id=\"{}\"", client_id())),
        "{server_metrics}"
    );
    assert!(server_metrics.contains("tls=\"true\""), "{server_metrics}");
    let client_metrics = metrics(m.client.admin_addr).await;
    assert!(
        client_metrics.contains(&format!("server_id=\"{}\"", server_id())),
        "{client_metrics}"
    );
    assert!(client_metrics.contains("tls=\"true\""), "{client_metrics}");
    // Both proxies have certificates: ready.
    assert_eq!(admin_get(m.client.admin_addr, "/ready").await.0, 200);
}

#[tokio::test]
async fn opaque_tcp_through_mtls() {
    let ca = Ca::new("mesh-ca");
    let (echo, _task) = tcp_echo().await;
    let m = good_mesh(&ca, echo.port(), true).await;
    let mut s = tokio::net::TcpStream::connect(m.client.outbound_addr)
        .await
        .unwrap();
    s.write_all(b"\x00\x01binary hello").await.unwrap();
    let mut buf = [0u8; 14];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut buf))
        .await
        .expect("echo through mTLS timed out")
        .unwrap();
    assert_eq!(&buf, b"\x00\x01binary hello");
    drop(s);
    let server_metrics = metrics(m.server.admin_addr).await;
    assert!(
        server_metrics.contains(&format!("client_id=\"{}\"", client_id())),
        "{server_metrics}"
    );
}

/// A request through the client proxy fails and never reaches the app.
async fn assert_refused(m: &Mesh, app: &Upstream, why: &str) {
    let h1 = h1_client();
    let (status, body) = get(&h1, m.client.outbound_addr, HOST, "/").await;
    assert!(status >= 500 || status == 0, "{why}: got {status} {body}");
    assert_eq!(
        app.hits.load(Ordering::Relaxed),
        0,
        "{why}: the app was reached"
    );
}

#[tokio::test]
async fn a_server_with_another_identity_is_refused_without_plaintext_fallback() {
    let ca = Ca::new("mesh-ca");
    let app = Upstream::start("app").await;
    // The config expects `sa/other` at the endpoint; it presents `sa/server`.
    let m = mesh(
        ca.store(&ca.workload(&client_id())),
        ca.store(&ca.workload(&server_id())),
        &pki::spiffe("shop", "other"),
        app.addr.port(),
        false,
    )
    .await;
    assert_refused(&m, &app, "identity mismatch").await;
    let text = metrics(m.client.admin_addr).await;
    assert!(
        text.contains("status_code=\"502\"") || text.contains("status_code=\"503\""),
        "{text}"
    );
}

#[tokio::test]
async fn expired_certificates_are_refused() {
    let ca = Ca::new("mesh-ca");
    let app = Upstream::start("app").await;
    let m = mesh(
        ca.store(&ca.workload(&client_id())),
        ca.store(&ca.expired_workload(&server_id())),
        &server_id(),
        app.addr.port(),
        false,
    )
    .await;
    assert_refused(&m, &app, "expired server certificate").await;
    // A proxy whose own certificate expired is not ready.
    assert_eq!(admin_get(m.server.admin_addr, "/ready").await.0, 503);

    let m = mesh(
        ca.store(&ca.expired_workload(&client_id())),
        ca.store(&ca.workload(&server_id())),
        &server_id(),
        app.addr.port(),
        false,
    )
    .await;
    assert_refused(&m, &app, "expired client certificate").await;
}

#[tokio::test]
async fn certificates_from_an_unknown_ca_are_refused() {
    let ca = Ca::new("mesh-ca");
    let rogue = Ca::new("rogue-ca");
    let app = Upstream::start("app").await;
    // Server certificate from a CA the client does not trust.
    let m = mesh(
        ca.store(&ca.workload(&client_id())),
        pki::store_trusting(&ca.pem, &rogue.workload(&server_id())),
        &server_id(),
        app.addr.port(),
        false,
    )
    .await;
    assert_refused(&m, &app, "server from an unknown CA").await;
    // Client certificate from a CA the server does not trust.
    let m = mesh(
        pki::store_trusting(&ca.pem, &rogue.workload(&client_id())),
        ca.store(&ca.workload(&server_id())),
        &server_id(),
        app.addr.port(),
        false,
    )
    .await;
    assert_refused(&m, &app, "client from an unknown CA").await;
}

fn install(store: &TlsStore, cert: &Issued) {
    let chain = meshlet_proxy::identity::parse_certs("cert", &cert.chain_pem).unwrap();
    let key = meshlet_proxy::identity::parse_key("key", &cert.key_pem).unwrap();
    store.set_certificate(chain, key).unwrap();
}

/// The certificate the server proxy presents to a new mesh handshake.
async fn presented_server_cert(m: &Mesh) -> Vec<u8> {
    let config = m
        .client_tls
        .load()
        .mesh
        .as_ref()
        .unwrap()
        .client(ALPN_HTTP1);
    let tcp = tokio::net::TcpStream::connect(m.server.inbound_addr)
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from(server_id().tls_server_name()).unwrap();
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_rotation_under_load_fails_no_request() {
    let ca = Ca::new("mesh-ca");
    let app = Upstream::start("app").await;
    let m = Arc::new(good_mesh(&ca, app.addr.port(), false).await);
    let failures = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let stop = tokio_util::sync::CancellationToken::new();
    let mut workers = Vec::new();
    // More concurrent requests than idle connections kept, so new mTLS
    // connections keep being opened while certificates change.
    for _ in 0..24 {
        let (m, failures, done, stop) = (m.clone(), failures.clone(), done.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let h1 = h1_client();
            while !stop.is_cancelled() {
                match get(&h1, m.client.outbound_addr, HOST, "/").await {
                    (200, body) if body == "app" => {}
                    other => {
                        eprintln!("failed request: {other:?}");
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let mut last_server = String::new();
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        install(&m.client_tls, &ca.workload(&client_id()));
        let server = ca.workload(&server_id());
        install(&m.server_tls, &server);
        last_server = server.chain_pem;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.cancel();
    for w in workers {
        w.await.unwrap();
    }
    let done = done.load(Ordering::Relaxed);
    assert!(done > 200, "too little load to mean anything: {done}");
    assert_eq!(
        failures.load(Ordering::Relaxed),
        0,
        "failed requests out of {done}"
    );
    // New handshakes present the newest certificate.
    let newest = meshlet_proxy::identity::parse_certs("c", &last_server).unwrap();
    assert_eq!(presented_server_cert(&m).await, newest[0].to_vec());
}

#[tokio::test]
async fn trust_anchors_from_the_config_replace_the_roots() {
    let old = Ca::new("old-anchor");
    let new = Ca::new("new-anchor");
    let app = Upstream::start("app").await;
    let both = format!("{}{}", old.pem, new.pem);
    // The server already has a certificate from the new anchor; the client
    // trusts only the old one, so it refuses the server at first.
    let m = mesh(
        old.store(&old.workload(&client_id())),
        pki::store_trusting(&both, &new.workload(&server_id())),
        &server_id(),
        app.addr.port(),
        false,
    )
    .await;
    assert_refused(&m, &app, "server from an anchor not yet trusted").await;

    // The operator pushes the bundle with both anchors.
    let mut cfg = client_config(m.server.inbound_addr, &server_id(), false);
    cfg.identity.trust_anchors_pem = both.clone();
    m.client_store.apply(2, cfg).unwrap();
    let h1 = h1_client();
    let mut ok = false;
    for _ in 0..50 {
        if get(&h1, m.client.outbound_addr, HOST, "/").await == (200, "app".into()) {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ok, "the new anchor did not reach the running proxy");
    assert_eq!(m.client_tls.load().anchors_pem, both);

    // A bad bundle is rejected and the current anchors stay.
    let mut cfg = client_config(m.server.inbound_addr, &server_id(), false);
    cfg.identity.trust_anchors_pem = "garbage".into();
    m.client_store.apply(3, cfg).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(m.client_tls.load().anchors_pem, both);
}

#[tokio::test]
async fn app_level_tls_to_another_name_passes_through() {
    let ca = Ca::new("mesh-ca");
    let app_ca = Ca::new("app-ca");
    // The app terminates its own TLS for example.com.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app_addr = listener.local_addr().unwrap();
    let acceptor =
        tokio_rustls::TlsAcceptor::from(pki::server_config(&app_ca.server("example.com"), &[]));
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(s).await {
                    let _ = tls.write_all(b"hello from the app").await;
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    let server_store = Arc::new(ConfigStore::default());
    let mut cfg = ProxyConfig::default();
    cfg.inbound.permissive = true;
    server_store.apply(1, cfg).unwrap();
    let server = Proxy::start_with_identity(
        Settings {
            inbound_fallback_port: Some(app_addr.port()),
            detect_timeout: Duration::from_millis(300),
            ..Settings::loopback()
        },
        server_store,
        ca.store(&ca.workload(&server_id())),
    )
    .await
    .unwrap();

    let mut roots = rustls::RootCertStore::empty();
    for c in meshlet_proxy::identity::parse_certs("app ca", &app_ca.pem).unwrap() {
        roots.add(c).unwrap();
    }
    let config =
        rustls::ClientConfig::builder_with_provider(meshlet_proxy::identity::tls_provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(server.inbound_addr)
        .await
        .unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect("example.com".try_into().unwrap(), tcp)
        .await
        .expect("app-level TLS through the proxy");
    let mut body = String::new();
    tls.read_to_string(&mut body).await.unwrap();
    assert_eq!(body, "hello from the app");
}

#[tokio::test]
async fn broken_handshakes_are_closed_and_the_proxy_keeps_serving() {
    let ca = Ca::new("mesh-ca");
    let app = Upstream::start("app").await;
    let m = good_mesh(&ca, app.addr.port(), false).await;
    let own = server_id().tls_server_name();
    // A TLS record header followed by junk, a truncated ClientHello, and a
    // real ClientHello for our name without a client certificate.
    let junk: &[&[u8]] = &[
        b"\x16\x03\x01\x00\x05hello",
        b"\x16\x03\x01\x02\x00\x01\x00",
    ];
    for bytes in junk {
        let mut s = tokio::net::TcpStream::connect(m.server.inbound_addr)
            .await
            .unwrap();
        s.write_all(bytes).await.unwrap();
        let mut buf = [0u8; 64];
        let _ = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await;
    }
    let config =
        rustls::ClientConfig::builder_with_provider(meshlet_proxy::identity::tls_provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates({
                let mut r = rustls::RootCertStore::empty();
                for c in meshlet_proxy::identity::parse_certs("ca", &ca.pem).unwrap() {
                    r.add(c).unwrap();
                }
                r
            })
            .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(m.server.inbound_addr)
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from(own).unwrap();
    // TLS 1.3: the refusal shows on first use, not necessarily at connect.
    if let Ok(mut tls) = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
    {
        let _ = tls.write_all(b"GET / HTTP/1.1\r\nhost: a\r\n\r\n").await;
        let mut buf = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(2), tls.read_to_end(&mut buf)).await;
        assert!(
            !matches!(read, Ok(Ok(n)) if n > 0),
            "served without a client certificate: {}",
            String::from_utf8_lossy(&buf)
        );
    }
    assert_eq!(app.hits.load(Ordering::Relaxed), 0);
    let h1 = h1_client();
    assert_eq!(
        get(&h1, m.client.outbound_addr, HOST, "/").await,
        (200, "app".into())
    );
}

#[tokio::test]
async fn an_identity_mismatch_is_a_connect_failure_retried_elsewhere() {
    let ca = Ca::new("mesh-ca");
    let app = Upstream::start("app").await;
    // Two server proxies with the same certificate; the config expects the
    // second to be someone else, so every handshake with it fails.
    let good = mesh(
        ca.store(&ca.workload(&client_id())),
        ca.store(&ca.workload(&server_id())),
        &server_id(),
        app.addr.port(),
        false,
    )
    .await;
    let impostor = mesh(
        ca.store(&ca.workload(&client_id())),
        ca.store(&ca.workload(&server_id())),
        &server_id(),
        app.addr.port(),
        false,
    )
    .await;
    let mut cfg = client_config(good.server.inbound_addr, &server_id(), false);
    let mut wrong = cfg.outbound.services[0].ports[0].endpoints[0].clone();
    wrong.addr = impostor.server.inbound_addr;
    wrong.identity = Some(pki::spiffe("shop", "other").to_string());
    cfg.outbound.services[0].ports[0].endpoints.push(wrong);
    cfg.outbound.services[0].routes = vec![Route {
        name: "all".into(),
        retry: Some(RetryPolicy {
            max_attempts: 2,
            budget_ratio: 1.0,
            min_retries_per_second: 100,
        }),
        ..Default::default()
    }];
    good.client_store.apply(2, cfg).unwrap();
    let h1 = h1_client();
    for i in 0..30 {
        assert_eq!(
            get(&h1, good.client.outbound_addr, HOST, "/").await,
            (200, "app".into()),
            "request {i}"
        );
    }
    assert_eq!(app.hits.load(Ordering::Relaxed), 30);
    let impostor_metrics = metrics(impostor.server.admin_addr).await;
    assert!(
        !impostor_metrics.contains("request_total{"),
        "the impostor served a request: {impostor_metrics}"
    );
}
