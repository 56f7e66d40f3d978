//! Shared helpers of the operator's integration tests: the control plane
//! with Meshlet's CRDs, a started operator (its identity CA in a namespace
//! of its own), TLS connections that trust the operator's anchors, a config
//! stream subscriber speaking HTTP/2 over TLS like the proxy does, and a
//! certify client. Submodules: real processes ([`processes`]), fake meshed
//! pods serving the proxy's metrics ([`fake_pods`]), and the operator
//! serving the TrafficMetrics API through the aggregator ([`metrics_api`]).
#![allow(dead_code)]

pub mod fake_pods;
pub mod metrics_api;
pub mod processes;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::StatusCode;
use hyper_util::rt::{TokioExecutor, TokioIo};
use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ListParams, PostParams};
use kube::{Api, Client, Resource};
use meshlet_crds::access::v1alpha3::TrafficTarget;
use meshlet_crds::contract::config::{ConfigMessage, CONFIG_STREAM_PATH};
use meshlet_crds::contract::identity::{CERTIFY_PATH, OPERATOR_SERVER_NAME, TOKEN_AUDIENCE};
use meshlet_crds::contract::install;
use meshlet_crds::manifests::{self, CrdRender};
use meshlet_crds::specs::v1alpha4::{HttpRouteGroup, TcpRoute, UdpRoute};
use meshlet_crds::split::v1alpha4::TrafficSplit;
use meshlet_operator::context::{self, Running, Settings};
use meshlet_testenv::TestEnv;
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, OnceCell};

/// Retries `f` every 50 ms until it yields `Some`, for at most `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await? {
            return Ok(v);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("{what}: not within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn served<K>(client: &Client) -> Result<Option<()>>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    match Api::<K>::all(client.clone())
        .list(&ListParams::default().limit(1))
        .await
    {
        Ok(_) => Ok(Some(())),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The shared control plane with Meshlet's CRDs (storage versions) installed
/// and served.
pub async fn env() -> Result<&'static TestEnv> {
    static CRDS: OnceCell<()> = OnceCell::const_new();
    let env = meshlet_testenv::shared().await?;
    CRDS.get_or_try_init(|| async {
        let client = env.client();
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        for crd in manifests::all(CrdRender::StorageOnly) {
            match crds.create(&PostParams::default(), &crd).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => return Err(e).context("creating the SMI CRDs"),
            }
        }
        let wait = Duration::from_secs(30);
        eventually("TrafficSplit served", wait, || {
            served::<TrafficSplit>(&client)
        })
        .await?;
        eventually("TrafficTarget served", wait, || {
            served::<TrafficTarget>(&client)
        })
        .await?;
        eventually("HTTPRouteGroup served", wait, || {
            served::<HttpRouteGroup>(&client)
        })
        .await?;
        eventually("TCPRoute served", wait, || served::<TcpRoute>(&client)).await?;
        eventually("UDPRoute served", wait, || served::<UdpRoute>(&client)).await?;
        anyhow::Ok(())
    })
    .await?;
    Ok(env)
}

/// An operator on the test's runtime, ready (caches synced). Unless the
/// settings name one, its identity CA lives in a fresh namespace, so tests
/// sharing the API server do not share (or race for) an issuer.
pub async fn operator(env: &TestEnv, mut settings: Settings) -> Result<Running> {
    if settings.identity.namespace == install::NAMESPACE {
        settings.identity.namespace = env.create_namespace("meshlet-id").await?;
    }
    // Logs when RUST_LOG asks for them (e.g. RUST_LOG=meshlet_operator=debug).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let running = context::start(env.client(), settings).await?;
    running.wait_ready(Duration::from_secs(30)).await?;
    Ok(running)
}

/// Creates `obj` in `ns`.
pub async fn create<K>(client: &Client, ns: &str, obj: &K) -> Result<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    Api::<K>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), obj)
        .await
        .with_context(|| format!("creating {} {ns}/{:?}", K::kind(&()), obj.meta().name))
}

/// A token of `sa` for `audience`, bound to `pod` like a projected token.
pub async fn pod_token(
    client: &Client,
    ns: &str,
    sa: &str,
    pod: &Pod,
    audience: &str,
) -> Result<String> {
    token(client, ns, sa, Some(pod), audience).await
}

/// A token of `sa` for `audience`, bound to `pod` when given.
pub async fn token(
    client: &Client,
    ns: &str,
    sa: &str,
    pod: Option<&Pod>,
    audience: &str,
) -> Result<String> {
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec![audience.into()],
            expiration_seconds: Some(600),
            bound_object_ref: pod.map(|pod| BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: pod.metadata.name.clone(),
                uid: pod.metadata.uid.clone(),
            }),
        },
        ..Default::default()
    };
    let issued = Api::<ServiceAccount>::namespaced(client.clone(), ns)
        .create_token_request(sa, &PostParams::default(), &request)
        .await
        .context("requesting a token")?;
    Ok(issued.status.context("TokenRequest status")?.token)
}

