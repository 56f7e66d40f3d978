//! Outbound opaque TCP: the destination's service (split applied, without
//! HTTP matches) or, for unknown destinations, the original destination.

use crate::app::Ctx;
use crate::balance::Weighted;
use crate::metrics::TcpLabels;
use crate::transport::BoxedIo;
use meshlet_crds::contract::config::OutlierPolicy;
use meshlet_crds::contract::metrics as names;
use std::net::SocketAddr;

/// Forwards an opaque outbound connection meant for `dst`.
pub async fn forward(ctx: &Ctx, io: BoxedIo, dst: Option<SocketAddr>) {
    let snap = ctx.store.load();
    let table = &snap.outbound;
    match dst.and_then(|d| table.by_addr(d)) {
        Some(root) => {
            let backend = table.choose_backend(root, None);
            let svc = table.service(backend.service);
            let (tls, peer_id) = super::tls_labels(ctx.tls.is_enabled(), table, backend);
            let labels = TcpLabels {
                direction: names::DIRECTION_OUTBOUND,
                dst_namespace: svc.namespace.clone(),
                dst_service: svc.name.clone(),
                tls,
                peer_id,
            };
            crate::tcp::forward(ctx, io, table.endpoints(backend), &svc.outlier, labels).await;
        }
        None => {
            // Not a mesh service: pass through to where the app meant to go,
            // unless that is unknown (not redirected and no fallback).
            let Some(dst) = dst else {
                return tracing::debug!("outbound TCP connection with no destination");
            };
            let endpoints = [Weighted {
                endpoint: ctx
                    .passthrough
                    .get_bounded(dst, crate::app::MAX_PASSTHROUGH_ENDPOINTS),
                weight: 1,
            }];
            let labels = TcpLabels {
                direction: names::DIRECTION_OUTBOUND,
                dst_namespace: String::new(),
                dst_service: String::new(),
                tls: names::TLS_NO_IDENTITY,
                peer_id: crate::metrics::PeerId::None,
            };
            crate::tcp::forward(ctx, io, &endpoints, &OutlierPolicy::default(), labels).await;
        }
    }
}
