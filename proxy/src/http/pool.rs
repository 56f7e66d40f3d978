//! Reusable client connections to one endpoint: a stack of idle HTTP/1
//! connections (returned when a response body ends) and one multiplexed
//! HTTP/2 connection.

use super::{Body, Version};
use crate::transport::{Carried, Connector};
use bytes::Bytes;
use http_body::{Body as _, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2, TrySendError};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Idle HTTP/1 connections kept per endpoint.
const MAX_IDLE_H1: usize = 16;

/// An idle HTTP/1 connection older than this is closed rather than reused:
/// below common server keep-alive timeouts (Node.js: 5 s), so the proxy
/// rarely sends on a connection the server is closing.
const IDLE_TIMEOUT: Duration = Duration::from_secs(4);

/// Whether a connection idle since `since` may still be reused at `now`.
fn reusable(since: Instant, now: Instant) -> bool {
    now.saturating_duration_since(since) < IDLE_TIMEOUT
}

/// Connections to one endpoint.
pub struct ConnPool {
    addr: SocketAddr,
    idle_h1: Idle,
    h2: tokio::sync::Mutex<Option<http2::SendRequest<Incoming>>>,
}

impl std::fmt::Debug for ConnPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnPool")
            .field("addr", &self.addr)
            .finish()
    }
}

/// A connection ready for one request.
pub enum Conn {
    /// HTTP/1: exclusive until the response body ends.
    H1(http1::SendRequest<Incoming>),
    /// HTTP/2: shared.
    H2(http2::SendRequest<Incoming>),
}

fn to_io(e: hyper::Error) -> io::Error {
    io::Error::other(e)
}

