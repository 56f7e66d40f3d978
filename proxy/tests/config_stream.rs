//! The config stream client against a real HTTP/2 server on loopback.

mod common;

use bytes::Bytes;
use common::pki;
use common::*;
use http_body_util::BodyExt;
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use meshlet_crds::contract::config::{
    ConfigMessage, ProxyConfig, CONFIG_STREAM_PATH, CONFIG_VERSION,
};
use meshlet_crds::contract::identity::OPERATOR_SERVER_NAME;
use meshlet_proxy::config::stream::{run, OperatorVerify, StreamSettings};
use meshlet_proxy::identity::TlsStore;
use meshlet_proxy::{ConfigStore, Proxy, Settings};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

type Lines = mpsc::UnboundedSender<String>;

/// A fake operator serving HTTPS with a certificate for the operator's
/// server name from `ca`: each subscription takes the next queued line
/// channel; when none is queued it answers 503.
async fn operator(
    ca: &pki::Ca,
) -> (
    String,
    Arc<Mutex<VecDeque<mpsc::UnboundedReceiver<String>>>>,
    Arc<Mutex<Vec<String>>>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let queue: Arc<Mutex<VecDeque<mpsc::UnboundedReceiver<String>>>> = Arc::default();
    let paths: Arc<Mutex<Vec<String>>> = Arc::default();
    let (q, p) = (queue.clone(), paths.clone());
    let acceptor = tokio_rustls::TlsAcceptor::from(pki::server_config(
        &ca.server(OPERATOR_SERVER_NAME),
        &[b"h2", b"http/1.1"],
    ));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (q, p) = (q.clone(), p.clone());
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(stream).await else {
                    return;
                };
                let svc =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        p.lock().unwrap().push(format!(
                            "{:?} {} {}",
                            req.version(),
                            req.uri().path_and_query().unwrap(),
                            req.headers()
                                .get(http::header::AUTHORIZATION)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("no-authorization"),
                        ));
                        let rx = q.lock().unwrap().pop_front();
                        async move {
                            let Some(rx) = rx else {
                                let mut r = http::Response::new(
                                    http_body_util::Empty::<Bytes>::new()
                                        .map_err(|n| match n {})
                                        .boxed(),
                                );
                                *r.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
                                return Ok::<_, Infallible>(r);
                            };
                            let stream = futures_util::stream::unfold(rx, |mut rx| async move {
                                rx.recv().await.map(|line| {
                                    (
                                        Ok::<_, Infallible>(Frame::data(Bytes::from(line + "\n"))),
                                        rx,
                                    )
                                })
                            });
                            Ok(http::Response::new(
                                http_body_util::StreamBody::new(stream).boxed(),
                            ))
                        }
                    });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, queue, paths)
}

fn message(generation: u64, config: ProxyConfig) -> String {
    serde_json::to_string(&ConfigMessage {
        version: CONFIG_VERSION,
        generation,
        config,
    })
    .unwrap()
}

async fn wait_generation(store: &ConfigStore, generation: u64) -> Duration {
    let start = Instant::now();
    let mut rx = store.subscribe();
    tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|g| *g >= generation))
        .await
        .expect("config did not arrive")
        .unwrap();
    start.elapsed()
}

