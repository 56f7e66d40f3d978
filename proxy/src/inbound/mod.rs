//! Inbound: connections to the pod, redirected to the proxy, forwarded to
//! the app on `127.0.0.1:<original port>`.

mod peer;
mod policy;

pub use peer::Peer;
pub use policy::InboundPolicy;

use crate::app::Ctx;
use crate::balance::Weighted;
use crate::detect::{detect, Protocol};
use crate::http::errors::ProxyError;
use crate::http::forward::Forward;
use crate::http::{server, Body, Version};
use crate::metrics::{RequestLabels, TcpLabels};
use crate::transport::{original_destination, Io};
use http::{Request, Response};
use hyper::body::Incoming;
use meshlet_crds::contract::config::OutlierPolicy;
use meshlet_crds::contract::metrics as names;
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
    // Until mesh TLS is terminated here, every client is plaintext.
    let peer = Peer::Plaintext;
    if ctx.store.load().inbound.is_opaque(port) {
        return forward_tcp(&ctx, stream, app, &peer).await;
    }
    let (protocol, io) = match detect(stream, ctx.settings.detect_timeout).await {
        Ok(d) => d,
        Err(e) => return tracing::debug!(error = %e, "detection failed"),
    };
    let version = match protocol {
        Protocol::Opaque => return forward_tcp(&ctx, io, app, &peer).await,
        Protocol::Http1 => Version::Http1,
        Protocol::Http2 => Version::Http2,
    };
    let shutdown = ctx.shutdown.clone();
    let handler = move |req| handle(ctx.clone(), req, version, app, peer.clone());
    server::serve(io, version, handler, shutdown).await;
}

fn labels(peer: &Peer) -> RequestLabels {
    RequestLabels {
        direction: names::DIRECTION_INBOUND,
        dst_namespace: String::new(),
        dst_service: String::new(),
        route: String::new(),
        tls: peer.tls_label(),
    }
}

async fn forward_tcp<I: Io>(ctx: &Ctx, io: I, app: SocketAddr, peer: &Peer) {
    let endpoints = [Weighted {
        endpoint: ctx.local.get(app),
        weight: 1,
    }];
    let labels = TcpLabels {
        direction: names::DIRECTION_INBOUND,
        dst_namespace: String::new(),
        dst_service: String::new(),
        tls: peer.tls_label(),
    };
    crate::tcp::forward(ctx, io, &endpoints, &OutlierPolicy::default(), labels).await;
}

async fn handle(
    ctx: Arc<Ctx>,
    req: Request<Incoming>,
    version: Version,
    app: SocketAddr,
    peer: Peer,
) -> Response<Body> {
    let start = Instant::now();
    let labels = labels(&peer);
    ctx.metrics.request(&labels);
    let endpoints = [Weighted {
        endpoint: ctx.local.get(app),
        weight: 1,
    }];
    let outlier = OutlierPolicy::default();
    let dst = app.to_string();
    let forward = Forward {
        endpoints: &endpoints,
        connector: ctx.connector.as_ref(),
        version,
        retry: None,
        outlier: &outlier,
        destination: &dst,
    };
    let rsp = forward.send(req).await.unwrap_or_else(|e: ProxyError| {
        tracing::debug!(error = %e, "inbound request failed");
        e.into_response()
    });
    ctx.metrics
        .response(labels, rsp.status().as_u16(), start.elapsed());
    rsp
}
