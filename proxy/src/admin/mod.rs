//! The admin server: `/live`, `/ready` (a config is loaded and shutdown has
//! not begun), `/metrics` (Prometheus text) and `/config` (current config
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

fn route(ctx: &Ctx, req: &http::Request<Incoming>) -> Response<Body> {
    const PLAIN: &str = "text/plain; charset=utf-8";
    match req.uri().path() {
        PROXY_LIVE_PATH => text(StatusCode::OK, "live\n", PLAIN),
        PROXY_READY_PATH if ctx.store.is_loaded() && !ctx.shutdown.is_cancelled() => {
            text(StatusCode::OK, "ready\n", PLAIN)
        }
        PROXY_READY_PATH => text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n", PLAIN),
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
