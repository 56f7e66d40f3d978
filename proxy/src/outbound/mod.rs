//! Outbound: connections the app makes, redirected to the proxy. Finds the
//! destination service, detects the protocol, and routes HTTP per request
//! or TCP per connection.

mod http;
pub mod table;
mod tcp;

use crate::app::Ctx;
use crate::detect::{detect, Protocol};
use crate::metrics::PeerId;
use crate::transport::{original_destination, BoxedIo};
use meshlet_crds::contract::metrics as names;
use meshlet_crds::contract::ports::DEFAULT_OPAQUE_PORTS;
use std::sync::Arc;
use tokio::net::TcpStream;

/// The `tls` and `server_id` labels of traffic to a backend port: mTLS
/// when this proxy has an identity and every endpoint is meshed.
fn tls_labels(
    tls_on: bool,
    table: &table::Table,
    backend: table::Target,
) -> (&'static str, PeerId) {
    match table.mtls_server_id(backend) {
        Some(id) if tls_on => (
            "true",
            id.map_or(PeerId::None, |id| PeerId::Server(id.clone())),
        ),
        _ => (names::TLS_NO_IDENTITY, PeerId::None),
    }
}

/// Handles one accepted outbound connection.
pub async fn serve_connection(ctx: Arc<Ctx>, stream: TcpStream) {
    let orig_dst = original_destination(&stream);
    let dst = orig_dst.or(ctx.settings.outbound_fallback);
    let opaque = {
        let snap = ctx.store.load();
        match dst.map(|d| (d, snap.outbound.by_addr(d))) {
            Some((_, Some(t))) => snap.outbound.is_opaque(t),
            // Not a mesh service: well-known server-first ports skip detection.
            Some((d, None)) => DEFAULT_OPAQUE_PORTS.contains(&d.port()),
            None => false,
        }
    };
    if opaque {
        return tcp::forward(&ctx, Box::new(stream), dst).await;
    }
    let (protocol, io) = match detect(stream, ctx.settings.detect_timeout).await {
        Ok((p, io)) => (p, Box::new(io) as BoxedIo),
        Err(e) => return tracing::debug!(error = %e, "detection failed"),
    };
    match protocol {
        Protocol::Opaque => tcp::forward(&ctx, io, dst).await,
        Protocol::Http1 => http::serve(ctx, io, crate::http::Version::Http1, orig_dst).await,
        Protocol::Http2 => http::serve(ctx, io, crate::http::Version::Http2, orig_dst).await,
    }
}
