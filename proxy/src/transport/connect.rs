//! Dialing endpoints. The one place a TLS client handshake will be added.

use super::BoxedIo;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

/// How long a TCP connect may take before it counts as a failure.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Opens connections to endpoints. Implemented by plain TCP now; an mTLS
/// connector will wrap it.
pub trait Connector: Send + Sync + 'static {
    /// Connects to `addr`.
    fn connect(
        &self,
        addr: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = io::Result<BoxedIo>> + Send>>;
}

/// Plain TCP with `TCP_NODELAY` and a connect timeout.
#[derive(Clone, Copy, Debug, Default)]
pub struct TcpConnector;

impl Connector for TcpConnector {
    fn connect(
        &self,
        addr: SocketAddr,
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
