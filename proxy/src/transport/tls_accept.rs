//! Mesh TLS termination on the inbound side. The first bytes are read
//! without a second detection: a TLS ClientHello whose SNI is this proxy's
//! own TLS server name is terminated here with a required client
//! certificate chaining to the trust anchors, and the client's SPIFFE ID is
//! read from it; anything else (plaintext, app-level TLS to another name)
//! is handed back with the bytes read so far replayed.

use super::PrefixedIo;
use crate::identity::leaf_identity;
use bytes::BytesMut;
use meshlet_crds::contract::identity::SpiffeId;
use rustls::server::Acceptor;
use rustls::ServerConfig;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio_rustls::server::TlsStream;
use tokio_rustls::StartHandshake;

/// The TLS record type of a handshake message.
const HANDSHAKE_RECORD: u8 = 0x16;

/// Largest ClientHello accepted before giving up and passing through.
const MAX_CLIENT_HELLO: usize = 64 * 1024;

/// What arrived on an inbound connection.
pub enum Accepted<T> {
    /// Mesh mTLS, terminated.
    Mtls {
        /// The decrypted stream (boxed: it is large).
        io: Box<TlsStream<T>>,
        /// The client's verified identity.
        client: SpiffeId,
        /// The negotiated ALPN protocol, if any.
        alpn: Option<Vec<u8>>,
    },
    /// Not mesh TLS: the stream with the bytes already read replayed.
    Passthrough {
        /// The stream.
        io: PrefixedIo<T>,
        /// No byte came before the timeout (a server-speaks-first protocol).
        silent: bool,
    },
}

/// Reads the start of `io` (waiting at most `timeout` for bytes) and
/// terminates mesh TLS addressed to `own_name`, using `config` (none: no
/// certificate yet, so such a connection fails). An error means the
/// connection should be closed: a failed handshake or a client certificate
/// without an identity.
pub async fn accept_mesh_tls<T>(
    mut io: T,
    own_name: &str,
    config: Option<Arc<ServerConfig>>,
    timeout: Duration,
) -> io::Result<Accepted<T>>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf = BytesMut::with_capacity(1024);
    let deadline = tokio::time::Instant::now() + timeout;
    let mut acceptor = Acceptor::default();
    let mut fed = 0;
    let passthrough = |buf: BytesMut, io, silent| {
        Ok(Accepted::Passthrough {
            io: PrefixedIo::new(buf.freeze(), io),
            silent,
        })
    };
    loop {
        if buf.len() >= MAX_CLIENT_HELLO {
            return passthrough(buf, io, false);
        }
        match tokio::time::timeout_at(deadline, io.read_buf(&mut buf)).await {
            Err(_) => {
                let silent = buf.is_empty();
                return passthrough(buf, io, silent);
            }
            Ok(Ok(0)) => return passthrough(buf, io, false),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
        }
        if buf[0] != HANDSHAKE_RECORD {
            return passthrough(buf, io, false);
        }
        let mut rest: &[u8] = &buf[fed..];
        let mut refused = false;
        while !rest.is_empty() && !refused {
            refused = !matches!(acceptor.read_tls(&mut rest), Ok(n) if n > 0);
        }
        if refused {
            return passthrough(buf, io, false);
        }
        fed = buf.len();
        let accepted = match acceptor.accept() {
            Ok(None) => continue,
            Ok(Some(a)) => a,
            // Not a ClientHello rustls understands: not ours, pass it on.
            Err(_) => return passthrough(buf, io, false),
        };
        if accepted.client_hello().server_name() != Some(own_name) {
            return passthrough(buf, io, false);
        }
        let config = config.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotConnected,
                "mesh TLS for this proxy, but it has no certificate yet",
            )
        })?;
        let stream = tokio::time::timeout_at(
            deadline.max(tokio::time::Instant::now() + Duration::from_secs(2)),
            StartHandshake::from_parts(accepted, io).into_stream(config),
        )
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
        let conn = stream.get_ref().1;
        let leaf = conn
            .peer_certificates()
            .and_then(|c| c.first())
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::PermissionDenied, "no client certificate")
            })?;
        let client = leaf_identity(leaf)
            .map_err(|e| io::Error::new(io::ErrorKind::PermissionDenied, format!("client {e}")))?;
        let alpn = conn.alpn_protocol().map(<[u8]>::to_vec);
        return Ok(Accepted::Mtls {
            io: Box::new(stream),
            client,
            alpn,
        });
    }
}
