//! End-to-end behaviour of the proxy over real loopback sockets.

mod common;

use bytes::Bytes;
use common::*;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use meshlet_crds::contract::config::*;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HOST: &str = "web.ns.svc.cluster.local";

#[tokio::test]
async fn http1_request_is_routed_by_host_to_an_endpoint() {
    let up = Upstream::start("a").await;
    let proxy = start_proxy(
        config(vec![service("web", "10.96.0.1", &[up.addr])]),
        None,
        None,
    )
    .await;
    let client = h1_client();
    assert_eq!(
        get(&client, proxy.outbound_addr, HOST, "/").await,
        (200, "a".into())
    );
    assert_eq!(
        get(&client, proxy.outbound_addr, "web", "/").await,
        (200, "a".into())
    );
    let (status, _) = get(&client, proxy.outbound_addr, "unknown.example", "/").await;
    assert_eq!(
        status, 503,
        "unknown authority without original destination"
    );
}

#[tokio::test]
async fn upstream_connections_are_pooled() {
    let up = Upstream::start("a").await;
    let proxy = start_proxy(
        config(vec![service("web", "10.96.0.1", &[up.addr])]),
        None,
        None,
    )
    .await;
    let client = h1_client();
    for _ in 0..50 {
        assert_eq!(get(&client, proxy.outbound_addr, HOST, "/").await.0, 200);
    }
    let conns = up.conns.load(Ordering::Relaxed);
    assert!(
        conns <= 2,
        "{conns} upstream connections for 50 sequential requests"
    );

    let h2 = Upstream::start("h2").await;
    let proxy = start_proxy(
        config(vec![service("web", "10.96.0.1", &[h2.addr])]),
        Some("10.96.0.1:80"),
        None,
    )
    .await;
    let client = h2_client();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (client, addr) = (client.clone(), proxy.outbound_addr);
        tasks.push(tokio::spawn(async move {
            get(&client, addr, HOST, "/sleep/50").await.0
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    assert_eq!(
        h2.conns.load(Ordering::Relaxed),
        1,
        "HTTP/2 upstream is one multiplexed connection"
    );
}

/// A server that answers one keep-alive request per connection, then closes
/// it without saying so: the proxy's pooled connection races the close.
async fn closing_server() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn requests_survive_upstreams_closing_keep_alive_connections() {
    let up = closing_server().await;
    let proxy = start_proxy(config(vec![service("web", "10.96.0.1", &[up])]), None, None).await;
    let client = h1_client();
    for i in 0..200 {
        assert_eq!(
            get(&client, proxy.outbound_addr, HOST, "/").await,
            (200, "ok".into()),
            "request {i}"
        );
    }
}

/// Bodies that take many reads each way, and a response trickled out with
/// pauses, flow through pooled HTTP/1 upstream connections, which are
/// reused after each.
#[tokio::test]
async fn large_and_trickled_http1_bodies_flow_on_pooled_connections() {
    let up = Upstream::start("a").await;
    let proxy = start_proxy(
        config(vec![service("web", "10.96.0.1", &[up.addr])]),
        None,
        None,
    )
    .await;
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let run = async {
        for i in 0..5u8 {
            let sent: Vec<u8> = (0..1024 * 1024).map(|n| (n % 251) as u8 ^ i).collect();
            let req = Request::post(format!("http://{}/echo", proxy.outbound_addr))
                .header("host", HOST)
                .body(Full::new(Bytes::from(sent.clone())))
                .unwrap();
            let rsp = client.request(req).await.unwrap();
            assert_eq!(rsp.status(), 200, "echo {i}");
            let got = rsp.into_body().collect().await.unwrap().to_bytes();
            assert!(
                got == sent,
                "echo {i}: {} bytes back of {}",
                got.len(),
                sent.len()
            );
        }
        for i in 0..3 {
            let (status, body) = get(&h1_client(), proxy.outbound_addr, HOST, "/drip/5").await;
            assert_eq!(status, 200, "drip {i}");
            assert_eq!(body.len(), 5 * DRIP_CHUNK, "drip {i}");
        }
    };
    tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("bodies stalled");
    let conns = up.conns.load(Ordering::Relaxed);
    assert!(
        conns <= 2,
        "{conns} upstream connections for 8 sequential requests"
    );
}

#[tokio::test]
async fn weighted_split_follows_weights() {
    let a = Upstream::start("a").await;
    let b = Upstream::start("b").await;
    let mut root = service("web", "10.96.0.1", &[a.addr]);
    root.split = Some(Split {
        name: "canary".into(),
        backends: vec![
            SplitBackend {
                service: ServiceRef {
                    name: "web-v1".into(),
                    namespace: "ns".into(),
                },
                weight: 80,
                ports: vec![],
            },
            SplitBackend {
                service: ServiceRef {
                    name: "web-v2".into(),
                    namespace: "ns".into(),
                },
                weight: 20,
                ports: vec![],
            },
        ],
        matches: vec![],
    });
    let cfg = config(vec![
        root,
        service("web-v1", "10.96.0.2", &[a.addr]),
        service("web-v2", "10.96.0.3", &[b.addr]),
    ]);
    let proxy = start_proxy(cfg, None, None).await;
    let client = h1_client();
    let n = 1000;
    let mut counts: HashMap<String, usize> = HashMap::new();
    for _ in 0..n {
        let (status, body) = get(&client, proxy.outbound_addr, HOST, "/").await;
        assert_eq!(status, 200);
        *counts.entry(body).or_default() += 1;
    }
    let share_b = counts.get("b").copied().unwrap_or(0) as f64 / n as f64;
    // Binomial sd at p=0.2, n=1000 is 1.3%; 5% is almost 4 sd.
    assert!((share_b - 0.2).abs() < 0.05, "b got {share_b}: {counts:?}");
}

#[tokio::test]
async fn split_matches_send_other_requests_to_the_root() {
    let root_up = Upstream::start("root").await;
    let canary = Upstream::start("canary").await;
    let mut root = service("web", "10.96.0.1", &[root_up.addr]);
    root.split = Some(Split {
        name: "s".into(),
        backends: vec![SplitBackend {
            service: ServiceRef {
                name: "web-canary".into(),
                namespace: "ns".into(),
            },
            weight: 100,
            ports: vec![],
        }],
        matches: vec![HttpMatch {
            path_regex: Some("/beta/.*".into()),
            methods: vec!["GET".into()],
            ..Default::default()
        }],
    });
    let cfg = config(vec![
        root,
        service("web-canary", "10.96.0.2", &[canary.addr]),
    ]);
    let proxy = start_proxy(cfg, None, None).await;
    let client = h1_client();
    for _ in 0..20 {
        assert_eq!(
            get(&client, proxy.outbound_addr, HOST, "/beta/x").await.1,
            "canary"
        );
        assert_eq!(
            get(&client, proxy.outbound_addr, HOST, "/x/beta/x").await.1,
            "root"
        );
    }
}

#[tokio::test]
async fn connect_failures_fail_over_to_a_live_endpoint() {
    let live = Upstream::start("live").await;
    let dead = dead_addr().await;
    let mut svc = service("web", "10.96.0.1", &[dead, live.addr]);
    svc.routes = vec![Route {
        name: "all".into(),
        retry: Some(RetryPolicy::default()),
        ..Default::default()
    }];
    let proxy = start_proxy(config(vec![svc]), None, None).await;
    let client = h1_client();
    for i in 0..100 {
        let (status, body) = get(&client, proxy.outbound_addr, HOST, "/").await;
        assert_eq!((status, body.as_str()), (200, "live"), "request {i}");
    }
}

#[tokio::test]
async fn failing_endpoints_are_ejected_and_recover() {
    let good = Upstream::start("good").await;
    let bad = Upstream::start("bad").await;
    bad.failing.store(true, Ordering::Relaxed);
    let mut svc = service("web", "10.96.0.1", &[good.addr, bad.addr]);
    svc.outlier = Some(OutlierPolicy {
        consecutive_failures: 3,
        base_ejection_ms: 1500,
        max_ejection_ms: 1500,
    });
    let proxy = start_proxy(config(vec![svc]), None, None).await;
    let client = h1_client();
    for _ in 0..30 {
        get(&client, proxy.outbound_addr, HOST, "/").await;
    }
    // Ejected now: the next requests all reach the good endpoint.
    let before = bad.hits.load(Ordering::Relaxed);
    assert!(
        before <= 4,
        "bad endpoint got {before} requests before ejection"
    );
    for _ in 0..30 {
        assert_eq!(
            get(&client, proxy.outbound_addr, HOST, "/").await,
            (200, "good".into())
        );
    }
    assert_eq!(bad.hits.load(Ordering::Relaxed), before);
    // Recovered: after the ejection it is probed and gets traffic again.
    // When is up to the balancer: it picks the endpoint with the lower
    // peak-EWMA latency, and one slow response (a loaded test machine)
    // keeps an endpoint's estimate higher for seconds, so the test sends
    // until it is back (every response a 200), within a bound.
    bad.failing.store(false, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut sent = 0;
    while bad.hits.load(Ordering::Relaxed) <= before + 10 && Instant::now() < deadline {
        assert_eq!(get(&client, proxy.outbound_addr, HOST, "/").await.0, 200);
        sent += 1;
    }
    assert!(
        bad.hits.load(Ordering::Relaxed) > before + 10,
        "bad endpoint never came back ({sent} requests in 60 s after the ejection ended)"
    );
}

#[tokio::test]
async fn route_timeout_answers_504_fast() {
    let up = Upstream::start("slow").await;
    let mut svc = service("web", "10.96.0.1", &[up.addr]);
    svc.routes = vec![Route {
        name: "slow".into(),
        matches: vec![HttpMatch {
            path_regex: Some("/sleep/.*".into()),
            ..Default::default()
        }],
        timeout_ms: Some(100),
        retry: None,
    }];
    let proxy = start_proxy(config(vec![svc]), None, None).await;
    let client = h1_client();
    let start = Instant::now();
    let (status, _) = get(&client, proxy.outbound_addr, HOST, "/sleep/3000").await;
    assert_eq!(status, 504);
    assert!(
        start.elapsed() < Duration::from_millis(1000),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(get(&client, proxy.outbound_addr, HOST, "/").await.0, 200);
}

#[tokio::test]
async fn http2_requests_are_multiplexed_with_trailers() {
    let up = Upstream::start("h2").await;
    let proxy = start_proxy(
        config(vec![service("web", "10.96.0.1", &[up.addr])]),
        Some("10.96.0.1:80"),
        None,
    )
    .await;
    let client = h2_client();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let client = client.clone();
        let addr = proxy.outbound_addr;
        tasks.push(tokio::spawn(async move {
            get(&client, addr, HOST, "/sleep/300").await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), (200, "h2".into()));
    }
    // 50 × 300 ms in sequence would be 15 s.
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );

    // gRPC-style: trailers come through.
    use http_body_util::BodyExt;
    let req = http::Request::post(format!("http://{}/grpc", proxy.outbound_addr))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let rsp = client.request(req).await.unwrap();
    assert_eq!(rsp.version(), http::Version::HTTP_2);
    let collected = rsp.into_body().collect().await.unwrap();
    let trailers = collected.trailers().cloned().expect("trailers");
    assert_eq!(trailers["grpc-status"], "0");
    assert_eq!(collected.to_bytes(), "h2");
}

#[tokio::test]
async fn opaque_tcp_passes_through() {
    let (echo, _task) = tcp_echo().await;
    let proxy = start_proxy(
        config(vec![service("db", "10.96.0.9", &[echo])]),
        Some("10.96.0.9:80"),
        None,
    )
    .await;
    let mut s = TcpStream::connect(proxy.outbound_addr).await.unwrap();
    // Not HTTP: detected as opaque at once.
    s.write_all(b"\x00\x01binary hello").await.unwrap();
    let mut buf = [0u8; 14];
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"\x00\x01binary hello");
    // Byte counters move while the connection is still open.
    let metrics = admin_get(proxy.admin_addr, "/metrics").await.1;
    for needle in [
        "tcp_open_total{direction=\"outbound\",dst_namespace=\"ns\",dst_service=\"db\",tls=\"no_identity\"} 1",
        "tcp_read_bytes_total{direction=\"outbound\",dst_namespace=\"ns\",dst_service=\"db\",tls=\"no_identity\"} 14",
        "tcp_write_bytes_total{direction=\"outbound\",dst_namespace=\"ns\",dst_service=\"db\",tls=\"no_identity\"} 14",
    ] {
        assert!(metrics.contains(needle), "{needle} not in\n{metrics}");
    }
    // Server-speaks-first style: silent client, opaque after the timeout.
    let mut s = TcpStream::connect(proxy.outbound_addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    s.write_all(b"late").await.unwrap();
    let mut buf = [0u8; 4];
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"late");
}

#[tokio::test]
async fn websocket_upgrade_passes_through() {
    let up = Upstream::start("ws").await;
    let proxy = start_proxy(
        config(vec![service("web", "10.96.0.1", &[up.addr])]),
        None,
        None,
    )
    .await;
    let mut s = TcpStream::connect(proxy.outbound_addr).await.unwrap();
    s.write_all(
        format!(
            "GET /ws HTTP/1.1\r\nHost: {HOST}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.unwrap();
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s.write_all(b"ping over upgraded").await.unwrap();
    let mut buf = [0u8; 18];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"ping over upgraded");
}

#[tokio::test]
async fn connect_tunnels_pass_through() {
    let up = Upstream::start("tunnel").await;
    let proxy = start_proxy(
        config(vec![service("web", "10.96.0.1", &[up.addr])]),
        None,
        None,
    )
    .await;
    let mut s = TcpStream::connect(proxy.outbound_addr).await.unwrap();
    s.write_all(format!("CONNECT {HOST}:80 HTTP/1.1\r\nHost: {HOST}:80\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.unwrap();
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    s.write_all(b"tunnelled bytes").await.unwrap();
    let mut buf = [0u8; 15];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"tunnelled bytes");
}

#[tokio::test]
async fn inbound_forwards_to_the_local_app() {
    let app = Upstream::start("app").await;
    let proxy = start_proxy(config(vec![]), None, Some(app.addr.port())).await;
    let client = h1_client();
    assert_eq!(
        get(&client, proxy.inbound_addr, "anything", "/").await,
        (200, "app".into())
    );
}

/// Inbound clients come from the network: one that trickles its request
/// headers (slowloris) is cut off after the header read timeout. Outbound,
/// the client is the pod's own app, and its slow request still gets through.
#[tokio::test]
async fn inbound_cuts_off_clients_that_trickle_headers_outbound_waits() {
    let app = Upstream::start("app").await;
    let store = std::sync::Arc::new(meshlet_proxy::config::ConfigStore::default());
    store
        .apply(1, config(vec![service("web", "10.96.0.1", &[app.addr])]))
        .unwrap();
    let settings = meshlet_proxy::settings::Settings {
        outbound_fallback: None,
        inbound_fallback_port: Some(app.addr.port()),
        detect_timeout: Duration::from_millis(300),
        header_read_timeout: Duration::from_millis(500),
        ..meshlet_proxy::settings::Settings::loopback()
    };
    let proxy = meshlet_proxy::app::Proxy::start(settings, store)
        .await
        .unwrap();

    // Inbound: half a request head, then nothing. Closed in about the
    // timeout, the app never asked.
    let mut slow = TcpStream::connect(proxy.inbound_addr).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nhost: app\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "inbound connection still open after 5 s");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_secs(3),
        "closed after {waited:?}, timeout 500 ms"
    );
    assert!(
        !String::from_utf8_lossy(&buf).contains("200"),
        "{}",
        String::from_utf8_lossy(&buf)
    );
    assert_eq!(app.hits.load(Ordering::SeqCst), 0);

    // Outbound: the same trickle, finished after twice the inbound timeout,
    // is answered.
    let mut slow = TcpStream::connect(proxy.outbound_addr).await.unwrap();
    slow.write_all(format!("GET / HTTP/1.1\r\nhost: {HOST}\r\n").as_bytes())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    slow.write_all(b"connection: close\r\n\r\n").await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut buf))
        .await
        .expect("outbound answer")
        .unwrap();
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.ends_with("app"), "{text}");
}

