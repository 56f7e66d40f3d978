//! Serves HTTP/1 or HTTP/2 on a detected connection, handing each request
//! to a handler; on shutdown the connection finishes its requests in flight
//! and closes (GOAWAY on HTTP/2, `Connection: close` on HTTP/1).

use super::{Body, Version};
use crate::transport::BoxedIo;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Serves `io` until it closes, or until `shutdown` and its requests finish.
///
/// `io` is boxed: one copy of hyper's server code serves plain, detected
/// and TLS connections alike (smaller binary, fewer pages resident).
///
/// `header_read_timeout` guards HTTP/1 against clients that trickle their
/// headers (slowloris). It costs a timer per request, so the outbound side,
/// whose only clients are the pod's own app, goes without (as Envoy does by
/// default) and the inbound side, open to the network, keeps it.
pub async fn serve<F, Fut>(
    io: BoxedIo,
    version: Version,
    handler: F,
    shutdown: CancellationToken,
    header_read_timeout: Option<Duration>,
) where
    F: Fn(http::Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    // The handler's future is hyper's per-request future itself: wrapping
    // it in another async block would store it twice over (rustc keeps a
    // captured future and the one being awaited in separate slots) and
    // copy twice the bytes per request.
    Fut: Future<Output = Result<http::Response<Body>, Infallible>> + Send + 'static,
{
    let svc = service_fn(handler);
    let io = TokioIo::new(io);
    let result = match version {
        Version::Http1 => {
            let mut builder = hyper::server::conn::http1::Builder::new();
            match header_read_timeout {
                Some(t) => builder.timer(TokioTimer::new()).header_read_timeout(t),
                None => builder.header_read_timeout(None),
            };
            let conn = builder.serve_connection(io, svc).with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => r,
                _ = shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            }
        }
        Version::Http2 => {
            let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .serve_connection(io, svc);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => r,
                _ = shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "server connection closed with an error");
    }
}
