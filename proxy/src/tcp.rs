//! Opaque TCP forwarding: pick an endpoint per connection (retrying another
//! one on connect failure), then copy both ways with small buffers.

use crate::app::Ctx;
use crate::balance::{pick, Weighted};
use crate::metrics::TcpLabels;
use crate::transport::{BoxedIo, MeteredIo};
use meshlet_crds::contract::config::OutlierPolicy;
use std::net::SocketAddr;

/// Copy buffer per direction; small on purpose (memory budget).
const COPY_BUF: usize = 8 * 1024;

/// Connect attempts per connection.
const MAX_CONNECT_ATTEMPTS: usize = 3;

/// Proxies `client` to one of `endpoints` until either side closes.
pub async fn forward(
    ctx: &Ctx,
    client: BoxedIo,
    endpoints: &[Weighted],
    outlier: &OutlierPolicy,
    labels: TcpLabels,
) {
    let mut tried: Vec<SocketAddr> = Vec::new();
    let mut upstream = loop {
        let Some(w) = pick(endpoints, &tried) else {
            tracing::debug!("no endpoint for TCP connection");
            return;
        };
        match ctx.connector.connect(w.endpoint.addr).await {
            Ok(io) => {
                w.endpoint.record_success();
                break io;
            }
            Err(e) => {
                tracing::debug!(endpoint = %w.endpoint.addr, error = %e, "TCP connect failed");
                w.endpoint.record_failure(outlier);
                tried.push(w.endpoint.addr);
                if tried.len() >= MAX_CONNECT_ATTEMPTS {
                    return;
                }
            }
        }
    };
    ctx.metrics.tcp_open(&labels);
    let (read, written) = ctx.metrics.tcp_byte_counters(&labels);
    let mut client = MeteredIo::new(client, read, written);
    if let Err(e) =
        tokio::io::copy_bidirectional_with_sizes(&mut client, &mut upstream, COPY_BUF, COPY_BUF)
            .await
    {
        tracing::debug!(error = %e, "TCP connection closed with an error");
    }
    ctx.metrics.tcp_close(&labels);
}