impl ConnPool {
    /// An empty pool for `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            idle_h1: Arc::new(Mutex::new(Vec::new())),
            h2: tokio::sync::Mutex::new(None),
        }
    }

    /// A connection ready for a request right now, without waiting: the
    /// latest idle HTTP/1 one if its dispatcher is ready, or the shared
    /// HTTP/2 one. `None`: [`checkout`](Self::checkout) has to wait or
    /// dial. The common case then costs no future at all.
    pub fn ready_now(&self, version: Version) -> Option<Conn> {
        match version {
            Version::Http1 => {
                let mut idle = self.idle_h1.lock().unwrap_or_else(|e| e.into_inner());
                let (since, s) = idle.last()?;
                if reusable(*since, Instant::now()) && s.is_ready() {
                    idle.pop().map(|(_, s)| Conn::H1(s))
                } else {
                    None
                }
            }
            Version::Http2 => {
                let slot = self.h2.try_lock().ok()?;
                let s = slot.as_ref().filter(|s| s.is_ready())?;
                Some(Conn::H2(s.clone()))
            }
        }
    }

    /// A connection for one request; errors are connect failures (nothing of
    /// the request was sent, so it may be retried elsewhere).
    pub async fn checkout(&self, version: Version, connector: &dyn Connector) -> io::Result<Conn> {
        match version {
            Version::Http1 => {
                loop {
                    let idle = self.idle_h1.lock().unwrap_or_else(|e| e.into_inner()).pop();
                    let Some((since, mut s)) = idle else { break };
                    // A connection comes back when its response body ended;
                    // the dispatcher may need a moment to become ready.
                    if reusable(since, Instant::now()) && !s.is_closed() && s.ready().await.is_ok()
                    {
                        return Ok(Conn::H1(s));
                    }
                }
                // Rare and large, like every dial here: boxed (see
                // `Forward::send`).
                Ok(Conn::H1(Box::pin(self.connect_h1(connector, false)).await?))
            }
            Version::Http2 => {
                let mut slot = self.h2.lock().await;
                if let Some(s) = slot.as_ref().filter(|s| !s.is_closed()) {
                    return Ok(Conn::H2(s.clone()));
                }
                let sender = Box::pin(self.connect_h2(connector)).await?;
                *slot = Some(sender.clone());
                Ok(Conn::H2(sender))
            }
        }
    }

    /// A new HTTP/2 connection.
    async fn connect_h2(
        &self,
        connector: &dyn Connector,
    ) -> io::Result<http2::SendRequest<Incoming>> {
        let io = connector.connect_for(self.addr, Carried::Http2).await?;
        let (sender, conn) = http2::Builder::new(TokioExecutor::new())
            .handshake(TokioIo::new(io))
            .await
            .map_err(to_io)?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "h2 client connection closed");
            }
        });
        Ok(sender)
    }

    /// A new HTTP/1 connection; with `upgrades` it supports 101/CONNECT and
    /// is never pooled.
    pub async fn connect_h1(
        &self,
        connector: &dyn Connector,
        upgrades: bool,
    ) -> io::Result<http1::SendRequest<Incoming>> {
        let io = connector.connect_for(self.addr, Carried::Http1).await?;
        let (sender, conn) = http1::Builder::new()
            .handshake(TokioIo::new(io))
            .await
            .map_err(to_io)?;
        tokio::spawn(async move {
            let res = if upgrades {
                conn.with_upgrades().await
            } else {
                conn.await
            };
            if let Err(e) = res {
                tracing::debug!(error = %e, "h1 client connection closed");
            }
        });
        Ok(sender)
    }

    /// Sends `req` on an HTTP/1 connection, which returns to the pool once
    /// the response body has been read to its end.
    ///
    /// A pooled connection may turn out to be closing (the server's
    /// keep-alive timeout raced us); hyper then hands the request back
    /// unsent and it goes once more on a fresh connection.
    ///
    /// One function per version, and not `async fn`s (which keep their
    /// arguments twice: as passed, and moved into locals on the first
    /// poll): a future is as large as its largest state, and every
    /// request's future is moved by value.
    #[allow(clippy::manual_async_fn)] // see above
    pub fn send_h1<'a>(
        &'a self,
        mut s: http1::SendRequest<Incoming>,
        req: http::Request<Incoming>,
        connector: &'a dyn Connector,
    ) -> impl Future<Output = Result<http::Response<Body>, SendError>> + 'a {
        async move {
            let rsp = match s.try_send_request(req).await {
                Ok(rsp) => rsp,
                // Rare, and what it holds is large: boxed, so that every
                // request's future stays small.
                Err(e) => {
                    let (fresh, rsp) = Box::pin(self.recover_h1(e, connector)).await?;
                    s = fresh;
                    rsp
                }
            };
            let idle = self.idle_h1.clone();
            Ok(rsp.map(|b| {
                let mut body = ReturnToPool {
                    inner: b,
                    conn: Some((s, idle)),
                };
                if body.inner.is_end_stream() {
                    body.give_back();
                }
                body.boxed_unsync()
            }))
        }
    }

    /// Sends `req` on the shared HTTP/2 connection; if it went away (GOAWAY,
    /// reset) before the request was sent, on a new one.
    #[allow(clippy::manual_async_fn)] // see `send_h1`
    pub fn send_h2<'a>(
        &'a self,
        mut s: http2::SendRequest<Incoming>,
        req: http::Request<Incoming>,
        connector: &'a dyn Connector,
    ) -> impl Future<Output = Result<http::Response<Body>, SendError>> + 'a {
        async move {
            s.ready().await.map_err(SendError::Http)?;
            let rsp = match s.try_send_request(req).await {
                Ok(rsp) => rsp,
                // Rare: boxed, as above.
                Err(e) => Box::pin(self.recover_h2(e, connector)).await?,
            };
            Ok(rsp.map(|b| b.boxed_unsync()))
        }
    }

    /// After a pooled HTTP/1 connection failed a request: if the request
    /// went unsent (the connection was closing), sends it on a new one.
    async fn recover_h1(
        &self,
        mut e: TrySendError<http::Request<Incoming>>,
        connector: &dyn Connector,
    ) -> Result<(http1::SendRequest<Incoming>, http::Response<Incoming>), SendError> {
        match e.take_message() {
            Some(req) => {
                tracing::debug!(endpoint = %self.addr, "pooled connection closed; resending on a new one");
                self.resend_h1(req, connector).await
            }
            None => Err(SendError::Http(e.into_error())),
        }
    }

    /// After the shared HTTP/2 connection failed a request: if the request
    /// went unsent (GOAWAY, reset), reconnects once and sends it.
    async fn recover_h2(
        &self,
        mut e: TrySendError<http::Request<Incoming>>,
        connector: &dyn Connector,
    ) -> Result<http::Response<Incoming>, SendError> {
        match e.take_message() {
            Some(req) => self.resend_h2(req, connector).await,
            None => Err(SendError::Http(e.into_error())),
        }
    }

    /// Sends on a new HTTP/1 connection a request a pooled one handed back
    /// unsent.
    async fn resend_h1(
        &self,
        req: http::Request<Incoming>,
        connector: &dyn Connector,
    ) -> Result<(http1::SendRequest<Incoming>, http::Response<Incoming>), SendError> {
        let mut s = self
            .connect_h1(connector, false)
            .await
            .map_err(SendError::Connect)?;
        let rsp = s.send_request(req).await.map_err(SendError::Http)?;
        Ok((s, rsp))
    }

    /// Sends on a new HTTP/2 connection a request the shared one handed back
    /// unsent (it went away: GOAWAY, reset).
    async fn resend_h2(
        &self,
        req: http::Request<Incoming>,
        connector: &dyn Connector,
    ) -> Result<http::Response<Incoming>, SendError> {
        {
            let mut slot = self.h2.lock().await;
            if slot.as_ref().is_some_and(|s| s.is_closed()) {
                *slot = None;
            }
        }
        let Conn::H2(mut fresh) = self
            .checkout(Version::Http2, connector)
            .await
            .map_err(SendError::Connect)?
        else {
            unreachable!("asked for HTTP/2")
        };
        fresh.ready().await.map_err(SendError::Http)?;
        fresh.send_request(req).await.map_err(SendError::Http)
    }
}

