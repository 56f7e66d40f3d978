//! The config stream client: `GET /v1/proxy-config` to the operator over
//! HTTPS (verified against the trust anchors for the operator's server
//! name; plaintext only when the proxy runs without anchors), one JSON
//! `ConfigMessage` per line, each applied atomically. When the stream is
//! lost the proxy keeps its last config and reconnects with exponential
//! backoff.

use super::{decode_message, Backoff, ConfigStore};
use crate::http::client;
use crate::identity::TlsStore;
use crate::transport::{connect_operator, OperatorTls};
use bytes::{Buf, BytesMut};
use http_body_util::{BodyExt, Empty};
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
    /// HTTPS: the anchors (read at every connect, so rotation applies) and
    /// the operator's server name. `None`: plaintext.
    pub tls: Option<OperatorVerify>,
}

/// How to verify the operator.
#[derive(Debug, Clone)]
pub struct OperatorVerify {
    /// Holds the current trust anchors.
    pub store: Arc<TlsStore>,
    /// The DNS name on the operator's certificate.
    pub server_name: String,
}

impl OperatorVerify {
    /// The TLS settings for a connection now.
    pub fn current(&self) -> anyhow::Result<OperatorTls> {
        let config = self
            .store
            .load()
            .operator
            .clone()
            .ok_or_else(|| anyhow::anyhow!("no trust anchors to verify the operator with"))?;
        Ok(OperatorTls {
            config,
            server_name: self.server_name.clone(),
        })
    }
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
    let tls = settings
        .tls
        .as_ref()
        .map(OperatorVerify::current)
        .transpose()?;
    let (io, h2) = connect_operator(&settings.operator, tls.as_ref()).await?;
    let (mut sender, conn_task) = client::handshake::<Empty<bytes::Bytes>>(io, h2).await?;
    let uri = http::Uri::builder()
        .scheme(if tls.is_some() { "https" } else { "http" })
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
    let rsp = sender.send(req).await?;
    if !rsp.status().is_success() {
        let status = rsp.status();
        let body = http_body_util::Limited::new(rsp.into_body(), 64 * 1024)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        conn_task.abort();
        let message =
            serde_json::from_slice::<meshlet_crds::contract::identity::IdentityErrorBody>(&body)
                .map(|b| b.error)
                .unwrap_or_else(|_| String::from_utf8_lossy(&body).trim().to_string());
        anyhow::bail!("operator answered {status}: {message}");
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
