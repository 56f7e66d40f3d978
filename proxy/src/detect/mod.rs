//! Protocol detection: read the first bytes of a connection and decide
//! between HTTP/1, HTTP/2 (prior knowledge, as gRPC and h2c use) and opaque
//! TCP. The bytes read are replayed to whoever handles the connection.

use crate::transport::PrefixedIo;
use bytes::BytesMut;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The HTTP/2 client connection preface.
pub const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Longest HTTP/1 request line looked at; longer means opaque.
const MAX_REQUEST_LINE: usize = 2048;

/// What a connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.0 or HTTP/1.1.
    Http1,
    /// HTTP/2 with prior knowledge.
    Http2,
    /// Anything else, proxied byte for byte.
    Opaque,
}

/// The verdict on the bytes seen so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Decided.
    Known(Protocol),
    /// More bytes are needed.
    NeedMore,
}

/// Classifies the first bytes of a connection. Pure, so it is unit-tested
/// and fuzzed without sockets.
pub fn classify(buf: &[u8]) -> Verdict {
    if buf.is_empty() {
        return Verdict::NeedMore;
    }
    // HTTP/2 preface, possibly still partial.
    let n = buf.len().min(H2_PREFACE.len());
    if buf[..n] == H2_PREFACE[..n] {
        return if n == H2_PREFACE.len() {
            Verdict::Known(Protocol::Http2)
        } else {
            Verdict::NeedMore
        };
    }
    // HTTP/1: `METHOD SP target SP HTTP/1.x CRLF`. A method is an uppercase
    // token; anything else early on means opaque, without waiting.
    let method_len = buf.iter().take_while(|b| is_method_byte(**b)).count();
    if method_len == buf.len() {
        return if method_len > 20 {
            Verdict::Known(Protocol::Opaque)
        } else {
            Verdict::NeedMore
        };
    }
    if method_len == 0 || buf[method_len] != b' ' {
        return Verdict::Known(Protocol::Opaque);
    }
    match buf.iter().position(|b| *b == b'\n') {
        Some(end) => {
            let line = &buf[..end];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.ends_with(b" HTTP/1.1") || line.ends_with(b" HTTP/1.0") {
                Verdict::Known(Protocol::Http1)
            } else {
                Verdict::Known(Protocol::Opaque)
            }
        }
        None if buf.len() >= MAX_REQUEST_LINE => Verdict::Known(Protocol::Opaque),
        None => Verdict::NeedMore,
    }
}

fn is_method_byte(b: u8) -> bool {
    b.is_ascii_uppercase() || b == b'-' || b == b'_'
}

/// Reads from `io` until [`classify`] decides, the peer stops sending for
/// `timeout` (then opaque: server-speaks-first protocols), or EOF.
pub async fn detect<T: AsyncRead + Unpin>(
    mut io: T,
    timeout: Duration,
) -> std::io::Result<(Protocol, PrefixedIo<T>)> {
    let mut buf = BytesMut::with_capacity(512);
    let deadline = tokio::time::Instant::now() + timeout;
    let protocol = loop {
        if let Verdict::Known(p) = classify(&buf) {
            break p;
        }
        if buf.len() >= MAX_REQUEST_LINE {
            break Protocol::Opaque;
        }
        match tokio::time::timeout_at(deadline, io.read_buf(&mut buf)).await {
            Ok(Ok(0)) | Err(_) => break Protocol::Opaque,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
        }
    };
    Ok((protocol, PrefixedIo::new(buf.freeze(), io)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_http1_request_lines() {
        assert_eq!(
            classify(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
            Verdict::Known(Protocol::Http1)
        );
        assert_eq!(
            classify(b"CONNECT a:443 HTTP/1.0\r\n"),
            Verdict::Known(Protocol::Http1)
        );
        assert_eq!(classify(b"GET /pa"), Verdict::NeedMore);
        assert_eq!(classify(b"GE"), Verdict::NeedMore);
    }

    #[test]
    fn recognises_the_h2_preface() {
        assert_eq!(classify(H2_PREFACE), Verdict::Known(Protocol::Http2));
        assert_eq!(classify(&H2_PREFACE[..10]), Verdict::NeedMore);
    }

    #[test]
    fn other_bytes_are_opaque() {
        assert_eq!(classify(b"\x16\x03\x01"), Verdict::Known(Protocol::Opaque));
        assert_eq!(classify(b"hello world\n"), Verdict::Known(Protocol::Opaque));
        assert_eq!(
            classify(b"GET / SMTP\r\n"),
            Verdict::Known(Protocol::Opaque)
        );
        assert_eq!(classify(&[b'A'; 30]), Verdict::Known(Protocol::Opaque));
    }

    #[tokio::test]
    async fn silent_peers_are_opaque_after_the_timeout() {
        let (client, server) = tokio::io::duplex(64);
        let (p, _) = detect(server, Duration::from_millis(50)).await.unwrap();
        assert_eq!(p, Protocol::Opaque);
        drop(client);
    }

    proptest::proptest! {
        #[test]
        fn classify_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = classify(&bytes);
        }
    }
}
