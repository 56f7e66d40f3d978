//! Prometheus metrics with Linkerd's names (see the contract's `metrics`
//! module), encoded in the text format by prometheus-client.

use meshlet_crds::contract::metrics as names;
use prometheus_client::encoding::{EncodeLabelSet, LabelSetEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::borrow::Cow;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The proven identity of the other side of a connection, as Linkerd labels
/// it: `client_id` on inbound metrics, `server_id` on outbound ones, no
/// label at all without mTLS. Values are bounded by the ServiceAccounts
/// that may talk to the pod, so cardinality stays small.
#[derive(Clone, Debug, Default, Hash, PartialEq, Eq)]
pub enum PeerId {
    /// Plaintext, or identity unknown: no label.
    #[default]
    None,
    /// Inbound: the verified client identity.
    Client(Arc<str>),
    /// Outbound: the verified server identity.
    Server(Arc<str>),
}

impl EncodeLabelSet for PeerId {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        match self {
            PeerId::None => Ok(()),
            PeerId::Client(id) => [(names::CLIENT_ID, &**id)].encode(encoder),
            PeerId::Server(id) => [(names::SERVER_ID, &**id)].encode(encoder),
        }
    }
}

/// Labels of request counts.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `inbound` or `outbound`.
    pub direction: &'static str,
    /// Destination namespace (outbound; empty inbound).
    pub dst_namespace: String,
    /// Destination backend service (outbound; empty inbound).
    pub dst_service: String,
    /// Matched route name, empty when none.
    pub route: String,
    /// TLS status of the connection.
    pub tls: &'static str,
    /// The peer's identity (mTLS only).
    #[prometheus(flatten)]
    pub peer_id: PeerId,
}

impl RequestLabels {
    /// Labels of requests a proxy serves (inbound): no destination or route
    /// labels, the connection's TLS status and client identity.
    pub fn inbound(tls: &'static str, peer_id: PeerId) -> Self {
        Self {
            direction: names::DIRECTION_INBOUND,
            dst_namespace: String::new(),
            dst_service: String::new(),
            route: String::new(),
            tls,
            peer_id,
        }
    }
}

/// Labels of responses and latency.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResponseLabels {
    /// The request's labels.
    #[prometheus(flatten)]
    pub request: RequestLabels,
    /// HTTP status; proxy-generated errors carry their own status.
    pub status_code: u16,
    /// `success` or `failure`.
    pub classification: &'static str,
}

/// The series of one set of request labels, resolved once (per inbound
/// connection, per outbound route and backend of a config) so that a
/// request costs atomic increments instead of three lookups that hash every
/// label and clone its strings.
#[derive(Debug)]
pub struct RequestMetrics {
    labels: RequestLabels,
    requests: Counter,
    /// Response counter and latency histogram by status code: a handful of
    /// codes, so a short list.
    by_status: Mutex<Vec<(u16, Counter, Histogram)>>,
}

impl RequestMetrics {
    /// The labels of these series.
    pub fn labels(&self) -> &RequestLabels {
        &self.labels
    }

    /// Counts a request.
    pub fn request(&self) {
        self.requests.inc();
    }

    /// Counts a response with `status` and its latency (series of new
    /// status codes are created in `metrics`).
    pub fn response(&self, metrics: &Metrics, status: u16, latency: Duration) {
        let mut by_status = self.by_status.lock().unwrap_or_else(|e| e.into_inner());
        let i = match by_status.iter().position(|(s, ..)| *s == status) {
            Some(i) => i,
            None => {
                let labels = response_labels(self.labels.clone(), status);
                by_status.push((
                    status,
                    metrics.responses.get_or_create(&labels).clone(),
                    metrics.latency.get_or_create(&labels).clone(),
                ));
                by_status.len() - 1
            }
        };
        let (_, responses, latency_ms) = &by_status[i];
        latency_ms.observe(latency.as_secs_f64() * 1000.0);
        responses.inc();
    }
}

/// [`RequestMetrics`] by a key that stands for their labels (e.g. indices
/// into a compiled config), resolved on first use.
#[derive(Debug)]
pub struct RequestMetricsCache<K>(Mutex<foldhash::HashMap<K, Arc<RequestMetrics>>>);

impl<K> Default for RequestMetricsCache<K> {
    fn default() -> Self {
        Self(Mutex::new(foldhash::HashMap::default()))
    }
}

impl<K: Hash + Eq> RequestMetricsCache<K> {
    /// The series for `key`; `labels` makes their labels the first time.
    pub fn get(
        &self,
        metrics: &Metrics,
        key: K,
        labels: impl FnOnce() -> RequestLabels,
    ) -> Arc<RequestMetrics> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(key)
            .or_insert_with(|| Arc::new(metrics.request_metrics(labels())))
            .clone()
    }
}

fn response_labels(request: RequestLabels, status: u16) -> ResponseLabels {
    ResponseLabels {
        request,
        status_code: status,
        classification: names::classify_status(status),
    }
}

