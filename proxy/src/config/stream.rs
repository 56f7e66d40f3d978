//! The config stream client: `GET /v1/proxy-config` over HTTP/2 to the
//! operator, one JSON `ConfigMessage` per line, each applied atomically. When
//! the stream is lost the proxy keeps its last config and reconnects with
//! exponential backoff.

use super::{decode_message, Backoff, ConfigStore};
use bytes::{Buf, BytesMut};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Longest accepted message line.
const MAX_LINE: usize = 16 << 20;

/// Where and as whom to subscribe.
#[derive(Debug, Clone)]
pub struct StreamSettings {
    /// The operator's address, `host:port`.
    pub operator: String,
    /// The request path and query, identifying this proxy's workload.
    pub path_and_query: String,
    /// File holding the projected ServiceAccount token sent as
    /// `Authorization: Bearer`; re-read on every connect (tokens rotate).
    pub token_file: Option<std::path::PathBuf>,
    /// First reconnect delay.
    pub backoff_min: Duration,
    /// Longest reconnect delay.
    pub backoff_max: Duration,
}

/// Keeps the subscription alive until `shutdown`.
pub async fn run(settings: StreamSettings, store: Arc<ConfigStore>, shutdown: CancellationToken) {
    let mut backoff = Backoff::new(settings.backoff_min, settings.backoff_max);
    loop {
        let result = tokio::select! {
            r = subscribe_once(&settings, &store, &mut backoff) => r,
            _ = shutdown.cancelled() => return,
        };
        match result {
            Ok(()) => tracing::warn!("config stream ended; keeping the last config"),
            Err(e) => tracing::warn!(error = %e, "config stream failed; keeping the last config"),
        }
        let delay = backoff.next_delay();
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

async fn subscribe_once(
    settings: &StreamSettings,
    store: &ConfigStore,
    backoff: &mut Backoff,
) -> anyhow::Result<()> {
    let stream = tokio::net::TcpStream::connect(&settings.operator).await?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake::<_, Empty<bytes::Bytes>>(TokioIo::new(stream))
        .await?;
    let conn_task = tokio::spawn(conn);
    let uri = http::Uri::builder()
        .scheme("http")
        .authority(settings.operator.as_str())
        .path_and_query(settings.path_and_query.as_str())
        .build()?;
    let mut req = http::Request::get(uri).header(
        http::header::ACCEPT,
        meshlet_crds::contract::config::CONFIG_STREAM_CONTENT_TYPE,
    );
    if let Some(path) = &settings.token_file {
        // Re-read on every connect: the kubelet rotates projected tokens.
        let token = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("--token-file {}: {e}", path.display()))?;
        req = req.header(
            http::header::AUTHORIZATION,
            format!("Bearer {}", token.trim()),
        );
    }
    let req = req.body(Empty::new())?;
    let rsp = sender.send_request(req).await?;
    if !rsp.status().is_success() {
        conn_task.abort();
        anyhow::bail!("operator answered {}", rsp.status());
    }
    let mut body = rsp.into_body();
    let mut buf = BytesMut::new();
    let result = loop {
        let Some(frame) = body.frame().await else {
            break Ok(());
        };
        let frame = match frame {
            Ok(f) => f,
            Err(e) => break Err(e.into()),
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        buf.extend_from_slice(&data);
        while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
            let line = buf.split_to(nl + 1);
            let line = std::str::from_utf8(&line[..nl]).unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            match decode_message(line) {
                Ok(msg) => match store.apply(msg.generation, msg.config) {
                    Ok(()) => backoff.reset(),
                    Err(e) => {
                        tracing::warn!(error = %e, generation = msg.generation, "config rejected")
                    }
                },
                Err(e) => tracing::warn!(error = %e, "undecodable config message"),
            }
        }
        if buf.len() > MAX_LINE {
            buf.advance(buf.len());
            break Err(anyhow::anyhow!(
                "config message longer than {MAX_LINE} bytes"
            ));
        }
    };
    conn_task.abort();
    result
}
