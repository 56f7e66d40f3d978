//! The HTTPS server: TLS (rustls, certificate swappable at runtime), HTTP/2
//! or HTTP/1.1 (hyper-util auto), and the routes `/inject`, `/validate`,
//! `/convert` and `/healthz`. It records how long each admission took.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use meshlet_crds::contract::install;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::inject::InjectorSettings;
use crate::namespaces::Namespaces;
use crate::review;
use crate::trust_anchors::TrustAnchors;

/// Largest request body accepted (the API server sends at most ~3 MiB objects).
const MAX_BODY: usize = 8 << 20;

/// How many recent durations are kept per route.
const KEPT_SAMPLES: usize = 4096;

/// Recent handling times of one route (headers received to response ready).
#[derive(Debug, Default)]
pub struct Latencies {
    samples: Mutex<VecDeque<Duration>>,
}

impl Latencies {
    fn record(&self, d: Duration) {
        let mut s = self.samples.lock().expect("lock not poisoned");
        if s.len() == KEPT_SAMPLES {
            s.pop_front();
        }
        s.push_back(d);
    }

    /// The recent samples, oldest first.
    pub fn samples(&self) -> Vec<Duration> {
        self.samples
            .lock()
            .expect("lock not poisoned")
            .iter()
            .copied()
            .collect()
    }

    /// Forgets the samples.
    pub fn clear(&self) {
        self.samples.lock().expect("lock not poisoned").clear();
    }
}

/// The `q` quantile (0–1) of `samples` (nearest rank), zero when empty.
pub fn quantile(samples: &[Duration], q: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// What the routes need.
pub struct App {
    /// Injection settings.
    pub settings: InjectorSettings,
    /// Namespace labels and annotations.
    pub namespaces: Namespaces,
    /// Trust anchors given to injected proxies.
    pub trust_anchors: TrustAnchors,
    /// `/inject` handling times.
    pub inject_latency: Latencies,
    /// `/validate` handling times.
    pub validate_latency: Latencies,
}

impl App {
    /// An app with empty latency records.
    pub fn new(settings: InjectorSettings, namespaces: Namespaces) -> Arc<App> {
        Self::with_trust_anchors(settings, namespaces, TrustAnchors::Fixed(None))
    }

    /// An app injecting the anchors from `trust_anchors`.
    pub fn with_trust_anchors(
        settings: InjectorSettings,
        namespaces: Namespaces,
        trust_anchors: TrustAnchors,
    ) -> Arc<App> {
        Arc::new(App {
            settings,
            namespaces,
            trust_anchors,
            inject_latency: Latencies::default(),
            validate_latency: Latencies::default(),
        })
    }
}

fn reply(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, content_type)
        .body(Full::new(Bytes::from(body)))
        .expect("static response parts are valid")
}

async fn route(app: Arc<App>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    if path == "/healthz" {
        return Ok(reply(StatusCode::OK, "text/plain", b"ok".to_vec()));
    }
    if req.method() != Method::POST {
        return Ok(reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            b"POST an AdmissionReview or ConversionReview".to_vec(),
        ));
    }
    let started = Instant::now();
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return Ok(reply(
                StatusCode::BAD_REQUEST,
                "text/plain",
                format!("reading the body: {e}").into_bytes(),
            ))
        }
    };
    let out = match path.as_str() {
        install::INJECT_PATH => {
            let anchors = app.trust_anchors.current();
            let out = review::inject(&body, &app.settings, anchors, &app.namespaces).await;
            app.inject_latency.record(started.elapsed());
            out
        }
        install::VALIDATE_PATH => {
            let out = review::validate(&body);
            app.validate_latency.record(started.elapsed());
            out
        }
        install::CONVERT_PATH => review::convert(&body),
        _ => {
            return Ok(reply(
                StatusCode::NOT_FOUND,
                "text/plain",
                format!(
                    "no route {path}; try {} {} {}",
                    install::INJECT_PATH,
                    install::VALIDATE_PATH,
                    install::CONVERT_PATH
                )
                .into_bytes(),
            ))
        }
    };
    Ok(reply(StatusCode::OK, "application/json", out))
}

/// Serves HTTPS on `listener` until the task is dropped or aborted.
pub async fn serve(listener: TcpListener, tls: Arc<rustls::ServerConfig>, app: Arc<App>) {
    let acceptor = TlsAcceptor::from(tls);
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, "accept");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(tls) => tls,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake");
                    return;
                }
            };
            let service = service_fn(move |req| route(app.clone(), req));
            if let Err(e) = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), service)
                .await
            {
                tracing::debug!(%peer, error = %e, "connection");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles() {
        let s: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(quantile(&s, 0.99), Duration::from_millis(99));
        assert_eq!(quantile(&s, 0.5), Duration::from_millis(50));
        assert_eq!(quantile(&s, 1.0), Duration::from_millis(100));
        assert_eq!(quantile(&[], 0.99), Duration::ZERO);
    }
}