/// Labels of TCP metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TcpLabels {
    /// `inbound` or `outbound`.
    pub direction: &'static str,
    /// Destination namespace, empty when unknown.
    pub dst_namespace: String,
    /// Destination service, empty when unknown.
    pub dst_service: String,
    /// TLS status of the connection.
    pub tls: &'static str,
    /// The peer's identity (mTLS only).
    #[prometheus(flatten)]
    pub peer_id: PeerId,
}

/// Labels of the inbound authorization deny counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DenyLabels {
    /// One of the contract's `DENY_REASONS`.
    pub reason: &'static str,
    /// TLS status of the connection.
    pub tls: &'static str,
    /// The client's identity (mTLS only).
    #[prometheus(flatten)]
    pub peer_id: PeerId,
}

/// The proxy's counters and histograms.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    responses: Family<ResponseLabels, Counter>,
    latency: Family<ResponseLabels, Histogram, fn() -> Histogram>,
    tcp_open: Family<TcpLabels, Counter>,
    tcp_close: Family<TcpLabels, Counter>,
    tcp_read: Family<TcpLabels, Counter>,
    tcp_write: Family<TcpLabels, Counter>,
    http_deny: Family<DenyLabels, Counter>,
    tcp_deny: Family<DenyLabels, Counter>,
}

fn latency_histogram() -> Histogram {
    Histogram::new(names::LATENCY_BUCKETS_MS.iter().copied())
}

