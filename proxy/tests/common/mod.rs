//! Test harness: real upstream servers on loopback, a proxy started
//! in-process with a given config, and HTTP clients.
#![allow(dead_code)]

pub mod pki;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full};
use hyper::body::{Frame, Incoming};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use meshlet_crds::contract::config::*;
use meshlet_proxy::{ConfigStore, Proxy, Settings};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

pub type TestBody = BoxBody<Bytes, Infallible>;

/// The size of each chunk `/drip/N` sends.
pub const DRIP_CHUNK: usize = 16 * 1024;

fn full(s: impl Into<Bytes>) -> TestBody {
    Full::new(s.into()).boxed()
}

/// An upstream HTTP/1+HTTP/2 server answering with its name.
pub struct Upstream {
    pub addr: SocketAddr,
    pub name: String,
    /// When set, answers 503.
    pub failing: Arc<AtomicBool>,
    /// Requests served.
    pub hits: Arc<AtomicUsize>,
    /// Connections accepted.
    pub conns: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Upstream {
    pub async fn start(name: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let failing = Arc::new(AtomicBool::new(false));
        let hits = Arc::new(AtomicUsize::new(0));
        let conns = Arc::new(AtomicUsize::new(0));
        let (n, f, h, c) = (
            Arc::<str>::from(name),
            failing.clone(),
            hits.clone(),
            conns.clone(),
        );
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                c.fetch_add(1, Ordering::Relaxed);
                let (n, f, h) = (n.clone(), f.clone(), h.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        handle(n.clone(), f.clone(), h.clone(), req)
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Upstream {
            addr,
            name: name.to_string(),
            failing,
            hits,
            conns,
            task,
        }
    }
}

async fn handle(
    name: Arc<str>,
    failing: Arc<AtomicBool>,
    hits: Arc<AtomicUsize>,
    mut req: Request<Incoming>,
) -> Result<Response<TestBody>, Infallible> {
    hits.fetch_add(1, Ordering::Relaxed);
    let path = req.uri().path().to_string();
    if let Some(ms) = path.strip_prefix("/sleep/") {
        tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(0))).await;
    }
    if failing.load(Ordering::Relaxed) {
        let mut r = Response::new(full("failing"));
        *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        return Ok(r);
    }
    if path == "/ws" || req.method() == http::Method::CONNECT {
        let on = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(up) = on.await {
                let mut io = TokioIo::new(up);
                let mut buf = [0u8; 1024];
                while let Ok(n) = io.read(&mut buf).await {
                    if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        });
        if req.method() == http::Method::CONNECT {
            return Ok(Response::new(full("")));
        }
        let r = Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .body(full(""))
            .unwrap();
        return Ok(r);
    }
    if let Some(n) = path.strip_prefix("/drip/") {
        // `n` chunks of DRIP_CHUNK bytes, 20 ms apart: a response that
        // arrives over many reads and pauses.
        let n: usize = n.parse().unwrap_or(1);
        let chunks = futures_util::stream::unfold(0, move |i| async move {
            if i == n {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            Some((
                Ok(Frame::data(Bytes::from(vec![b'0' + i as u8; DRIP_CHUNK]))),
                i + 1,
            ))
        });
        return Ok(Response::new(
            http_body_util::StreamBody::new(chunks).boxed(),
        ));
    }
    if path == "/echo" {
        let body = req
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        return Ok(Response::new(full(body)));
    }
    if path == "/grpc" {
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", "0".parse().unwrap());
        let frames: Vec<Result<Frame<Bytes>, Infallible>> = vec![
            Ok(Frame::data(Bytes::from(name.to_string()))),
            Ok(Frame::trailers(trailers)),
        ];
        let body = http_body_util::StreamBody::new(futures_util::stream::iter(frames)).boxed();
        let r = Response::builder()
            .header("content-type", "application/grpc")
            .body(body)
            .unwrap();
        return Ok(r);
    }
    Ok(Response::new(full(name.to_string())))
}

/// A TCP echo server.
pub async fn tcp_echo() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    (addr, task)
}

/// An address nothing listens on.
pub async fn dead_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

pub fn endpoint(addr: SocketAddr) -> Endpoint {
    Endpoint {
        addr,
        meshed: false,
        identity: None,
        zone: None,
        labels: Default::default(),
        weight: 1,
    }
}

/// A service `name.ns` at cluster IP `ip`, port 80, with endpoints.
pub fn service(name: &str, ip: &str, endpoints: &[SocketAddr]) -> Service {
    Service {
        name: name.into(),
        namespace: "ns".into(),
        cluster_ips: vec![ip.parse().unwrap()],
        authorities: vec![
            format!("{name}.ns.svc.cluster.local:80"),
            format!("{name}:80"),
        ],
        ports: vec![ServicePort {
            port: 80,
            endpoints: endpoints.iter().copied().map(endpoint).collect(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// A config routing to `services`; inbound is permissive because these
/// tests are about forwarding (access control: `authz_matrix.rs`).
pub fn config(services: Vec<Service>) -> ProxyConfig {
    ProxyConfig {
        outbound: OutboundConfig { services },
        inbound: InboundConfig {
            permissive: true,
            ..Default::default()
        },
        identity: Default::default(),
    }
}

/// A proxy on loopback with `cfg`; `fallback` is the destination assumed
/// for connections that name no known authority.
pub async fn start_proxy(cfg: ProxyConfig, fallback: Option<&str>, app_port: Option<u16>) -> Proxy {
    let store = Arc::new(ConfigStore::default());
    store.apply(1, cfg).unwrap();
    let settings = Settings {
        outbound_fallback: fallback.map(|f| f.parse().unwrap()),
        inbound_fallback_port: app_port,
        detect_timeout: Duration::from_millis(300),
        ..Settings::loopback()
    };
    Proxy::start(settings, store).await.unwrap()
}

pub type H1Client = Client<HttpConnector, Empty<Bytes>>;

pub fn h1_client() -> H1Client {
    Client::builder(TokioExecutor::new()).build_http()
}

pub fn h2_client() -> H1Client {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http()
}

/// GET `path` through `proxy` with `Host: host`; returns status and body.
pub async fn get(client: &H1Client, proxy: SocketAddr, host: &str, path: &str) -> (u16, String) {
    let req = Request::get(format!("http://{proxy}{path}"))
        .header("host", host)
        .body(Empty::new())
        .unwrap();
    match client.request(req).await {
        Ok(rsp) => {
            let status = rsp.status().as_u16();
            let body = rsp
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            (status, String::from_utf8_lossy(&body).into_owned())
        }
        Err(e) => (0, e.to_string()),
    }
}

/// Fetches a path from the admin server.
pub async fn admin_get(admin: SocketAddr, path: &str) -> (u16, String) {
    let client = h1_client();
    get(&client, admin, "admin", path).await
}
