//! Dialing the operator (config stream, certify): TLS verified against the
//! trust anchors for the operator's server name, or plaintext when the
//! proxy runs without identity.

use super::BoxedIo;
use meshlet_crds::contract::identity::ALPN_HTTP1;
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use std::io;
use std::sync::Arc;

/// How to secure the connection to the operator.
#[derive(Clone, Debug)]
pub struct OperatorTls {
    /// Verifies the operator against the trust anchors.
    pub config: Arc<ClientConfig>,
    /// The name its certificate must carry.
    pub server_name: String,
}

/// Connects to `addr` (`host:port`). Returns the connection and whether to
/// speak HTTP/2 on it (ALPN `h2`, or no ALPN: prior knowledge, which the
/// operator detects).
pub async fn connect_operator(
    addr: &str,
    tls: Option<&OperatorTls>,
) -> io::Result<(BoxedIo, bool)> {
    let tcp = tokio::time::timeout(
        super::CONNECT_TIMEOUT * 5,
        tokio::net::TcpStream::connect(addr),
    )
    .await
    .map_err(|_| {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("connect to {addr} timed out"),
        )
    })??;
    tcp.set_nodelay(true)?;
    let Some(tls) = tls else {
        return Ok((Box::new(tcp), true));
    };
    let name = ServerName::try_from(tls.server_name.clone()).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("operator server name {:?}: {e}", tls.server_name),
        )
    })?;
    let stream = tokio_rustls::TlsConnector::from(tls.config.clone())
        .connect(name, tcp)
        .await
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "TLS to the operator at {addr} as {:?}: {e}",
                    tls.server_name
                ),
            )
        })?;
    let h2 = stream.get_ref().1.alpn_protocol() != Some(ALPN_HTTP1);
    Ok((Box::new(stream), h2))
}