/// prometheus-client appends `_total` to counters itself.
fn counter_name(full: &'static str) -> &'static str {
    full.strip_suffix("_total").unwrap_or(full)
}

impl Metrics {
    /// Metrics carrying the proxy's own `namespace`, `deployment` and `pod`
    /// labels on every series (empty ones are left out).
    pub fn new(workload: &[(&'static str, String)]) -> Self {
        let labels: Vec<(Cow<'static, str>, Cow<'static, str>)> = workload
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (Cow::Borrowed(*k), Cow::Owned(v.clone())))
            .collect();
        let mut registry = Registry::with_labels(labels.into_iter());
        let m = Self {
            requests: Family::default(),
            responses: Family::default(),
            latency: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            tcp_open: Family::default(),
            tcp_close: Family::default(),
            tcp_read: Family::default(),
            tcp_write: Family::default(),
            http_deny: Family::default(),
            tcp_deny: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            counter_name(names::REQUEST_TOTAL),
            "Requests proxied",
            m.requests.clone(),
        );
        registry.register(
            counter_name(names::RESPONSE_TOTAL),
            "Responses, by status code and classification",
            m.responses.clone(),
        );
        registry.register(
            names::RESPONSE_LATENCY_MS,
            "Time to response headers in milliseconds",
            m.latency.clone(),
        );
        registry.register(
            counter_name(names::TCP_OPEN_TOTAL),
            "TCP connections opened",
            m.tcp_open.clone(),
        );
        registry.register(
            counter_name(names::TCP_CLOSE_TOTAL),
            "TCP connections closed",
            m.tcp_close.clone(),
        );
        registry.register(
            counter_name(names::TCP_READ_BYTES_TOTAL),
            "Bytes read from the connecting peer",
            m.tcp_read.clone(),
        );
        registry.register(
            counter_name(names::TCP_WRITE_BYTES_TOTAL),
            "Bytes written to the connecting peer",
            m.tcp_write.clone(),
        );
        registry.register(
            counter_name(names::INBOUND_HTTP_AUTHZ_DENY_TOTAL),
            "Inbound HTTP requests refused by access policy (403), by reason",
            m.http_deny.clone(),
        );
        registry.register(
            counter_name(names::INBOUND_TCP_AUTHZ_DENY_TOTAL),
            "Inbound TCP connections refused by access policy (closed), by reason",
            m.tcp_deny.clone(),
        );
        Self { registry, ..m }
    }

    /// The series of requests with `labels`, for a caller that counts many
    /// of them.
    pub fn request_metrics(&self, labels: RequestLabels) -> RequestMetrics {
        RequestMetrics {
            requests: self.requests.get_or_create(&labels).clone(),
            labels,
            by_status: Mutex::default(),
        }
    }

    /// Counts a request.
    pub fn request(&self, labels: &RequestLabels) {
        self.requests.get_or_create(labels).inc();
    }

    /// Counts a response and its latency.
    pub fn response(&self, labels: RequestLabels, status: u16, latency: Duration) {
        let labels = response_labels(labels, status);
        self.latency
            .get_or_create(&labels)
            .observe(latency.as_secs_f64() * 1000.0);
        self.responses.get_or_create(&labels).inc();
    }

    /// Counts an opened TCP connection.
    pub fn tcp_open(&self, labels: &TcpLabels) {
        self.tcp_open.get_or_create(labels).inc();
    }

    /// The (read, written) byte counters of a connection with `labels`.
    pub fn tcp_byte_counters(&self, labels: &TcpLabels) -> (Counter, Counter) {
        (
            self.tcp_read.get_or_create(labels).clone(),
            self.tcp_write.get_or_create(labels).clone(),
        )
    }

    /// Counts a closed TCP connection.
    pub fn tcp_close(&self, labels: &TcpLabels) {
        self.tcp_close.get_or_create(labels).inc();
    }

    /// Counts an inbound HTTP request refused by access policy.
    pub fn http_deny(&self, labels: &DenyLabels) {
        self.http_deny.get_or_create(labels).inc();
    }

    /// Counts an inbound TCP connection refused by access policy.
    pub fn tcp_deny(&self, labels: &DenyLabels) {
        self.tcp_deny.get_or_create(labels).inc();
    }

    /// The metrics in the Prometheus/OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_uses_linkerd_names_and_labels() {
        let m = Metrics::new(&[(names::NAMESPACE, "shop".into()), (names::POD, "".into())]);
        let l = RequestLabels {
            direction: names::DIRECTION_OUTBOUND,
            dst_namespace: "shop".into(),
            dst_service: "web".into(),
            route: String::new(),
            tls: names::TLS_NO_IDENTITY,
            peer_id: PeerId::None,
        };
        m.request(&l);
        m.response(l, 503, std::time::Duration::from_millis(3));
        let text = m.encode();
        for needle in [
            "request_total{",
            "response_total{",
            "response_latency_ms_bucket{",
            "classification=\"failure\"",
            "status_code=\"503\"",
            "direction=\"outbound\"",
            "dst_service=\"web\"",
            "namespace=\"shop\"",
        ] {
            assert!(text.contains(needle), "{needle} missing in\n{text}");
        }
        assert!(!text.contains("pod="), "{text}");
        assert!(!text.contains("client_id"), "no identity, no label: {text}");
    }

    #[test]
    fn request_metrics_write_the_same_series_as_the_label_api() {
        let m = Metrics::new(&[]);
        let l = RequestLabels {
            direction: names::DIRECTION_OUTBOUND,
            dst_namespace: "shop".into(),
            dst_service: "web".into(),
            route: "get".into(),
            tls: names::TLS_NO_IDENTITY,
            peer_id: PeerId::None,
        };
        let cache = RequestMetricsCache::<u8>::default();
        let series = cache.get(&m, 7, || l.clone());
        assert!(Arc::ptr_eq(
            &series,
            &cache.get(&m, 7, || unreachable!("cached"))
        ));
        for status in [200, 200, 503] {
            series.request();
            series.response(&m, status, Duration::from_millis(2));
        }
        m.request(&l);
        m.response(l, 200, Duration::from_millis(2));
        let text = m.encode();
        let labels = r#"direction="outbound",dst_namespace="shop",dst_service="web",route="get",tls="no_identity""#;
        for needle in [
            format!("request_total{{{labels}}} 4"),
            format!(r#"response_total{{{labels},status_code="200",classification="success"}} 3"#),
            format!(r#"response_total{{{labels},status_code="503",classification="failure"}} 1"#),
            format!(
                r#"response_latency_ms_count{{{labels},status_code="200",classification="success"}} 3"#
            ),
        ] {
            assert!(text.contains(&needle), "{needle} missing in\n{text}");
        }
    }

    #[test]
    fn identities_and_deny_reasons_are_labels() {
        let m = Metrics::new(&[]);
        let client = PeerId::Client("spiffe://cluster.local/ns/shop/sa/web".into());
        let l = RequestLabels {
            direction: names::DIRECTION_INBOUND,
            dst_namespace: String::new(),
            dst_service: String::new(),
            route: String::new(),
            tls: "true",
            peer_id: client.clone(),
        };
        m.request(&l);
        m.response(l, 403, std::time::Duration::from_millis(1));
        let deny = DenyLabels {
            reason: names::DENY_REASONS[0],
            tls: "true",
            peer_id: client,
        };
        m.http_deny(&deny);
        m.http_deny(&deny);
        m.tcp_deny(&DenyLabels {
            reason: names::DENY_REASONS[2],
            tls: names::TLS_NO_IDENTITY,
            peer_id: PeerId::None,
        });
        m.tcp_open(&TcpLabels {
            direction: names::DIRECTION_OUTBOUND,
            dst_namespace: "shop".into(),
            dst_service: "db".into(),
            tls: "true",
            peer_id: PeerId::Server("spiffe://cluster.local/ns/shop/sa/db".into()),
        });
        let text = m.encode();
        for needle in [
            r#"request_total{direction="inbound",dst_namespace="",dst_service="",route="",tls="true",client_id="spiffe://cluster.local/ns/shop/sa/web"} 1"#,
            r#"status_code="403""#,
            r#"inbound_http_authz_deny_total{reason="unauthorized_source",tls="true",client_id="spiffe://cluster.local/ns/shop/sa/web"} 2"#,
            r#"inbound_tcp_authz_deny_total{reason="tls_required",tls="no_identity"} 1"#,
            r#"tcp_open_total{direction="outbound",dst_namespace="shop",dst_service="db",tls="true",server_id="spiffe://cluster.local/ns/shop/sa/db"} 1"#,
        ] {
            assert!(text.contains(needle), "{needle} missing in\n{text}");
        }
    }
}
