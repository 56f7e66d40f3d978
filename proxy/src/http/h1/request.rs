//! Writing a request to an upstream HTTP/1.1 connection: the head, with
//! framing headers of our own, then the body (as is for a known length,
//! chunked otherwise).
//!
//! Framing is decided here and nowhere else: the client's
//! `Content-Length` and `Transfer-Encoding` are never copied blindly, so a
//! request never leaves with both (the request-smuggling ambiguity).

use super::H1Error;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::{header, HeaderMap};
use http_body::{Body as _, Frame};
use hyper::body::Incoming;
use std::collections::VecDeque;
use std::io::IoSlice;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::AsyncWrite;

/// How the request body travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
}

/// The framing for a request body: chunked when the client chunked it
/// (the server side accepted `Transfer-Encoding` only with chunked last) or
/// its length is unknown; else its exact length; else none.
pub fn framing(end_stream: bool, exact: Option<u64>, client_chunked: bool) -> Framing {
    if client_chunked {
        Framing::Chunked
    } else if end_stream {
        Framing::Empty
    } else if let Some(n) = exact {
        Framing::Length(n)
    } else {
        Framing::Chunked
    }
}

/// Appends the request head to `dst`, in origin form (or the absolute
/// form the client used), as HTTP/1.1 with a `Host`. Returns whether the
/// connection may be kept: a request with no host at all (an HTTP/1.0
/// client's) goes as HTTP/1.0, which needs none, and the server then
/// closes the connection after it.
pub fn encode_head(parts: &http::request::Parts, framing: Framing, dst: &mut BytesMut) -> bool {
    dst.reserve(64 + parts.headers.len() * 48);
    dst.put_slice(parts.method.as_str().as_bytes());
    dst.put_u8(b' ');
    match (parts.uri.scheme(), parts.uri.path_and_query()) {
        (None, Some(pq)) => dst.put_slice(pq.as_str().as_bytes()),
        (None, None) => dst.put_u8(b'/'),
        (Some(_), _) => dst.put_slice(parts.uri.to_string().as_bytes()),
    }
    let has_host = parts.headers.contains_key(header::HOST);
    let authority = parts.uri.authority().filter(|_| !has_host);
    let persistent = has_host || authority.is_some();
    if persistent {
        dst.put_slice(b" HTTP/1.1\r\n");
    } else {
        dst.put_slice(b" HTTP/1.0\r\n");
    }
    if let Some(authority) = authority {
        put_field(dst, b"host", authority.as_str().as_bytes());
    }
    let mut had_length = false;
    for (name, value) in &parts.headers {
        if name == header::CONTENT_LENGTH {
            had_length = true;
            continue;
        }
        if name == header::TRANSFER_ENCODING {
            continue;
        }
        put_field(dst, name.as_str().as_bytes(), value.as_bytes());
    }
    match framing {
        // `Content-Length: 0` stays when the client sent it.
        Framing::Empty if had_length => dst.put_slice(b"content-length: 0\r\n"),
        Framing::Empty => {}
        Framing::Length(n) => {
            dst.put_slice(b"content-length: ");
            put_decimal(dst, n);
            dst.put_slice(b"\r\n");
        }
        Framing::Chunked => {
            // The client's codings (chunked last), or chunked alone.
            let mut te = parts.headers.get_all(header::TRANSFER_ENCODING).iter();
            match te.next() {
                None => dst.put_slice(b"transfer-encoding: chunked\r\n"),
                Some(first) => {
                    put_field(dst, b"transfer-encoding", first.as_bytes());
                    for v in te {
                        put_field(dst, b"transfer-encoding", v.as_bytes());
                    }
                }
            }
        }
    }
    dst.put_slice(b"\r\n");
    persistent
}

fn put_field(dst: &mut BytesMut, name: &[u8], value: &[u8]) {
    dst.put_slice(name);
    dst.put_slice(b": ");
    dst.put_slice(value);
    dst.put_slice(b"\r\n");
}

fn put_decimal(dst: &mut BytesMut, n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    dst.put_slice(&digits[i..]);
}

fn chunk_size_line(n: usize) -> Bytes {
    let mut line = BytesMut::with_capacity(20);
    // Lowercase hex, no leading zeros.
    let hex = format!("{n:x}\r\n");
    line.put_slice(hex.as_bytes());
    line.freeze()
}