#[tokio::test]
async fn two_proxies_chain_outbound_to_inbound() {
    let app = Upstream::start("server-app").await;
    let server_side = start_proxy(config(vec![]), None, Some(app.addr.port())).await;
    let client_side = start_proxy(
        config(vec![service(
            "web",
            "10.96.0.1",
            &[server_side.inbound_addr],
        )]),
        Some("10.96.0.1:80"),
        None,
    )
    .await;
    let client = h1_client();
    for _ in 0..20 {
        assert_eq!(
            get(&client, client_side.outbound_addr, HOST, "/").await,
            (200, "server-app".into())
        );
    }
    // HTTP/2 (gRPC-style, with trailers) across both hops.
    use http_body_util::BodyExt;
    let req = http::Request::post(format!("http://{}/grpc", client_side.outbound_addr))
        .header("content-type", "application/grpc")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let rsp = h2_client().request(req).await.unwrap();
    assert_eq!(rsp.version(), http::Version::HTTP_2);
    let collected = rsp.into_body().collect().await.unwrap();
    assert_eq!(collected.trailers().expect("trailers")["grpc-status"], "0");
    assert_eq!(collected.to_bytes(), "server-app");
}

#[tokio::test]
async fn config_swap_under_load_drops_nothing() {
    let a = Upstream::start("a").await;
    let b = Upstream::start("b").await;
    let store_cfg = |addr| config(vec![service("web", "10.96.0.1", &[addr])]);
    let proxy = start_proxy(store_cfg(a.addr), None, None).await;
    let addr = proxy.outbound_addr;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let stop = stop.clone();
        workers.push(tokio::spawn(async move {
            let client = h1_client();
            let (mut ok, mut failed) = (0, 0);
            while !stop.load(Ordering::Relaxed) {
                match get(&client, addr, HOST, "/sleep/1").await.0 {
                    200 => ok += 1,
                    _ => failed += 1,
                }
            }
            (ok, failed)
        }));
    }
    let store = proxy.ctx().store.clone();
    for generation in 2..40u64 {
        let target = if generation % 2 == 0 { b.addr } else { a.addr };
        store.apply(generation, store_cfg(target)).unwrap();
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let (mut ok, mut failed) = (0, 0);
    for w in workers {
        let (o, f) = w.await.unwrap();
        ok += o;
        failed += f;
    }
    assert_eq!(failed, 0, "{failed} failed of {}", ok + failed);
    assert!(ok > 100, "only {ok} requests");
    assert!(a.hits.load(Ordering::Relaxed) > 0 && b.hits.load(Ordering::Relaxed) > 0);
}

