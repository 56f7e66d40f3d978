//! The admin server: `/healthz` (the process serves), `/readyz` (caches
//! synced and configs computed) and `/metrics` (Prometheus text format).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use hyper::StatusCode;
use tokio::net::TcpListener;

use crate::context::Context;
use crate::http::{self, text};

/// Serves the admin endpoints on `listener` until dropped.
pub async fn serve(listener: TcpListener, ctx: Arc<Context>) {
    http::serve(listener, move |req| {
        let ctx = ctx.clone();
        async move {
            match req.uri().path() {
                "/healthz" | "/livez" => text(StatusCode::OK, "ok\n"),
                "/readyz" if ctx.ready.load(Ordering::Acquire) => text(StatusCode::OK, "ok\n"),
                "/readyz" => text(StatusCode::SERVICE_UNAVAILABLE, "caches not synced yet\n"),
                "/metrics" => {
                    let mut rsp = text(StatusCode::OK, ctx.metrics.encode());
                    rsp.headers_mut().insert(
                        hyper::header::CONTENT_TYPE,
                        hyper::header::HeaderValue::from_static(
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        ),
                    );
                    rsp
                }
                _ => text(StatusCode::NOT_FOUND, "try /healthz, /readyz or /metrics\n"),
            }
        }
    })
    .await
}
