//! The certify flow against a tiny in-test certify server speaking real
//! HTTPS (certificate for the operator's server name from the test CA):
//! key + CSR, Bearer token re-read per request, renewal at
//! `renewAfterUnix`, readiness, anchors from the answer, and refusals
//! whose message the proxy reports.

mod common;

use bytes::Bytes;
use common::pki::{self, Ca};
use common::*;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use meshlet_crds::contract::identity::{
    CertifyRequest, CertifyResponse, IdentityErrorBody, SpiffeId, CERTIFY_PATH,
    OPERATOR_SERVER_NAME,
};
use meshlet_proxy::identity::certify::{certify_once, CertifyError, CertifySettings};
use meshlet_proxy::identity::renew::{self, RetryDelays};
use meshlet_proxy::identity::{LocalIdentity, TlsStore};
use meshlet_proxy::{ConfigStore, Proxy, Settings};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What the certify server does with the next request.
#[derive(Clone)]
enum Mode {
    /// Sign for `lifetime`, renew after `renew_after`, sending `anchors`.
    Sign {
        lifetime: Duration,
        renew_after: Duration,
        anchors: String,
    },
    /// Refuse with this status and message.
    Refuse(u16, String),
}

struct CertifyServer {
    addr: String,
    mode: Arc<Mutex<Mode>>,
    /// Bearer tokens of the requests received.
    tokens: Arc<Mutex<Vec<String>>>,
}

fn json(status: u16, body: &impl serde::Serialize) -> http::Response<Full<Bytes>> {
    http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(serde_json::to_vec(body).unwrap())))
        .unwrap()
}

async fn certify_server(ca: Arc<Ca>, expect: SpiffeId, mode: Mode) -> CertifyServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let acceptor = tokio_rustls::TlsAcceptor::from(pki::server_config(
        &ca.server(OPERATOR_SERVER_NAME),
        &[b"h2", b"http/1.1"],
    ));
    let mode = Arc::new(Mutex::new(mode));
    let tokens: Arc<Mutex<Vec<String>>> = Arc::default();
    let (m, t) = (mode.clone(), tokens.clone());
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let Ok(s) = acceptor.accept(s).await else {
                continue;
            };
            let (ca, expect, m, t) = (ca.clone(), expect.clone(), m.clone(), t.clone());
            tokio::spawn(async move {
                let svc =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let (ca, expect, m, t) = (ca.clone(), expect.clone(), m.clone(), t.clone());
                        async move {
                            let token = req
                                .headers()
                                .get(http::header::AUTHORIZATION)
                                .and_then(|v| v.to_str().ok())
                                .and_then(|v| v.strip_prefix("Bearer "))
                                .unwrap_or("")
                                .to_string();
                            t.lock().unwrap().push(token);
                            if req.method() != http::Method::POST
                                || req.uri().path() != CERTIFY_PATH
                            {
                                return Ok::<_, Infallible>(json(
                                    404,
                                    &IdentityErrorBody {
                                        error: "not found".into(),
                                    },
                                ));
                            }
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            let mode = m.lock().unwrap().clone();
                            let (lifetime, renew_after, anchors) = match mode {
                                Mode::Refuse(status, error) => {
                                    return Ok(json(status, &IdentityErrorBody { error }))
                                }
                                Mode::Sign {
                                    lifetime,
                                    renew_after,
                                    anchors,
                                } => (lifetime, renew_after, anchors),
                            };
                            let csr: CertifyRequest = match serde_json::from_slice(&body) {
                                Ok(c) => c,
                                Err(e) => {
                                    return Ok(json(
                                        400,
                                        &IdentityErrorBody {
                                            error: e.to_string(),
                                        },
                                    ))
                                }
                            };
                            // Exactly the identity asked for, as the operator checks.
                            let want = vec![
                                format!("URI:{expect}"),
                                format!("DNS:{}", expect.tls_server_name()),
                            ];
                            match pki::csr_sans(&csr.csr_pem) {
                                Ok(sans) if sans == want => {}
                                other => {
                                    return Ok(json(
                                        400,
                                        &IdentityErrorBody {
                                            error: format!("CSR SANs {other:?}"),
                                        },
                                    ))
                                }
                            }
                            let chain = ca.sign_csr(&csr.csr_pem, lifetime).unwrap();
                            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
                            Ok(json(
                                200,
                                &CertifyResponse {
                                    certificate_chain_pem: chain,
                                    trust_anchors_pem: anchors,
                                    expires_unix: (now + lifetime).as_secs(),
                                    renew_after_unix: (now + renew_after).as_secs(),
                                },
                            ))
                        }
                    });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    CertifyServer { addr, mode, tokens }
}

fn token_file(name: &str, token: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("meshlet-certify-{name}-{}", std::process::id()));
    std::fs::write(&path, token).unwrap();
    path
}

fn web() -> SpiffeId {
    pki::spiffe("shop", "web")
}

fn leaf(tls: &TlsStore) -> Option<Vec<u8>> {
    tls.load().mesh.as_ref().map(|m| m.cert.chain[0].to_vec())
}