#[tokio::test]
async fn garbage_and_malformed_http_never_crash_the_proxy() {
    let up = Upstream::start("a").await;
    let proxy = start_proxy(
        config(vec![service("web", "10.96.0.1", &[up.addr])]),
        None,
        None,
    )
    .await;
    let inputs: Vec<Vec<u8>> = vec![
        b"GET / HTTP/1.1\r\nHost: \xff\xfe\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nBad Header Line\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nContent-Length: -5\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(),
        [b"GET / HTTP/1.1\r\nX: ".to_vec(), vec![b'a'; 200_000]].concat(),
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x05\xff\xff\xff\xff\xff".to_vec(),
        (0..4096).map(|i| (i * 7919 % 251) as u8).collect(),
        b"GET".to_vec(),
    ];
    for input in inputs {
        for target in [proxy.outbound_addr, proxy.inbound_addr] {
            if let Ok(mut s) = TcpStream::connect(target).await {
                let _ = s.write_all(&input).await;
                let mut sink = Vec::new();
                let _ = tokio::time::timeout(Duration::from_millis(500), s.read_to_end(&mut sink))
                    .await;
            }
        }
    }
    let client = h1_client();
    assert_eq!(
        get(&client, proxy.outbound_addr, HOST, "/").await,
        (200, "a".into())
    );
    assert_eq!(admin_get(proxy.admin_addr, "/live").await.0, 200);
}

