//! Proxy errors and the one place they become HTTP responses.

use super::{full, Body, BoxError};
use http::{Response, StatusCode};

/// Why the proxy could not get a response from upstream.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// No service or endpoint for the request's destination.
    #[error("no route to {0}")]
    NoRoute(String),
    /// The destination service has no (healthy) endpoint.
    #[error("no endpoints for {0}")]
    NoEndpoints(String),
    /// Connecting failed on every attempt.
    #[error("connect to {addr} failed: {source}")]
    Connect {
        /// The last endpoint tried.
        addr: std::net::SocketAddr,
        /// The connect error.
        source: std::io::Error,
    },
    /// The upstream connection failed after the request was sent.
    #[error("upstream error: {0}")]
    Upstream(BoxError),
    /// The route's timeout expired before response headers.
    #[error("request timed out after {0} ms")]
    Timeout(u64),
    /// Inbound policy denied the request.
    #[error("forbidden: {0}")]
    Forbidden(String),
}

impl ProxyError {
    /// The status code the client sees.
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::NoRoute(_) | ProxyError::NoEndpoints(_) => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::Connect { .. } | ProxyError::Upstream(_) => StatusCode::BAD_GATEWAY,
            ProxyError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::Forbidden(_) => StatusCode::FORBIDDEN,
        }
    }

    /// The response sent to the client, with the reason in
    /// `l5d-proxy-error`-style header `meshlet-proxy-error`.
    pub fn into_response(self) -> Response<Body> {
        let msg = self.to_string();
        let mut rsp = Response::new(full(msg.clone()));
        *rsp.status_mut() = self.status();
        if let Ok(v) = http::HeaderValue::from_str(&msg) {
            rsp.headers_mut().insert("meshlet-proxy-error", v);
        }
        rsp
    }
}
