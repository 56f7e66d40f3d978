//! Byte transport: accepting, dialing, the original destination of a
//! redirected connection, and replaying peeked bytes.
//!
//! Everything above this layer sees a boxed [`Io`], so a TLS layer can wrap
//! a connection here without the HTTP or TCP code changing.

mod connect;
mod metered;
mod orig_dst;
mod prefixed;

pub use connect::{connect, Connector, TcpConnector};
pub use metered::MeteredIo;
pub use orig_dst::original_destination;
pub use prefixed::PrefixedIo;

use tokio::io::{AsyncRead, AsyncWrite};

/// Any bidirectional byte stream the proxy can carry.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// A boxed connection: plain TCP today, TLS later.
pub type BoxedIo = Box<dyn Io>;