#[tokio::test]
async fn admin_serves_health_metrics_and_config() {
    let up = Upstream::start("a").await;
    let proxy = start_proxy(
        config(vec![service("web", "10.96.0.1", &[up.addr])]),
        None,
        None,
    )
    .await;
    let client = h1_client();
    get(&client, proxy.outbound_addr, HOST, "/").await;
    assert_eq!(admin_get(proxy.admin_addr, "/live").await.0, 200);
    assert_eq!(admin_get(proxy.admin_addr, "/ready").await.0, 200);
    let (status, metrics) = admin_get(proxy.admin_addr, "/metrics").await;
    assert_eq!(status, 200);
    for needle in [
        "request_total{direction=\"outbound\",dst_namespace=\"ns\",dst_service=\"web\"",
        "response_total{",
        "classification=\"success\"",
        "response_latency_ms_bucket{",
    ] {
        assert!(metrics.contains(needle), "{needle} not in\n{metrics}");
    }
    let (status, cfg) = admin_get(proxy.admin_addr, "/config").await;
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&cfg).unwrap();
    assert_eq!(v["generation"], 1);
    assert_eq!(v["config"]["outbound"]["services"][0]["name"], "web");
}

#[tokio::test]
async fn not_ready_before_a_config_arrives() {
    let store = std::sync::Arc::new(meshlet_proxy::ConfigStore::default());
    let proxy = meshlet_proxy::Proxy::start(meshlet_proxy::Settings::loopback(), store)
        .await
        .unwrap();
    assert_eq!(admin_get(proxy.admin_addr, "/ready").await.0, 503);
    assert_eq!(admin_get(proxy.admin_addr, "/live").await.0, 200);
}

#[tokio::test]
async fn shutdown_drains_requests_in_flight() {
    let up = Upstream::start("a").await;
    let proxy = start_proxy(
        config(vec![service("web", "10.96.0.1", &[up.addr])]),
        None,
        None,
    )
    .await;
    let addr = proxy.outbound_addr;
    let in_flight = tokio::spawn(async move { get(&h1_client(), addr, HOST, "/sleep/500").await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let start = Instant::now();
    assert!(
        proxy.shutdown(Duration::from_secs(5)).await,
        "did not drain"
    );
    assert!(start.elapsed() >= Duration::from_millis(300));
    assert_eq!(in_flight.await.unwrap(), (200, "a".into()));
    assert_eq!(
        admin_get(proxy.admin_addr, "/ready").await.0,
        0,
        "admin stopped accepting"
    );
    assert!(TcpStream::connect(addr).await.is_err(), "still accepting");
}
