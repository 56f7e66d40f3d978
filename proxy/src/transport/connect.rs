//! Dialing endpoints: the [`Connector`] seam (plain TCP here, mesh mTLS in
//! `tls_connect`) and the TCP connect with its timeout.

use super::BoxedIo;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

/// How long a TCP connect may take before it counts as a failure.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// What a connection will carry; with mesh TLS it is the ALPN offered, so
/// the server proxy needs no second protocol detection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Carried {
    /// HTTP/1.1.
    Http1,
    /// HTTP/2.
    Http2,
    /// Opaque TCP.
    Opaque,
}

/// Opens connections to endpoints: plain TCP ([`TcpConnector`]) or mesh
/// mTLS where the endpoint is meshed (`MeshConnector`).
pub trait Connector: Send + Sync + 'static {
    /// Connects to `addr` for opaque TCP.
    fn connect(
        &self,
        addr: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = io::Result<BoxedIo>> + Send>> {
        self.connect_for(addr, Carried::Opaque)
    }

    /// Connects to `addr` to carry `what`.
    fn connect_for(
        &self,
        addr: SocketAddr,
        what: Carried,
    ) -> Pin<Box<dyn Future<Output = io::Result<BoxedIo>> + Send>>;
}

/// Plain TCP with `TCP_NODELAY` and a connect timeout.
#[derive(Clone, Copy, Debug, Default)]
pub struct TcpConnector;

impl Connector for TcpConnector {
    fn connect_for(
        &self,
        addr: SocketAddr,
        _what: Carried,
    ) -> Pin<Box<dyn Future<Output = io::Result<BoxedIo>> + Send>> {
        Box::pin(async move {
            let stream = connect(addr).await?;
            Ok(Box::new(stream) as BoxedIo)
        })
    }
}

/// Connects a TCP stream with `TCP_NODELAY` set, failing after
/// [`CONNECT_TIMEOUT`].
pub async fn connect(addr: SocketAddr) -> io::Result<tokio::net::TcpStream> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}
