//! Byte transport: accepting, dialing (plain or mesh mTLS), terminating
//! mesh TLS, the original destination of a redirected connection, and
//! replaying peeked bytes.
//!
//! Everything above this layer sees a boxed [`Io`], so TLS wraps a
//! connection here without the HTTP or TCP code changing.

mod connect;
mod metered;
mod operator;
mod orig_dst;
mod prefixed;
mod tls_accept;
mod tls_connect;

pub use connect::{connect, Carried, Connector, TcpConnector, CONNECT_TIMEOUT};
pub use metered::MeteredIo;
pub use operator::{connect_operator, OperatorTls};
pub use orig_dst::original_destination;
pub use prefixed::PrefixedIo;
pub use tls_accept::{accept_mesh_tls, Accepted};
pub use tls_connect::{MeshConnector, ServerIdentityLookup};

use tokio::io::{AsyncRead, AsyncWrite};

/// Any bidirectional byte stream the proxy can carry.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// A boxed connection: plain TCP or TLS.
pub type BoxedIo = Box<dyn Io>;
