//! Prometheus metric and label names exposed by every proxy.
//!
//! They follow Linkerd's names so that Flagger, Linkerd-style PromQL queries
//! and existing Grafana dashboards work unchanged; the operator reads the same
//! counters to answer the SMI TrafficMetrics API.

/// Counter: requests sent (outbound) or received (inbound).
pub const REQUEST_TOTAL: &str = "request_total";
/// Counter: responses, labelled with [`STATUS_CODE`] and [`CLASSIFICATION`].
pub const RESPONSE_TOTAL: &str = "response_total";
/// Histogram in milliseconds from request start to response headers; exposed
/// as `response_latency_ms_bucket`, `_sum` and `_count`.
pub const RESPONSE_LATENCY_MS: &str = "response_latency_ms";
/// Counter: TCP connections opened.
pub const TCP_OPEN_TOTAL: &str = "tcp_open_total";
/// Counter: TCP connections closed.
pub const TCP_CLOSE_TOTAL: &str = "tcp_close_total";
/// Counter: bytes read from the peer that opened the connection.
pub const TCP_READ_BYTES_TOTAL: &str = "tcp_read_bytes_total";
/// Counter: bytes written to the peer that opened the connection.
pub const TCP_WRITE_BYTES_TOTAL: &str = "tcp_write_bytes_total";

/// Buckets of [`RESPONSE_LATENCY_MS`], Linkerd's, so dashboards line up.
pub const LATENCY_BUCKETS_MS: &[f64] = &[
    1.0, 2.0, 3.0, 4.0, 5.0, 10.0, 20.0, 30.0, 40.0, 50.0, 100.0, 200.0, 300.0, 400.0, 500.0,
    1000.0, 2000.0, 3000.0, 4000.0, 5000.0, 10000.0, 20000.0, 30000.0, 40000.0, 50000.0,
];

/// Label: [`DIRECTION_INBOUND`] or [`DIRECTION_OUTBOUND`].
pub const DIRECTION: &str = "direction";
/// Value of [`DIRECTION`] for traffic coming into the pod.
pub const DIRECTION_INBOUND: &str = "inbound";
/// Value of [`DIRECTION`] for traffic the pod sends.
pub const DIRECTION_OUTBOUND: &str = "outbound";

/// Label: the proxy's own namespace (constant per proxy).
pub const NAMESPACE: &str = "namespace";
/// Label: the proxy's own Deployment (constant per proxy).
pub const DEPLOYMENT: &str = "deployment";
/// Label: the proxy's own pod (constant per proxy).
pub const POD: &str = "pod";
/// Label: namespace of the destination service (outbound).
pub const DST_NAMESPACE: &str = "dst_namespace";
/// Label: the destination (backend) service actually called (outbound).
pub const DST_SERVICE: &str = "dst_service";
/// Label: the Deployment of the destination endpoint, when known.
pub const DST_DEPLOYMENT: &str = "dst_deployment";
/// Label: the request's authority (`svc.ns.svc.cluster.local:port`).
pub const AUTHORITY: &str = "authority";
/// Label: the route (HTTPRouteGroup match) name, empty when none matched.
pub const ROUTE: &str = "route";
/// Label: the HTTP status code of a response.
pub const STATUS_CODE: &str = "status_code";
/// Label: [`CLASSIFICATION_SUCCESS`] or [`CLASSIFICATION_FAILURE`].
pub const CLASSIFICATION: &str = "classification";
/// Value of [`CLASSIFICATION`]: a response below 500.
pub const CLASSIFICATION_SUCCESS: &str = "success";
/// Value of [`CLASSIFICATION`]: a 5xx response or no response at all.
pub const CLASSIFICATION_FAILURE: &str = "failure";
/// Label: `true` when the connection was mTLS, else [`TLS_NO_IDENTITY`].
pub const TLS: &str = "tls";
/// Value of [`TLS`] for plaintext connections.
pub const TLS_NO_IDENTITY: &str = "no_identity";
/// Label: the client's identity (inbound, mTLS only).
pub const CLIENT_ID: &str = "client_id";
/// Label: the server's identity (outbound, mTLS only).
pub const SERVER_ID: &str = "server_id";
/// Counter: inbound HTTP requests refused by access policy (403).
pub const INBOUND_HTTP_AUTHZ_DENY_TOTAL: &str = "inbound_http_authz_deny_total";
/// Counter: inbound TCP connections refused by access policy (closed).
pub const INBOUND_TCP_AUTHZ_DENY_TOTAL: &str = "inbound_tcp_authz_deny_total";
/// Label on the deny counters: why (see [`DENY_REASONS`]).
pub const REASON: &str = "reason";
/// Values of [`REASON`]: no TrafficTarget lists the client; the client is
/// listed but no rule matches the request; plaintext where mTLS is required.
pub const DENY_REASONS: &[&str] = &["unauthorized_source", "no_matching_rule", "tls_required"];
/// Label on TCP metrics: why the connection closed, empty on a clean close.
pub const ERRNO: &str = "errno";

/// Whether a response status counts as a failure in [`CLASSIFICATION`].
pub fn classify_status(status: u16) -> &'static str {
    if status >= 500 {
        CLASSIFICATION_FAILURE
    } else {
        CLASSIFICATION_SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_hundreds_are_failures() {
        assert_eq!(classify_status(200), CLASSIFICATION_SUCCESS);
        assert_eq!(classify_status(404), CLASSIFICATION_SUCCESS);
        assert_eq!(classify_status(503), CLASSIFICATION_FAILURE);
    }

    #[test]
    fn latency_buckets_increase() {
        assert!(LATENCY_BUCKETS_MS.windows(2).all(|w| w[0] < w[1]));
    }
}
