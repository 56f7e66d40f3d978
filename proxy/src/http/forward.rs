//! Proxies one HTTP request to one of a set of endpoints: pick by
//! power-of-two-choices, connect (retrying another endpoint on connect
//! failure, within the retry budget: nothing was sent yet), send, and feed
//! the outcome back into latency and outlier state.

use super::errors::ProxyError;
use super::pool::{Conn, SendError};
use super::{upgrade, Body, Version};
use crate::balance::RetryBudget;
use crate::balance::{pick, Weighted};
use crate::transport::Connector;
use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use meshlet_crds::contract::config::{OutlierPolicy, RetryPolicy};
use std::future::Future;
use std::net::SocketAddr;
use std::time::Instant;

/// What one forward needs.
pub struct Forward<'a> {
    /// Candidate endpoints.
    pub endpoints: &'a [Weighted],
    /// How to dial them.
    pub connector: &'a dyn Connector,
    /// The HTTP version to speak upstream (the client's).
    pub version: Version,
    /// Retry policy and budget for connect failures.
    pub retry: Option<&'a (RetryPolicy, RetryBudget)>,
    /// When an endpoint counts as failing.
    pub outlier: &'a OutlierPolicy,
    /// Names the destination in errors.
    pub destination: &'a str,
}

/// Hop-by-hop headers a proxy must not forward on HTTP/1 (besides
/// `Connection` and the headers it names).
static HOP_BY_HOP: [http::HeaderName; 5] = [
    http::HeaderName::from_static("keep-alive"),
    http::HeaderName::from_static("proxy-connection"),
    http::header::PROXY_AUTHENTICATE,
    http::header::TE,
    http::header::TRAILER,
];

fn strip_hop_by_hop(headers: &mut http::HeaderMap) {
    // Most requests carry none: one pass over the names instead of a hashed
    // removal per hop-by-hop header.
    if !headers
        .keys()
        .any(|k| k == http::header::CONNECTION || HOP_BY_HOP.contains(k))
    {
        return;
    }
    let listed: Vec<http::HeaderName> = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| http::HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    headers.remove(http::header::CONNECTION);
    for h in HOP_BY_HOP.iter() {
        headers.remove(h);
    }
}

impl<'a> Forward<'a> {
    /// Sends `req` and returns the response headers.
    ///
    /// Not an `async fn`, which would keep `req` twice (see
    /// `ConnPool::send_h1`).
    #[allow(clippy::manual_async_fn)] // see above
    pub fn send(
        &self,
        mut req: Request<Incoming>,
    ) -> impl Future<Output = Result<Response<Body>, ProxyError>> + use<'_, 'a> {
        async move {
            let upgrade = self.version == Version::Http1 && upgrade::is_upgrade(&req);
            if self.version == Version::Http1 && !upgrade {
                strip_hop_by_hop(req.headers_mut());
            }
            let max_attempts = self.retry.map_or(1, |(p, b)| {
                b.deposit();
                p.max_attempts.max(1)
            });
            let mut tried: Vec<SocketAddr> = Vec::new();
            let mut last_error = None;
            loop {
                let Some(w) = pick(self.endpoints, &tried) else {
                    return Err(last_error
                        .unwrap_or_else(|| ProxyError::NoEndpoints(self.destination.to_string())));
                };
                let ep = &w.endpoint;
                // Upgrades are rare and their futures large: boxed, so that every
                // request's future (moved by value per request) stays small.
                let conn = if upgrade {
                    Box::pin(ep.pool.connect_upgrade(self.connector))
                        .await
                        .map(Attempt::Upgrade)
                } else if let Some(conn) = ep.pool.ready_now(self.version) {
                    Ok(Attempt::Pooled(conn))
                } else {
                    // Waiting for or dialing a connection: boxed, as above.
                    Box::pin(ep.pool.checkout(self.version, self.connector))
                        .await
                        .map(Attempt::Pooled)
                };
                let conn = match conn {
                    Ok(c) => c,
                    Err(source) => {
                        tracing::debug!(endpoint = %ep.addr, error = %source, "connect failed");
                        ep.record_failure(self.outlier);
                        tried.push(ep.addr);
                        last_error = Some(ProxyError::Connect {
                            addr: ep.addr,
                            source,
                        });
                        let may_retry = (tried.len() as u32) < max_attempts
                            && self.retry.is_some_and(|(_, b)| b.withdraw());
                        if may_retry {
                            continue;
                        }
                        return Err(last_error.expect("set above"));
                    }
                };
                let _in_flight = ep.start_request();
                let start = Instant::now();
                let result = match conn {
                    Attempt::Upgrade(sender) => Box::pin(send_upgrade(sender, req)).await,
                    Attempt::Pooled(Conn::H1(c)) => ep.pool.send_h1(c, req).await,
                    Attempt::Pooled(Conn::H2(s)) => ep.pool.send_h2(s, req, self.connector).await,
                };
                return match result {
                    Ok(rsp) => {
                        ep.observe_latency(start.elapsed());
                        if rsp.status().is_server_error() {
                            ep.record_failure(self.outlier);
                        } else {
                            ep.record_success();
                        }
                        Ok(rsp)
                    }
                    Err(e) => {
                        ep.record_failure(self.outlier);
                        Err(match e {
                            SendError::Connect(source) => ProxyError::Connect {
                                addr: ep.addr,
                                source,
                            },
                            SendError::Http(e) => ProxyError::Upstream(e),
                        })
                    }
                };
            }
        }
    }
}

/// The connection one attempt sends on.
enum Attempt {
    /// From the endpoint's pool.
    Pooled(Conn),
    /// A dedicated connection for an Upgrade or CONNECT.
    Upgrade(hyper::client::conn::http1::SendRequest<Incoming>),
}

/// Sends an Upgrade or CONNECT request and, once upstream agrees, joins
/// the two upgraded connections.
async fn send_upgrade(
    mut sender: hyper::client::conn::http1::SendRequest<Incoming>,
    mut req: Request<Incoming>,
) -> Result<Response<Body>, SendError> {
    let on_client = hyper::upgrade::on(&mut req);
    let method = req.method().clone();
    sender
        .send_request(req)
        .await
        .map(|mut rsp| {
            if upgrade::accepted(&method, rsp.status()) {
                upgrade::splice(on_client, hyper::upgrade::on(&mut rsp));
            }
            rsp.map(|b| b.map_err(Into::into).boxed_unsync())
        })
        .map_err(|e| SendError::Http(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> http::HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (http::HeaderName::from_static(k), v.parse().unwrap()))
            .collect()
    }

    #[test]
    fn strips_hop_by_hop_headers_and_those_connection_names() {
        let mut h = headers(&[
            ("host", "web"),
            ("connection", "close, x-trace"),
            ("x-trace", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("te", "trailers"),
            ("trailer", "x-sum"),
            ("proxy-authenticate", "Basic"),
            ("accept", "*/*"),
        ]);
        strip_hop_by_hop(&mut h);
        let mut left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        left.sort();
        assert_eq!(left, ["accept", "host"]);
    }

    #[test]
    fn leaves_end_to_end_headers_alone() {
        let mut h = headers(&[("host", "web"), ("accept", "*/*"), ("x-b3-traceid", "1")]);
        let before = h.clone();
        strip_hop_by_hop(&mut h);
        assert_eq!(h, before);
        // A hop-by-hop header alone (no Connection) is still removed.
        let mut h = headers(&[("host", "web"), ("te", "trailers")]);
        strip_hop_by_hop(&mut h);
        assert!(!h.contains_key("te"));
    }
}
