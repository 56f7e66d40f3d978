//! Mesh mTLS origination: to an endpoint the config marks meshed with an
//! identity, the connection is TLS 1.3 with SNI = that identity's TLS
//! server name, this proxy's certificate as client certificate, and the
//! ALPN of what it carries. The server's chain must lead to the trust
//! anchors and name that identity, else the connect fails (and counts as a
//! connect failure for retries and ejection); there is no plaintext
//! fallback. Other endpoints get plain TCP.

use super::connect::{connect, Carried, Connector};
use super::BoxedIo;
use crate::identity::TlsStore;
use meshlet_crds::contract::identity::{SpiffeId, ALPN_H2, ALPN_HTTP1, ALPN_OPAQUE};
use rustls::pki_types::ServerName;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// How long a TLS handshake may take after the TCP connect.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);

/// The identity expected at an address (from the current config), `None`
/// for endpoints that are not meshed.
pub type ServerIdentityLookup = Arc<dyn Fn(SocketAddr) -> Option<SpiffeId> + Send + Sync>;

/// Dials meshed endpoints with mTLS and the others with plain TCP.
pub struct MeshConnector {
    tls: Arc<TlsStore>,
    lookup: ServerIdentityLookup,
}

impl MeshConnector {
    /// Uses `tls` for the material and `lookup` for who is meshed.
    pub fn new(tls: Arc<TlsStore>, lookup: ServerIdentityLookup) -> Self {
        Self { tls, lookup }
    }
}

fn alpn(what: Carried) -> &'static [u8] {
    match what {
        Carried::Http1 => ALPN_HTTP1,
        Carried::Http2 => ALPN_H2,
        Carried::Opaque => ALPN_OPAQUE,
    }
}

impl Connector for MeshConnector {
    fn connect_for(
        &self,
        addr: SocketAddr,
        what: Carried,
    ) -> Pin<Box<dyn Future<Output = io::Result<BoxedIo>> + Send>> {
        // Without an identity of our own the mesh is plaintext (tests,
        // benchmarks, installs without identity).
        let server = if self.tls.is_enabled() {
            (self.lookup)(addr)
        } else {
            None
        };
        let tls = self.tls.clone();
        Box::pin(async move {
            let Some(server) = server else {
                return Ok(Box::new(connect(addr).await?) as BoxedIo);
            };
            let config = tls
                .load()
                .mesh
                .as_ref()
                .map(|m| m.client(alpn(what)))
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::NotConnected,
                        format!("mTLS to {addr} ({server}): this proxy has no certificate yet"),
                    )
                })?;
            let name = server.tls_server_name();
            let sni = ServerName::try_from(name.clone()).map_err(|e| {
                io::Error::new(io::ErrorKind::InvalidInput, format!("{name:?}: {e}"))
            })?;
            let tcp = connect(addr).await?;
            let stream = tokio::time::timeout(
                HANDSHAKE_TIMEOUT,
                tokio_rustls::TlsConnector::from(config).connect(sni, tcp),
            )
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))?
            .map_err(|e| io::Error::new(e.kind(), format!("mTLS to {addr} as {server}: {e}")))?;
            Ok(Box::new(stream) as BoxedIo)
        })
    }
}
