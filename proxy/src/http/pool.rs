//! Reusable client connections to one endpoint: a stack of idle HTTP/1
//! connections (returned when a response body ends) and one multiplexed
//! HTTP/2 connection.

use super::h1::{H1Conn, H1Error, ResponseBody};
use super::{Body, BoxError, Version};
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
    H1(H1Conn),
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
                take_idle(&mut idle, Instant::now()).map(Conn::H1)
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
                let idle = take_idle(
                    &mut self.idle_h1.lock().unwrap_or_else(|e| e.into_inner()),
                    Instant::now(),
                );
                if let Some(c) = idle {
                    return Ok(Conn::H1(c));
                }
                let io = connector.connect_for(self.addr, Carried::Http1).await?;
                Ok(Conn::H1(H1Conn::new(io)))
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

    /// A new HTTP/1 connection (hyper's) for one Upgrade or CONNECT
    /// request: never pooled.
    pub async fn connect_upgrade(
        &self,
        connector: &dyn Connector,
    ) -> io::Result<http1::SendRequest<Incoming>> {
        let io = connector.connect_for(self.addr, Carried::Http1).await?;
        let (sender, conn) = http1::Builder::new()
            .handshake(TokioIo::new(io))
            .await
            .map_err(to_io)?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "h1 upgrade connection closed");
            }
        });
        Ok(sender)
    }

    /// Sends `req` on an HTTP/1 connection, which returns to the pool once
    /// the response body has been read to its end.
    ///
    /// One function per version, and not `async fn`s (which keep their
    /// arguments twice: as passed, and moved into locals on the first
    /// poll): a future is as large as its largest state, and every
    /// request's future is moved by value.
    #[allow(clippy::manual_async_fn)] // see above
    pub fn send_h1(
        &self,
        conn: H1Conn,
        req: http::Request<Incoming>,
    ) -> impl Future<Output = Result<http::Response<Body>, SendError>> + '_ {
        async move {
            let rsp = conn
                .send(req)
                .await
                .map_err(|e| SendError::Http(e.into()))?;
            Ok(rsp.map(|inner| {
                let mut body = ReturnToPool {
                    inner,
                    idle: Some(self.idle_h1.clone()),
                };
                body.give_back_if_ended();
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
            s.ready().await.map_err(SendError::hyper)?;
            let rsp = match s.try_send_request(req).await {
                Ok(rsp) => rsp,
                // Rare, and what it holds is large: boxed, so that every
                // request's future stays small.
                Err(e) => Box::pin(self.recover_h2(e, connector)).await?,
            };
            Ok(rsp.map(|b| b.map_err(BoxError::from).boxed_unsync()))
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
            None => Err(SendError::hyper(e.into_error())),
        }
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
        fresh.ready().await.map_err(SendError::hyper)?;
        fresh.send_request(req).await.map_err(SendError::hyper)
    }
}

/// Why sending failed.
#[derive(Debug)]
pub enum SendError {
    /// A replacement connection could not be opened (nothing was sent).
    Connect(io::Error),
    /// The request failed on the connection.
    Http(BoxError),
}

impl SendError {
    fn hyper(e: hyper::Error) -> Self {
        SendError::Http(e.into())
    }
}

type Idle = Arc<Mutex<Vec<(Instant, H1Conn)>>>;

/// The most recently idled connection that can take a request now. They
/// were pushed in time order: once the newest is too old, all are.
fn take_idle(idle: &mut Vec<(Instant, H1Conn)>, now: Instant) -> Option<H1Conn> {
    while let Some((since, mut conn)) = idle.pop() {
        if !reusable(since, now) {
            idle.clear();
            return None;
        }
        if conn.is_open_and_quiet() {
            return Some(conn);
        }
    }
    None
}

/// A response body that hands its HTTP/1 connection back to the pool when
/// it ends (and drops it, closing the connection, if abandoned early).
struct ReturnToPool {
    inner: ResponseBody,
    idle: Option<Idle>,
}

impl ReturnToPool {
    fn give_back_if_ended(&mut self) {
        if !self.inner.is_end_stream() {
            return;
        }
        let Some(idle) = self.idle.take() else { return };
        let Some(conn) = self.inner.take_reusable() else {
            return;
        };
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
        if idle.len() < MAX_IDLE_H1 {
            idle.push((now, conn));
        }
    }
}

impl http_body::Body for ReturnToPool {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let res = Pin::new(&mut self.inner).poll_frame(cx);
        if res.is_ready() {
            self.give_back_if_ended();
        }
        res.map(|f| f.map(|r| r.map_err(|e: H1Error| BoxError::from(e))))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