/// Why sending failed.
#[derive(Debug)]
pub enum SendError {
    /// A replacement connection could not be opened (nothing was sent).
    Connect(io::Error),
    /// The request failed on the connection.
    Http(hyper::Error),
}

type Idle = Arc<Mutex<Vec<(Instant, http1::SendRequest<Incoming>)>>>;

/// A response body that hands its HTTP/1 connection back to the pool when
/// it ends (and drops it, closing the connection, if abandoned early).
struct ReturnToPool {
    inner: Incoming,
    conn: Option<(http1::SendRequest<Incoming>, Idle)>,
}

impl ReturnToPool {
    fn give_back(&mut self) {
        if let Some((s, idle)) = self.conn.take() {
            // One clock read per request, not one per idle connection.
            let now = Instant::now();
            let mut idle = idle.lock().unwrap_or_else(|e| e.into_inner());
            // Pushed in time order: only when the oldest has expired is
            // there anything to drop.
            if idle
                .first()
                .is_some_and(|(since, _)| !reusable(*since, now))
            {
                idle.retain(|(since, _)| reusable(*since, now));
            }
            if idle.len() < MAX_IDLE_H1 && !s.is_closed() {
                idle.push((now, s));
            }
        }
    }
}

impl http_body::Body for ReturnToPool {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let res = Pin::new(&mut self.inner).poll_frame(cx);
        match &res {
            Poll::Ready(None) => self.give_back(),
            Poll::Ready(Some(Ok(_))) if self.inner.is_end_stream() => self.give_back(),
            Poll::Ready(Some(Err(_))) => self.conn = None,
            _ => {}
        }
        res
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
