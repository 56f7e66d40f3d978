//! A single-connection HTTP client for talking to the operator: HTTP/2 or
//! HTTP/1.1, whichever the connection negotiated.

use crate::transport::BoxedIo;
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};

/// Sends requests on one connection.
pub enum Sender<B> {
    /// HTTP/1.1.
    H1(http1::SendRequest<B>),
    /// HTTP/2.
    H2(http2::SendRequest<B>),
}

/// Starts HTTP on `io`; the returned task drives the connection.
pub async fn handshake<B>(
    io: BoxedIo,
    h2: bool,
) -> Result<(Sender<B>, tokio::task::JoinHandle<()>), hyper::Error>
where
    B: http_body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let io = TokioIo::new(io);
    if h2 {
        let (s, conn) = http2::Builder::new(TokioExecutor::new())
            .handshake(io)
            .await?;
        let task = tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok((Sender::H2(s), task))
    } else {
        let (s, conn) = http1::Builder::new().handshake(io).await?;
        let task = tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok((Sender::H1(s), task))
    }
}

impl<B> Sender<B>
where
    B: http_body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    /// Sends `req` (an absolute URI); on HTTP/1.1 it goes in origin form
    /// with a Host header.
    pub async fn send(
        &mut self,
        mut req: http::Request<B>,
    ) -> Result<http::Response<Incoming>, hyper::Error> {
        match self {
            Sender::H2(s) => s.send_request(req).await,
            Sender::H1(s) => {
                if let Some(authority) = req.uri().authority().cloned() {
                    if let Ok(v) = http::HeaderValue::from_str(authority.as_str()) {
                        req.headers_mut().insert(http::header::HOST, v);
                    }
                    let path = req
                        .uri()
                        .path_and_query()
                        .map_or("/", |p| p.as_str())
                        .to_string();
                    if let Ok(uri) = path.parse() {
                        *req.uri_mut() = uri;
                    }
                }
                s.send_request(req).await
            }
        }
    }
}
