//! The proxy's own HTTP/1.1 client for upstream connections.
//!
//! hyper's client runs every connection as a task of its own, reached over
//! channels, and parses each response into a `HeaderMap` in a dispatcher
//! built for any use. A sidecar's upstream exchange is simpler: write the
//! request, read one response head, hand the body straight from the socket
//! to the server side. Done here, it runs inside the request's own task,
//! with no channel and no second task poll per request (see
//! proxy/README.md for the figures). Upgrades and CONNECT stay on hyper.
//!
//! The rules that keep a proxy from being smuggled through are kept in one
//! place each: request framing in [`request`], response framing in
//! [`response`], chunked decoding in [`chunked`]. Anything unexpected
//! ends the connection.

mod body;
pub mod chunked;
mod error;
pub mod request;
pub mod response;

pub use body::ResponseBody;
pub use error::H1Error;

use crate::transport::BoxedIo;
use bytes::BytesMut;
use http::{Request, Response};
use hyper::body::Incoming;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use tokio::io::AsyncRead;

/// Read buffer size: one read takes a typical response whole.
const READ_CHUNK: usize = 8 * 1024;

/// An upstream HTTP/1.1 connection between exchanges.
pub struct H1Conn {
    io: BoxedIo,
    /// Bytes read and not yet consumed.
    buf: BytesMut,
    /// Where request heads are encoded: its memory comes back once a head
    /// has been written, so a request head costs no allocation.
    wbuf: BytesMut,
}

impl H1Conn {
    /// Wraps a connected transport.
    pub fn new(io: BoxedIo) -> Self {
        Self {
            io,
            buf: BytesMut::new(),
            wbuf: BytesMut::new(),
        }
    }

    /// Whether an idle connection can take a request: nothing arrived on it
    /// while idle (no close, no stray bytes). No system call unless the
    /// socket was signalled readable.
    pub fn is_open_and_quiet(&mut self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let mut cx = Context::from_waker(Waker::noop());
        let mut probe = [0u8; 1];
        let mut probe = tokio::io::ReadBuf::new(&mut probe);
        matches!(
            Pin::new(&mut self.io).poll_read(&mut cx, &mut probe),
            Poll::Pending
        )
    }

    /// Reads more into the buffer: the number of bytes, 0 at the end.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        if self.buf.capacity() - self.buf.len() < 1024 {
            self.buf.reserve(READ_CHUNK);
        }
        tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.buf)
    }

    /// Sends `req` and reads the response head; the body streams from the
    /// connection, which the body gives back when it ends.
    ///
    /// Not an `async fn`, which would keep `req` twice (see
    /// `ConnPool::send_h1`).
    #[allow(clippy::manual_async_fn)] // see above
    pub fn send(
        mut self,
        req: Request<Incoming>,
    ) -> impl Future<Output = Result<Response<ResponseBody>, H1Error>> {
        async move {
            let (parts, body) = req.into_parts();
            let client_chunked = parts.headers.contains_key(http::header::TRANSFER_ENCODING);
            let framing = {
                use http_body::Body as _;
                request::framing(
                    body.is_end_stream(),
                    body.size_hint().exact(),
                    client_chunked,
                )
            };
            let persistent = request::encode_head(&parts, framing, &mut self.wbuf);
            let head = self.wbuf.split().freeze();
            let mut writer = request::RequestWriter::new(head, body, framing);
            let head =
                std::future::poll_fn(|cx| self.poll_exchange(cx, &mut writer, &parts.method))
                    .await?;
            // A response may come before the whole request went out (an
            // early error, or a server streaming both ways): the rest of
            // the request keeps going out while the response body is read.
            // Rare: boxed, so that every response body stays small (it is
            // moved by value on its way to the server side).
            let writer = (!writer.is_done()).then(|| Box::new(writer));
            let mut rsp = Response::new(ResponseBody::new(
                self,
                head.framing,
                head.keep_alive && persistent,
                writer,
            ));
            *rsp.status_mut() = head.status;
            *rsp.version_mut() = head.version;
            *rsp.headers_mut() = head.headers;
            if let Some(reason) = head.reason {
                rsp.extensions_mut().insert(reason);
            }
            Ok(rsp)
        }
    }

    /// Writes the request while reading, until a final response head.
    fn poll_exchange(
        &mut self,
        cx: &mut Context<'_>,
        writer: &mut request::RequestWriter,
        method: &http::Method,
    ) -> Poll<Result<response::Head, H1Error>> {
        loop {
            if let Poll::Ready(Err(e)) = writer.poll_write(cx, &mut self.io) {
                writer.abandon(e);
            }
            if !self.buf.is_empty() {
                match response::parse(&mut self.buf, method)? {
                    response::Parsed::Final(head) => return Poll::Ready(Ok(head)),
                    response::Parsed::Interim => continue,
                    response::Parsed::Partial => {}
                }
            }
            // A failed write explains a close better than the close does.
            match std::task::ready!(self.poll_fill(cx)) {
                Ok(0) if self.buf.is_empty() => {
                    return Poll::Ready(Err(writer
                        .take_failure()
                        .unwrap_or(H1Error::ClosedBeforeResponse)))
                }
                Ok(0) => return Poll::Ready(Err(H1Error::IncompleteHead)),
                Ok(_) => {}
                Err(e) => return Poll::Ready(Err(writer.take_failure().unwrap_or(e.into()))),
            }
        }
    }
}