#[tokio::test]
async fn certify_renew_and_readiness() {
    let ca = Arc::new(Ca::new("mesh-ca"));
    let extra = Ca::new("next-anchor");
    let bundle = format!("{}{}", ca.pem, extra.pem);
    let server = certify_server(
        ca.clone(),
        web(),
        Mode::Sign {
            lifetime: Duration::from_secs(3600),
            renew_after: Duration::from_secs(1),
            anchors: bundle.clone(),
        },
    )
    .await;
    let token = token_file("renew", "token-1\n");
    let tls = Arc::new(TlsStore::new(Some(LocalIdentity::new(web())), "anchors", &ca.pem).unwrap());
    let store = Arc::new(ConfigStore::default());
    store.apply(1, config(vec![])).unwrap();
    let proxy = Proxy::start_with_identity(Settings::loopback(), store, tls.clone())
        .await
        .unwrap();
    let (code, body) = admin_get(proxy.admin_addr, "/ready").await;
    assert_eq!(
        (code, body.as_str()),
        (503, "not ready: no valid identity certificate\n")
    );

    let settings = CertifySettings {
        operator: server.addr.clone(),
        server_name: OPERATOR_SERVER_NAME.into(),
        token_file: token.clone(),
    };
    let delays = RetryDelays {
        min: Duration::from_millis(50),
        max: Duration::from_millis(200),
    };
    tokio::spawn(renew::run(
        settings,
        tls.clone(),
        delays,
        proxy.ctx().shutdown.clone(),
    ));
    let mut changes = tls.subscribe();
    tokio::time::timeout(
        Duration::from_secs(10),
        changes.wait_for(|_| tls.has_valid_cert()),
    )
    .await
    .expect("no certificate")
    .unwrap();
    assert_eq!(admin_get(proxy.admin_addr, "/ready").await.0, 200);
    let first = leaf(&tls).unwrap();
    assert_eq!(
        meshlet_proxy::identity::leaf_identity(&first).unwrap(),
        web()
    );
    // The anchors from the answer are trusted from now on.
    assert_eq!(tls.load().anchors_pem, bundle);

    // The kubelet rotates the token; the renewal (due after ~1 s) uses the new one.
    std::fs::write(&token, "token-2").unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        while leaf(&tls).unwrap() == first {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the certificate was not renewed");
    let tokens = server.tokens.lock().unwrap().clone();
    assert_eq!(
        tokens.first().map(String::as_str),
        Some("token-1"),
        "{tokens:?}"
    );
    assert!(tokens.iter().skip(1).all(|t| t == "token-2"), "{tokens:?}");
    assert_eq!(admin_get(proxy.admin_addr, "/ready").await.0, 200);
    let _ = std::fs::remove_file(token);
}

#[tokio::test]
async fn a_refusal_is_reported_retried_and_recovered_from() {
    let ca = Arc::new(Ca::new("mesh-ca"));
    let reason =
        "CSR asks for spiffe://cluster.local/ns/shop/sa/web but the token is for shop/other";
    let server = certify_server(ca.clone(), web(), Mode::Refuse(403, reason.into())).await;
    let token = token_file("refuse", "tok");
    let tls = Arc::new(TlsStore::new(Some(LocalIdentity::new(web())), "anchors", &ca.pem).unwrap());
    let settings = CertifySettings {
        operator: server.addr.clone(),
        server_name: OPERATOR_SERVER_NAME.into(),
        token_file: token.clone(),
    };
    match certify_once(&settings, &tls).await {
        Err(CertifyError::Refused { status, message }) => {
            assert_eq!(status, 403);
            assert_eq!(message, reason);
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let shutdown = tokio_util::sync::CancellationToken::new();
    let delays = RetryDelays {
        min: Duration::from_millis(50),
        max: Duration::from_millis(100),
    };
    tokio::spawn(renew::run(
        settings.clone(),
        tls.clone(),
        delays,
        shutdown.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!tls.has_valid_cert());
    assert!(server.tokens.lock().unwrap().len() >= 3, "not retried");

    // The operator starts accepting (say, the TrafficTarget's SA was fixed).
    *server.mode.lock().unwrap() = Mode::Sign {
        lifetime: Duration::from_secs(3600),
        renew_after: Duration::from_secs(2400),
        anchors: String::new(),
    };
    let mut changes = tls.subscribe();
    tokio::time::timeout(
        Duration::from_secs(5),
        changes.wait_for(|_| tls.has_valid_cert()),
    )
    .await
    .expect("no certificate after the operator accepted")
    .unwrap();
    // No anchors in the answer: the configured ones stay.
    assert_eq!(tls.load().anchors_pem, ca.pem);
    shutdown.cancel();
    let _ = std::fs::remove_file(token);
}

#[tokio::test]
async fn an_operator_with_the_wrong_name_is_not_sent_the_token() {
    let ca = Arc::new(Ca::new("mesh-ca"));
    let server = certify_server(ca.clone(), web(), Mode::Refuse(500, "unused".into())).await;
    let token = token_file("name", "secret");
    let tls = TlsStore::new(Some(LocalIdentity::new(web())), "anchors", &ca.pem).unwrap();
    let settings = CertifySettings {
        operator: server.addr.clone(),
        server_name: "impostor.meshlet-system.svc".into(),
        token_file: token.clone(),
    };
    let err = certify_once(&settings, &tls).await.unwrap_err();
    assert!(matches!(err, CertifyError::Failed(_)), "{err}");
    assert!(err.to_string().contains("impostor"), "{err}");
    assert!(server.tokens.lock().unwrap().is_empty());
    let _ = std::fs::remove_file(token);
}
