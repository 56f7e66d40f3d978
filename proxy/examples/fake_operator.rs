//! A stand-in for the operator's two endpoints a pod's proxy uses at start:
//! certify (signs the proxy's CSR with a throwaway CA) and the config
//! stream (one config, then the stream stays open). `make link-order` runs
//! the proxy against it, so that a pod's start-up (key and CSR, TLS to the
//! operator, HTTP/2, the first config) is part of the link-order profile.
//!
//! `fake_operator ADDR CONFIG.json ANCHORS_OUT`: serves HTTPS on ADDR as
//! the operator's server name, streams CONFIG.json, writes the CA's PEM to
//! ANCHORS_OUT once it listens.

#[path = "../tests/common/pki.rs"]
mod pki;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use meshlet_crds::contract::config::{ConfigMessage, ProxyConfig, CONFIG_VERSION};
use meshlet_crds::contract::identity::{
    CertifyRequest, CertifyResponse, CERTIFY_PATH, OPERATOR_SERVER_NAME,
};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

type Body = http_body_util::combinators::BoxBody<Bytes, Infallible>;

const LIFETIME: Duration = Duration::from_secs(24 * 3600);

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, addr, config, anchors_out] = &args[..] else {
        anyhow::bail!("usage: fake_operator ADDR CONFIG.json ANCHORS_OUT");
    };
    let config: ProxyConfig = serde_json::from_slice(&std::fs::read(config)?)?;
    let line = Bytes::from(
        serde_json::to_string(&ConfigMessage {
            version: CONFIG_VERSION,
            generation: 1,
            config,
        })? + "\n",
    );
    let ca = Arc::new(pki::Ca::new("fake-operator"));
    let acceptor = tokio_rustls::TlsAcceptor::from(pki::server_config(
        &ca.server(OPERATOR_SERVER_NAME),
        &[b"h2", b"http/1.1"],
    ));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    std::fs::write(anchors_out, &ca.pem)?;
    loop {
        let (s, _) = listener.accept().await?;
        let (acceptor, ca, line) = (acceptor.clone(), ca.clone(), line.clone());
        tokio::spawn(async move {
            let Ok(s) = acceptor.accept(s).await else {
                return;
            };
            let svc =
                hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let (ca, line) = (ca.clone(), line.clone());
                    async move { Ok::<_, Infallible>(answer(req, &ca, line).await) }
                });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(s), svc)
                .await;
        });
    }
}

async fn answer(
    req: http::Request<hyper::body::Incoming>,
    ca: &pki::Ca,
    line: Bytes,
) -> http::Response<Body> {
    if req.uri().path() == CERTIFY_PATH {
        let body = req.into_body().collect().await.map(|b| b.to_bytes());
        let signed = body
            .ok()
            .and_then(|b| serde_json::from_slice::<CertifyRequest>(&b).ok())
            .and_then(|r| ca.sign_csr(&r.csr_pem, LIFETIME).ok());
        let Some(chain) = signed else {
            return status(400);
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let rsp = CertifyResponse {
            certificate_chain_pem: chain,
            trust_anchors_pem: ca.pem.clone(),
            expires_unix: (now + LIFETIME).as_secs(),
            renew_after_unix: (now + LIFETIME / 2).as_secs(),
        };
        let json = serde_json::to_vec(&rsp).unwrap_or_default();
        return http::Response::new(Full::new(Bytes::from(json)).boxed());
    }
    // The config stream: one message, then open until the proxy goes.
    let frames = futures_util::stream::unfold(Some(line), |line| async move {
        match line {
            Some(l) => Some((Ok(Frame::data(l)), None)),
            None => std::future::pending().await,
        }
    });
    http::Response::new(StreamBody::new(frames).boxed())
}

fn status(code: u16) -> http::Response<Body> {
    let mut r = http::Response::new(Full::new(Bytes::new()).boxed());
    *r.status_mut() = http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::BAD_REQUEST);
    r
}
