//! A response body read straight off the upstream connection; when it
//! ends cleanly the connection can carry the next request.

use super::chunked::{self, Decoded};
use super::request::RequestWriter;
use super::response::BodyFraming;
use super::{H1Conn, H1Error};
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

enum Decoder {
    Length(u64),
    Chunked(chunked::State),
    Close,
    Done,
}

/// The body of a response from an upstream HTTP/1 connection.
pub struct ResponseBody {
    conn: Option<H1Conn>,
    decoder: Decoder,
    /// Whether the connection may be reused once the body has ended.
    reusable: bool,
    /// The rest of the request, when the response came before all of it
    /// went out: written while the response is read.
    writer: Option<Box<RequestWriter>>,
}

impl ResponseBody {
    pub(super) fn new(
        conn: H1Conn,
        framing: BodyFraming,
        reusable: bool,
        writer: Option<Box<RequestWriter>>,
    ) -> Self {
        let decoder = match framing {
            BodyFraming::Empty => Decoder::Done,
            BodyFraming::Length(n) => Decoder::Length(n),
            BodyFraming::Chunked => Decoder::Chunked(chunked::State::Size),
            BodyFraming::Close => Decoder::Close,
        };
        Self {
            conn: Some(conn),
            decoder,
            reusable,
            writer,
        }
    }

    /// The connection, once the body has ended and if it may carry another
    /// request (persistent, the whole request sent, nothing unread left).
    pub fn take_reusable(&mut self) -> Option<H1Conn> {
        if !matches!(self.decoder, Decoder::Done) || !self.reusable || self.writer.is_some() {
            return None;
        }
        self.conn.take().filter(|c| c.buf.is_empty())
    }

    fn fail(&mut self, e: H1Error) -> Poll<Option<Result<Frame<Bytes>, H1Error>>> {
        self.conn = None;
        self.decoder = Decoder::Done;
        self.reusable = false;
        Poll::Ready(Some(Err(e)))
    }
}

impl http_body::Body for ResponseBody {
    type Data = Bytes;
    type Error = H1Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, H1Error>>> {
        let this = &mut *self;
        if let (Some(writer), Some(conn)) = (this.writer.as_mut(), this.conn.as_mut()) {
            match writer.poll_write(cx, &mut conn.io) {
                Poll::Ready(Ok(())) => {
                    // Abandoned before the response began: cut short too.
                    this.reusable &= writer.is_done();
                    this.writer = None;
                }
                // The server stopped reading: the request is cut short, the
                // response may still end well, the connection is not reused.
                Poll::Ready(Err(e)) => {
                    tracing::debug!(error = %e, "request cut short after the response began");
                    this.writer = None;
                    this.reusable = false;
                }
                Poll::Pending => {}
            }
        }
        loop {
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            match &mut this.decoder {
                Decoder::Done => return Poll::Ready(None),
                Decoder::Length(left) => {
                    if conn.buf.is_empty() {
                        match ready!(conn.poll_fill(cx)) {
                            Ok(0) => return this.fail(H1Error::IncompleteBody),
                            Ok(_) => {}
                            Err(e) => return this.fail(e.into()),
                        }
                    }
                    let n = (conn.buf.len() as u64).min(*left) as usize;
                    let data = conn.buf.split_to(n).freeze();
                    *left -= n as u64;
                    if *left == 0 {
                        this.decoder = Decoder::Done;
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Decoder::Chunked(state) => match chunked::decode(state, &mut conn.buf) {
                    Ok(Decoded::Data(d)) => return Poll::Ready(Some(Ok(Frame::data(d)))),
                    Ok(Decoded::Trailers(t)) => {
                        this.decoder = Decoder::Done;
                        return Poll::Ready(Some(Ok(Frame::trailers(t))));
                    }
                    Ok(Decoded::End) => {
                        this.decoder = Decoder::Done;
                        return Poll::Ready(None);
                    }
                    Ok(Decoded::NeedMore) => match ready!(conn.poll_fill(cx)) {
                        Ok(0) => return this.fail(H1Error::IncompleteBody),
                        Ok(_) => {}
                        Err(e) => return this.fail(e.into()),
                    },
                    Err(e) => return this.fail(e),
                },
                Decoder::Close => {
                    if !conn.buf.is_empty() {
                        let data = conn.buf.split().freeze();
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                    match ready!(conn.poll_fill(cx)) {
                        Ok(0) => {
                            this.decoder = Decoder::Done;
                            this.reusable = false;
                            return Poll::Ready(None);
                        }
                        Ok(_) => {}
                        Err(e) => return this.fail(e.into()),
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.decoder, Decoder::Done)
    }

    fn size_hint(&self) -> SizeHint {
        match self.decoder {
            Decoder::Length(n) => SizeHint::with_exact(n),
            Decoder::Done => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}