/// The request on its way out: the head, queued body bytes, and the body
/// still to read.
pub struct RequestWriter {
    /// The head, until written (then empty). Apart from the queue, so that
    /// a request without a body allocates no queue.
    head: Bytes,
    queue: VecDeque<Bytes>,
    body: Option<Incoming>,
    framing: Framing,
    /// Bytes a `Length` body has yet to produce.
    remaining: u64,
    trailers: Option<HeaderMap>,
    flushed: bool,
    /// Why writing stopped early, if it did: nothing more is written.
    failed: Option<H1Error>,
}

impl RequestWriter {
    /// Starts writing `head`, then `body` with `framing`.
    pub fn new(head: Bytes, body: Incoming, framing: Framing) -> Self {
        Self {
            head,
            queue: VecDeque::new(),
            body: (framing != Framing::Empty).then_some(body),
            framing,
            remaining: match framing {
                Framing::Length(n) => n,
                _ => 0,
            },
            trailers: None,
            flushed: false,
            failed: None,
        }
    }

    /// Stops writing after `e`: the server may still answer (an early
    /// error status before closing), so reading goes on.
    pub fn abandon(&mut self, e: H1Error) {
        self.head.clear();
        self.queue.clear();
        self.body = None;
        self.failed = Some(e);
    }

    /// Why writing stopped early, if it did.
    pub fn take_failure(&mut self) -> Option<H1Error> {
        self.failed.take()
    }

    /// Whether the whole request went out.
    pub fn is_done(&self) -> bool {
        self.flushed && self.failed.is_none()
    }

    fn has_queued(&self) -> bool {
        !self.head.is_empty() || !self.queue.is_empty()
    }

    /// Writes as much as can go now; ready once all is written and flushed.
    pub fn poll_write<W: AsyncWrite + Unpin + ?Sized>(
        &mut self,
        cx: &mut Context<'_>,
        io: &mut W,
    ) -> Poll<Result<(), H1Error>> {
        if self.failed.is_some() {
            return Poll::Ready(Ok(()));
        }
        loop {
            if self.has_queued() {
                ready!(self.poll_drain(cx, io))?;
                continue;
            }
            if let Some(body) = self.body.as_mut() {
                match ready!(Pin::new(body).poll_frame(cx)) {
                    Some(Ok(frame)) => self.push_frame(frame)?,
                    Some(Err(e)) => return Poll::Ready(Err(H1Error::RequestBody(e.to_string()))),
                    None => self.push_end()?,
                }
                continue;
            }
            if !self.flushed {
                ready!(Pin::new(&mut *io).poll_flush(cx))?;
                self.flushed = true;
            }
            return Poll::Ready(Ok(()));
        }
    }

    fn poll_drain<W: AsyncWrite + Unpin + ?Sized>(
        &mut self,
        cx: &mut Context<'_>,
        io: &mut W,
    ) -> Poll<Result<(), H1Error>> {
        while self.has_queued() {
            let n = if io.is_write_vectored() && !self.queue.is_empty() {
                let mut slices = [IoSlice::new(&[]); 8];
                let segments = std::iter::once(&self.head)
                    .filter(|h| !h.is_empty())
                    .chain(self.queue.iter());
                let mut count = 0;
                for (slot, b) in slices.iter_mut().zip(segments) {
                    *slot = IoSlice::new(b);
                    count += 1;
                }
                ready!(Pin::new(&mut *io).poll_write_vectored(cx, &slices[..count]))?
            } else if !self.head.is_empty() {
                ready!(Pin::new(&mut *io).poll_write(cx, &self.head))?
            } else {
                ready!(Pin::new(&mut *io).poll_write(cx, &self.queue[0]))?
            };
            if n == 0 {
                return Poll::Ready(Err(
                    std::io::Error::from(std::io::ErrorKind::WriteZero).into()
                ));
            }
            self.advance(n);
        }
        Poll::Ready(Ok(()))
    }

    fn advance(&mut self, mut n: usize) {
        let from_head = n.min(self.head.len());
        self.head.advance(from_head);
        n -= from_head;
        while n > 0 {
            let front = self.queue.front_mut().expect("wrote no more than queued");
            if n >= front.len() {
                n -= front.len();
                self.queue.pop_front();
            } else {
                front.advance(n);
                n = 0;
            }
        }
    }

    fn push_frame(&mut self, frame: Frame<Bytes>) -> Result<(), H1Error> {
        match frame.into_data() {
            Ok(data) if data.is_empty() => {}
            Ok(data) => match self.framing {
                Framing::Length(_) => {
                    let n = data.len() as u64;
                    if n > self.remaining {
                        return Err(H1Error::RequestBody(
                            "longer than its content-length".into(),
                        ));
                    }
                    self.remaining -= n;
                    self.queue.push_back(data);
                }
                _ => {
                    // An empty chunk would end the body: skipped above.
                    self.queue.push_back(chunk_size_line(data.len()));
                    self.queue.push_back(data);
                    self.queue.push_back(Bytes::from_static(b"\r\n"));
                }
            },
            Err(frame) => {
                if let Ok(t) = frame.into_trailers() {
                    self.trailers.get_or_insert_with(HeaderMap::new).extend(t);
                }
            }
        }
        Ok(())
    }

