//! The admin server: `/live`, `/ready` (a config is loaded, shutdown has
//! not begun, and with identity enabled a valid certificate is present), `/metrics` (Prometheus text) and `/config` (current config
//! as JSON).

use crate::app::Ctx;
use crate::http::{full, Body};
use http::{Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use meshlet_crds::contract::ports::{PROXY_LIVE_PATH, PROXY_READY_PATH};
use std::convert::Infallible;
use std::sync::Arc;
use tokio::net::TcpStream;

/// Serves one admin connection (HTTP/1).
pub async fn serve_connection(ctx: Arc<Ctx>, stream: TcpStream) {
    let svc = service_fn(move |req| {
        let rsp = route(&ctx, &req);
        async move { Ok::<_, Infallible>(rsp) }
    });
    if let Err(e) = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), svc)
        .await
    {
        tracing::debug!(error = %e, "admin connection error");
    }
}

fn text(
    status: StatusCode,
    body: impl Into<bytes::Bytes>,
    content_type: &'static str,
) -> Response<Body> {
    let mut rsp = Response::new(full(body));
    *rsp.status_mut() = status;
    rsp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    rsp
}

fn not_ready_reason(ctx: &Ctx) -> Option<&'static str> {
    if ctx.shutdown.is_cancelled() {
        Some("shutting down")
    } else if !ctx.store.is_loaded() {
        Some("no config yet")
    } else if ctx.tls.is_enabled() && !ctx.tls.has_valid_cert() {
        Some("no valid identity certificate")
    } else {
        None
    }
}

fn route(ctx: &Ctx, req: &http::Request<Incoming>) -> Response<Body> {
    const PLAIN: &str = "text/plain; charset=utf-8";
    match req.uri().path() {
        PROXY_LIVE_PATH => text(StatusCode::OK, "live\n", PLAIN),
        PROXY_READY_PATH => match not_ready_reason(ctx) {
            None => text(StatusCode::OK, "ready\n", PLAIN),
            Some(why) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {why}\n"),
                PLAIN,
            ),
        },
        "/metrics" => text(
            StatusCode::OK,
            ctx.metrics.encode(),
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ),
        "/config" => {
            let snap = ctx.store.load();
            let body = serde_json::json!({
                "generation": snap.generation,
                "config": snap.config,
            });
            text(StatusCode::OK, body.to_string(), "application/json")
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n", PLAIN),
    }
}