/// Meshlet's token audience.
pub const AUDIENCE: &str = TOKEN_AUDIENCE;

/// A config stream subscriber: an HTTP/2 connection to the operator,
/// decoding each line into a [`ConfigMessage`].
pub struct Subscriber {
    pub messages: mpsc::UnboundedReceiver<ConfigMessage>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The trust anchors bundle `op` serves with (PEM).
pub fn anchors(op: &Running) -> String {
    op.context.ca.bundle().pem().to_string()
}

/// A TLS connection to `addr` that trusts `anchors_pem` and verifies the
/// contract's operator server name, offering `alpn`.
pub async fn connect_tls(
    addr: SocketAddr,
    anchors_pem: &str,
    alpn: &[&[u8]],
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(anchors_pem.as_bytes()) {
        roots.add(cert?)?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from(OPERATOR_SERVER_NAME)?;
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await?)
}

/// POSTs `body` to the certify endpoint over HTTP/1.1 + TLS with `token`;
/// (status, body).
pub async fn certify_raw(
    addr: SocketAddr,
    anchors_pem: &str,
    token: Option<&str>,
    body: String,
) -> Result<(StatusCode, String)> {
    let tls = connect_tls(addr, anchors_pem, &[b"http/1.1"]).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
    let conn = tokio::spawn(conn);
    let mut req = http::Request::post(format!("https://{OPERATOR_SERVER_NAME}{CERTIFY_PATH}"))
        .header(http::header::CONTENT_TYPE, "application/json");
    if let Some(token) = token {
        req = req.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let rsp = sender
        .send_request(req.body(http_body_util::Full::new(Bytes::from(body)))?)
        .await?;
    let status = rsp.status();
    let body = rsp.into_body().collect().await?.to_bytes();
    conn.abort();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// Subscribes to `op`'s config stream as pod `ns/pod`; `Err(status)` when refused.
pub async fn subscribe(
    op: &Running,
    ns: &str,
    pod: &str,
    token: Option<&str>,
) -> Result<Result<Subscriber, (StatusCode, String)>> {
    subscribe_to(op.config_addr, &anchors(op), ns, pod, token).await
}

/// Subscribes to the config stream at `addr` trusting `anchors_pem`.
pub async fn subscribe_to(
    addr: SocketAddr,
    anchors_pem: &str,
    ns: &str,
    pod: &str,
    token: Option<&str>,
) -> Result<Result<Subscriber, (StatusCode, String)>> {
    let stream = connect_tls(addr, anchors_pem, &[b"h2"]).await?;
    let (mut sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
        .await?;
    let conn = tokio::spawn(conn);
    let mut req = http::Request::get(format!(
        "https://{OPERATOR_SERVER_NAME}{CONFIG_STREAM_PATH}?namespace={ns}&pod={pod}"
    ));
    if let Some(token) = token {
        req = req.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let rsp = sender.send_request(req.body(Empty::new())?).await?;
    if !rsp.status().is_success() {
        let status = rsp.status();
        let body = rsp.into_body().collect().await?.to_bytes();
        conn.abort();
        return Ok(Err((status, String::from_utf8_lossy(&body).into_owned())));
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let _conn = conn;
        let mut body = rsp.into_body();
        let mut buf: Vec<u8> = Vec::new();
        while let Some(Ok(frame)) = body.frame().await {
            let Ok(data) = frame.into_data() else {
                continue;
            };
            buf.extend_from_slice(&data);
            while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=nl).collect();
                let msg: ConfigMessage =
                    serde_json::from_slice(&line[..nl]).expect("a valid ConfigMessage line");
                if tx.send(msg).is_err() {
                    return;
                }
            }
        }
    });
    Ok(Ok(Subscriber { messages: rx, task }))
}

impl Subscriber {
    /// The next message for which `pred` holds, skipping others.
    pub async fn until(
        &mut self,
        timeout: Duration,
        mut pred: impl FnMut(&ConfigMessage) -> bool,
    ) -> Result<ConfigMessage> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.messages.recv()).await {
                Ok(Some(msg)) if pred(&msg) => return Ok(msg),
                Ok(Some(_)) => continue,
                Ok(None) => bail!("the config stream ended"),
                Err(_) => bail!("no matching config within {timeout:?}"),
            }
        }
    }
}
