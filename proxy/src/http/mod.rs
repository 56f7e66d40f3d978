//! HTTP plumbing shared by inbound and outbound: the body type, the
//! per-endpoint client pool, the upstream HTTP/1 client (`h1`), the
//! operator client, serving a detected connection, proxying one request,
//! upgrades, and mapping errors to responses (in one place).

pub mod client;
pub mod errors;
pub mod forward;
pub mod h1;
pub mod pool;
pub mod server;
mod upgrade;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

/// Any error, boxed: bodies come from hyper (HTTP/2, upgrades) or from
/// the proxy's own HTTP/1 client.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body of every response the proxy returns.
pub type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

/// A body made of one buffer.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// The HTTP version spoken on a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.x.
    Http1,
    /// HTTP/2.
    Http2,
}