#[tokio::test]
async fn stream_updates_apply_and_the_last_config_survives_a_lost_stream() {
    let a = Upstream::start("a").await;
    let b = Upstream::start("b").await;
    let c = Upstream::start("c").await;
    let cfg = |addr| config(vec![service("web", "10.96.0.1", &[addr])]);
    let ca = pki::Ca::new("mesh-ca");
    let (operator_addr, queue, paths) = operator(&ca).await;
    let (tx1, rx1) = mpsc::unbounded_channel();
    queue.lock().unwrap().push_back(rx1);

    let token_path = std::env::temp_dir().join(format!("meshlet-token-{}", std::process::id()));
    std::fs::write(&token_path, "tok123\n").unwrap();
    let store = Arc::new(ConfigStore::default());
    let proxy = Proxy::start(Settings::loopback(), store.clone())
        .await
        .unwrap();
    let settings = StreamSettings {
        operator: operator_addr,
        path_and_query: format!("{CONFIG_STREAM_PATH}?namespace=ns&pod=p"),
        token_file: Some(token_path.clone()),
        backoff_min: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
        tls: Some(OperatorVerify {
            store: Arc::new(TlsStore::new(None, "anchors", &ca.pem).unwrap()),
            server_name: OPERATOR_SERVER_NAME.into(),
        }),
    };
    tokio::spawn(run(settings, store.clone(), proxy.ctx().shutdown.clone()));
    let client = h1_client();
    let host = "web.ns.svc.cluster.local";

    send(&tx1, message(1, cfg(a.addr)));
    wait_generation(&store, 1).await;
    assert_eq!(get(&client, proxy.outbound_addr, host, "/").await.1, "a");
    assert_eq!(admin_get(proxy.admin_addr, "/ready").await.0, 200);

    // A garbage line and a wrong version are skipped; the stream goes on.
    send(&tx1, "{not json".to_string());
    send(
        &tx1,
        r#"{"version":99,"generation":5,"config":{}}"#.to_string(),
    );
    send(&tx1, message(2, cfg(b.addr)));
    let took = wait_generation(&store, 2).await;
    assert!(
        took < Duration::from_millis(100),
        "propagation took {took:?}"
    );
    assert_eq!(get(&client, proxy.outbound_addr, host, "/").await.1, "b");

    // The operator goes away: the proxy keeps serving its last config.
    drop(tx1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(get(&client, proxy.outbound_addr, host, "/").await.1, "b");

    // It comes back: the proxy reconnects (through 503s) and takes the new config.
    let (tx2, rx2) = mpsc::unbounded_channel();
    queue.lock().unwrap().push_back(rx2);
    send(&tx2, message(3, cfg(c.addr)));
    wait_generation(&store, 3).await;
    assert_eq!(get(&client, proxy.outbound_addr, host, "/").await.1, "c");
    let paths = paths.lock().unwrap().clone();
    assert!(paths.len() >= 2, "{paths:?}");
    assert!(
        paths[0].starts_with("HTTP/2.0 /v1/proxy-config?namespace=ns&pod=p"),
        "{paths:?}"
    );
    // The token file's content (trimmed) is presented on every connect.
    assert!(
        paths.iter().all(|p| p.ends_with(" Bearer tok123")),
        "{paths:?}"
    );
}

#[tokio::test]
async fn an_operator_with_an_untrusted_certificate_is_refused() {
    let operator_ca = pki::Ca::new("other-ca");
    let ca = pki::Ca::new("mesh-ca");
    let (operator_addr, queue, paths) = operator(&operator_ca).await;
    let (tx, rx) = mpsc::unbounded_channel();
    queue.lock().unwrap().push_back(rx);
    send(&tx, message(1, ProxyConfig::default()));
    let store = Arc::new(ConfigStore::default());
    let shutdown = tokio_util::sync::CancellationToken::new();
    let settings = StreamSettings {
        operator: operator_addr,
        path_and_query: format!("{CONFIG_STREAM_PATH}?namespace=ns&pod=p"),
        token_file: None,
        backoff_min: Duration::from_millis(20),
        backoff_max: Duration::from_millis(50),
        tls: Some(OperatorVerify {
            store: Arc::new(TlsStore::new(None, "anchors", &ca.pem).unwrap()),
            server_name: OPERATOR_SERVER_NAME.into(),
        }),
    };
    tokio::spawn(run(settings, store.clone(), shutdown.clone()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    shutdown.cancel();
    assert!(
        !store.is_loaded(),
        "config taken from an unverified operator"
    );
    assert!(paths.lock().unwrap().is_empty(), "a request was sent to it");
}

fn send(tx: &Lines, line: String) {
    tx.send(line).unwrap();
}