    fn push_end(&mut self) -> Result<(), H1Error> {
        self.body = None;
        match self.framing {
            Framing::Length(_) if self.remaining > 0 => Err(H1Error::RequestBody(
                "shorter than its content-length".into(),
            )),
            Framing::Chunked => {
                let mut end = BytesMut::from(&b"0\r\n"[..]);
                // Trailers go only where chunked lets them.
                for (name, value) in self.trailers.take().iter().flatten() {
                    put_field(&mut end, name.as_str().as_bytes(), value.as_bytes());
                }
                end.put_slice(b"\r\n");
                self.queue.push_back(end.freeze());
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(req: http::Request<()>, framing: Framing) -> String {
        let (parts, ()) = req.into_parts();
        let mut dst = BytesMut::new();
        let _ = encode_head(&parts, framing, &mut dst);
        String::from_utf8(dst.to_vec()).unwrap()
    }

    #[test]
    fn framing_prefers_chunked_from_the_client_then_no_body_then_length() {
        assert_eq!(framing(true, Some(0), false), Framing::Empty);
        assert_eq!(framing(false, Some(5), false), Framing::Length(5));
        assert_eq!(framing(false, None, false), Framing::Chunked);
        assert_eq!(framing(false, Some(5), true), Framing::Chunked);
        assert_eq!(framing(true, Some(0), true), Framing::Chunked);
    }

    #[test]
    fn head_is_origin_form_http11_with_our_own_framing_headers() {
        let req = http::Request::post("/a/b?c=d")
            .header("host", "web")
            .header("content-length", "5")
            .header("transfer-encoding", "chunked")
            .header("x-a", "1")
            .body(())
            .unwrap();
        assert_eq!(
            head(req, Framing::Length(5)),
            "POST /a/b?c=d HTTP/1.1\r\nhost: web\r\nx-a: 1\r\ncontent-length: 5\r\n\r\n"
        );
    }

    #[test]
    fn chunked_keeps_the_clients_codings_and_drops_its_length() {
        let req = http::Request::put("/")
            .header("host", "web")
            .header("transfer-encoding", "gzip, chunked")
            .header("content-length", "12")
            .body(())
            .unwrap();
        assert_eq!(
            head(req, Framing::Chunked),
            "PUT / HTTP/1.1\r\nhost: web\r\ntransfer-encoding: gzip, chunked\r\n\r\n"
        );
        let req = http::Request::post("/")
            .header("host", "web")
            .body(())
            .unwrap();
        assert_eq!(
            head(req, Framing::Chunked),
            "POST / HTTP/1.1\r\nhost: web\r\ntransfer-encoding: chunked\r\n\r\n"
        );
    }

    #[test]
    fn empty_body_keeps_a_zero_length_only_when_the_client_sent_one() {
        let req = http::Request::post("/")
            .header("host", "web")
            .header("content-length", "0")
            .body(())
            .unwrap();
        assert_eq!(
            head(req, Framing::Empty),
            "POST / HTTP/1.1\r\nhost: web\r\ncontent-length: 0\r\n\r\n"
        );
        let req = http::Request::get("http://web:80/x").body(()).unwrap();
        assert_eq!(
            head(req, Framing::Empty),
            "GET http://web:80/x HTTP/1.1\r\nhost: web:80\r\n\r\n"
        );
    }

    #[test]
    fn a_request_without_any_host_goes_as_http10_on_a_connection_not_kept() {
        let (parts, ()) = http::Request::get("/").body(()).unwrap().into_parts();
        let mut dst = BytesMut::new();
        assert!(!encode_head(&parts, Framing::Empty, &mut dst));
        assert_eq!(&dst[..], b"GET / HTTP/1.0\r\n\r\n");
        let (parts, ()) = http::Request::get("/")
            .header("host", "web")
            .body(())
            .unwrap()
            .into_parts();
        assert!(encode_head(&parts, Framing::Empty, &mut BytesMut::new()));
    }

    #[test]
    fn decimal_lengths() {
        for n in [0u64, 7, 10, 12345, u64::MAX] {
            let mut d = BytesMut::new();
            put_decimal(&mut d, n);
            assert_eq!(d, n.to_string().as_bytes());
        }
    }
}
