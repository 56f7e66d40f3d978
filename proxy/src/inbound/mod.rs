//! Inbound: connections to the pod, redirected to the proxy, forwarded to
//! the app on `127.0.0.1:<original port>`.

pub mod authz;
mod peer;
mod policy;

pub use peer::Peer;
pub use policy::{CompiledTarget, InboundPolicy};

use crate::app::Ctx;
use crate::balance::Weighted;
use crate::detect::{detect, Protocol};
use crate::http::errors::ProxyError;
use crate::http::forward::Forward;
use crate::http::{server, Body, Version};
use crate::metrics::{DenyLabels, PeerId, RequestLabels, RequestMetrics, TcpLabels};
use crate::split::RequestView;
use crate::transport::{accept_mesh_tls, original_destination, Accepted, BoxedIo, Io};
use authz::{Decision, Traffic};
use http::{Request, Response};
use hyper::body::Incoming;
use meshlet_crds::contract::config::OutlierPolicy;
use meshlet_crds::contract::identity::{ALPN_H2, ALPN_HTTP1};
use meshlet_crds::contract::metrics as names;
use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpStream;

/// Handles one accepted inbound connection.
pub async fn serve_connection(ctx: Arc<Ctx>, stream: TcpStream) {
    let port = original_destination(&stream)
        .map(|d| d.port())
        .or(ctx.settings.inbound_fallback_port);
    let Some(port) = port else {
        return tracing::debug!("inbound connection without original destination");
    };
    let app = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    // Without an identity of its own the proxy has no mesh TLS to terminate.
    let Some(own_name) = ctx.tls.local().map(|l| l.server_name.clone()) else {
        return serve_boxed(ctx, Box::new(stream), app, Peer::Plaintext).await;
    };
    let opaque = ctx.store.load().inbound.is_opaque(port);
    // Opaque ports may carry server-first protocols from unmeshed clients:
    // wait less for a ClientHello there (a client proxy sends it at once).
    let wait = if opaque {
        ctx.settings.detect_timeout.min(OPAQUE_TLS_WAIT)
    } else {
        ctx.settings.detect_timeout
    };
    let server = ctx.tls.load().mesh.as_ref().map(|m| m.server.clone());
    let (io, peer, alpn) = match accept_mesh_tls(stream, &own_name, server, wait).await {
        Err(e) => return tracing::debug!(error = %e, "inbound mesh TLS refused; connection closed"),
        Ok(Accepted::Passthrough { io, silent }) => {
            if silent {
                // Nothing was sent: detection would only wait again.
                return forward_tcp(&ctx, Box::new(io), app, &Peer::Plaintext).await;
            }
            return serve_boxed(ctx, Box::new(io), app, Peer::Plaintext).await;
        }
        Ok(Accepted::Mtls { io, client, alpn }) => (io as BoxedIo, Peer::Mtls(client), alpn),
    };
    // The client proxy said what it carries (ALPN): no second detection.
    let version = match alpn.as_deref() {
        _ if opaque => return forward_tcp(&ctx, io, app, &peer).await,
        Some(ALPN_H2) => Version::Http2,
        Some(ALPN_HTTP1) => Version::Http1,
        Some(_) => return forward_tcp(&ctx, io, app, &peer).await,
        None => return serve_boxed(ctx, io, app, peer).await,
    };
    serve_http(ctx, io, version, app, peer).await;
}

/// Serves HTTP from `peer` on an inbound connection.
async fn serve_http(ctx: Arc<Ctx>, io: BoxedIo, version: Version, app: SocketAddr, peer: Peer) {
    let shutdown = ctx.shutdown.clone();
    let header_timeout = Some(ctx.settings.header_read_timeout);
    let conn = Arc::new(InboundConn {
        metrics: ctx.metrics.request_metrics(labels(&peer)),
        peer,
        app,
        app_name: app.to_string(),
    });
    let handler = move |req| handle(ctx.clone(), req, version, conn.clone());
    server::serve(io, version, handler, shutdown, header_timeout).await;
}

/// What every request of one inbound connection shares.
struct InboundConn {
    peer: Peer,
    app: SocketAddr,
    /// `app` as text, for error messages.
    app_name: String,
    /// The connection's request series (its labels are the same for every
    /// request).
    metrics: RequestMetrics,
}

/// Longest wait for a ClientHello on an opaque port.
const OPAQUE_TLS_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Serves an accepted inbound connection whose client is already known
/// (after mesh TLS termination, or in tests): protocol detection, then
/// HTTP or TCP handling with access control for `peer`.
pub async fn serve_with_peer<I: Io>(ctx: Arc<Ctx>, io: I, app: SocketAddr, peer: Peer) {
    serve_boxed(ctx, Box::new(io), app, peer).await
}

