//! Outbound HTTP: per request, destination lookup (original destination,
//! then Host/authority, then the fallback) → split → route policy →
//! balanced, retried, timed forward → metrics.

use crate::app::Ctx;
use crate::balance::Weighted;
use crate::http::errors::ProxyError;
use crate::http::forward::Forward;
use crate::http::{server, Body, Version};
use crate::metrics::RequestLabels;
use crate::split::RequestView;
use crate::transport::BoxedIo;
use http::{Request, Response};
use hyper::body::Incoming;
use meshlet_crds::contract::config::OutlierPolicy;
use meshlet_crds::contract::metrics as names;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// Serves HTTP on an outbound connection.
pub async fn serve(ctx: Arc<Ctx>, io: BoxedIo, version: Version, orig_dst: Option<SocketAddr>) {
    let shutdown = ctx.shutdown.clone();
    let handler = move |req| handle(ctx.clone(), req, version, orig_dst);
    // The app is the only client here: no header read timeout.
    server::serve(io, version, handler, shutdown, None).await;
}

fn authority(req: &Request<Incoming>) -> Option<&str> {
    req.uri().authority().map(|a| a.as_str()).or_else(|| {
        req.headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
    })
}

// Not an `async fn`: one of those keeps its arguments twice (as passed, and
// moved into locals on the first poll), so its future is larger and every
// request copies the request once more. An `async move` block uses them in
// place.
#[allow(clippy::manual_async_fn)] // see above
fn handle(
    ctx: Arc<Ctx>,
    req: Request<Incoming>,
    version: Version,
    orig_dst: Option<SocketAddr>,
) -> impl std::future::Future<Output = Result<Response<Body>, Infallible>> {
    async move {
        let start = Instant::now();
        let snap = ctx.store.load();
        let table = &snap.outbound;
        let target = orig_dst
            .and_then(|d| table.by_addr(d))
            .or_else(|| authority(&req).and_then(|a| table.by_authority(a)))
            .or_else(|| {
                ctx.settings
                    .outbound_fallback
                    .and_then(|d| table.by_addr(d))
            });

        let Some(root) = target else {
            // Rare, and a large future: boxed, so every request's is smaller.
            return Ok(Box::pin(passthrough(&ctx, req, version, orig_dst)).await);
        };
        let view = RequestView {
            method: req.method(),
            path: req.uri().path(),
            headers: req.headers(),
        };
        let backend = table.choose_backend(root, Some(&view));
        let route = table.route(root.service, &view);
        let svc = table.service(backend.service);
        let tls_on = ctx.tls.is_enabled();
        let series = table.request_metrics.get(
            &ctx.metrics,
            (root.service, route.index, backend, tls_on),
            || {
                let (tls, peer_id) = super::tls_labels(tls_on, table, backend);
                RequestLabels {
                    direction: names::DIRECTION_OUTBOUND,
                    dst_namespace: svc.namespace.clone(),
                    dst_service: svc.name.clone(),
                    route: route.name.to_string(),
                    tls,
                    peer_id,
                }
            },
        );
        series.request();
        let forward = Forward {
            endpoints: table.endpoints(backend),
            connector: ctx.connector.as_ref(),
            version,
            retry: route.retry,
            outlier: &svc.outlier,
            destination: &svc.name,
        };
        let result = match route.timeout {
            Some(t) => tokio::time::timeout(t, forward.send(req))
                .await
                .unwrap_or(Err(ProxyError::Timeout(t.as_millis() as u64))),
            None => forward.send(req).await,
        };
        let rsp = result.unwrap_or_else(|e| {
            tracing::debug!(error = %e, service = %svc.name, "outbound request failed");
            e.into_response()
        });
        series.response(&ctx.metrics, rsp.status().as_u16(), start.elapsed());
        Ok(rsp)
    }
}

/// A destination that is not a mesh service: forward to the original
/// destination as is.
async fn passthrough(
    ctx: &Ctx,
    req: Request<Incoming>,
    version: Version,
    orig_dst: Option<SocketAddr>,
) -> Response<Body> {
    let Some(dst) = orig_dst else {
        let what = authority(&req)
            .unwrap_or("request without authority")
            .to_string();
        return ProxyError::NoRoute(what).into_response();
    };
    let endpoints = [Weighted {
        endpoint: ctx
            .passthrough
            .get_bounded(dst, crate::app::MAX_PASSTHROUGH_ENDPOINTS),
        weight: 1,
    }];
    let outlier = OutlierPolicy::default();
    let dst_name = dst.to_string();
    let forward = Forward {
        endpoints: &endpoints,
        connector: ctx.connector.as_ref(),
        version,
        retry: None,
        outlier: &outlier,
        destination: &dst_name,
    };
    // Outside the mesh: counted with empty destination labels.
    let start = Instant::now();
    let series = ctx.passthrough_metrics.get_or_init(|| {
        ctx.metrics.request_metrics(RequestLabels {
            direction: names::DIRECTION_OUTBOUND,
            dst_namespace: String::new(),
            dst_service: String::new(),
            route: String::new(),
            tls: names::TLS_NO_IDENTITY,
            peer_id: crate::metrics::PeerId::None,
        })
    });
    series.request();
    let rsp = forward
        .send(req)
        .await
        .unwrap_or_else(|e| e.into_response());
    series.response(&ctx.metrics, rsp.status().as_u16(), start.elapsed());
    rsp
}