/// [`serve_with_peer`] on a boxed stream: one copy of the code for every
/// kind of stream.
async fn serve_boxed(ctx: Arc<Ctx>, io: BoxedIo, app: SocketAddr, peer: Peer) {
    if ctx.store.load().inbound.is_opaque(app.port()) {
        return forward_tcp(&ctx, io, app, &peer).await;
    }
    let (protocol, io) = match detect(io, ctx.settings.detect_timeout).await {
        Ok((p, io)) => (p, Box::new(io) as BoxedIo),
        Err(e) => return tracing::debug!(error = %e, "detection failed"),
    };
    let version = match protocol {
        Protocol::Opaque => return forward_tcp(&ctx, io, app, &peer).await,
        Protocol::Http1 => Version::Http1,
        Protocol::Http2 => Version::Http2,
    };
    serve_http(ctx, io, version, app, peer).await;
}

/// The `client_id` label of `peer`.
fn peer_id(peer: &Peer) -> PeerId {
    match peer.identity() {
        Some(id) => PeerId::Client(id.to_string().into()),
        None => PeerId::None,
    }
}

/// The request labels of a connection from `peer`, made once per
/// connection (formatting the client's identity per request would cost an
/// allocation each time).
fn labels(peer: &Peer) -> RequestLabels {
    RequestLabels::inbound(peer.tls_label(), peer_id(peer))
}

async fn forward_tcp(ctx: &Ctx, io: BoxedIo, app: SocketAddr, peer: &Peer) {
    // The policy live now decides; the connection is then allowed for its life.
    if let Decision::Deny(denial) =
        authz::decide(&ctx.store.load().inbound, peer, app.port(), Traffic::Tcp)
    {
        ctx.metrics.tcp_deny(&DenyLabels {
            reason: denial.reason.as_str(),
            tls: peer.tls_label(),
            peer_id: peer_id(peer),
        });
        tracing::debug!(
            reason = denial.reason.as_str(),
            "inbound connection denied: {}",
            denial.message
        );
        // Dropping `io` closes the connection; the app is never contacted.
        return;
    }
    let endpoints = [Weighted {
        endpoint: ctx.local.get(app),
        weight: 1,
    }];
    let labels = TcpLabels {
        direction: names::DIRECTION_INBOUND,
        dst_namespace: String::new(),
        dst_service: String::new(),
        tls: peer.tls_label(),
        peer_id: peer_id(peer),
    };
    crate::tcp::forward(ctx, io, &endpoints, &OutlierPolicy::default(), labels).await;
}

// Not an `async fn`, which would keep its arguments twice (see
// `outbound::http::handle`).
#[allow(clippy::manual_async_fn)] // see above
fn handle(
    ctx: Arc<Ctx>,
    req: Request<Incoming>,
    version: Version,
    conn: Arc<InboundConn>,
) -> impl std::future::Future<Output = Result<Response<Body>, Infallible>> {
    async move {
        let (peer, app) = (&conn.peer, conn.app);
        let start = Instant::now();
        conn.metrics.request();
        let view = RequestView {
            method: req.method(),
            path: req.uri().path(),
            headers: req.headers(),
        };
        if let Decision::Deny(denial) = authz::decide(
            &ctx.store.load().inbound,
            peer,
            app.port(),
            Traffic::Http(&view),
        ) {
            let labels = conn.metrics.labels();
            ctx.metrics.http_deny(&DenyLabels {
                reason: denial.reason.as_str(),
                tls: labels.tls,
                peer_id: labels.peer_id.clone(),
            });
            tracing::debug!(
                reason = denial.reason.as_str(),
                "inbound request denied: {}",
                denial.message
            );
            let rsp = denial.http_response();
            conn.metrics
                .response(&ctx.metrics, rsp.status().as_u16(), start.elapsed());
            return Ok(rsp);
        }
        let endpoints = [Weighted {
            endpoint: ctx.local.get(app),
            weight: 1,
        }];
        let outlier = OutlierPolicy::default();
        let forward = Forward {
            endpoints: &endpoints,
            connector: ctx.connector.as_ref(),
            version,
            retry: None,
            outlier: &outlier,
            destination: &conn.app_name,
        };
        let rsp = forward.send(req).await.unwrap_or_else(|e: ProxyError| {
            tracing::debug!(error = %e, "inbound request failed");
            e.into_response()
        });
        conn.metrics
            .response(&ctx.metrics, rsp.status().as_u16(), start.elapsed());
        Ok(rsp)
    }
}
