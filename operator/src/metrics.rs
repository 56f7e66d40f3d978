//! The operator's own Prometheus metrics (prometheus-client): watch events
//! and errors, recomputes, config pushes, subscribers, propagation latency,
//! Events published, leadership.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Label set naming a watched kind.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// The kind, e.g. `TrafficSplit`.
    pub kind: String,
}

/// Label set of a certify answer.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CertifyLabels {
    /// `issued` or `refused`.
    pub result: String,
    /// Why it was refused (`none` when issued).
    pub reason: String,
}

/// Every metric the operator exposes.
pub struct Metrics {
    registry: Registry,
    watch_events: Family<KindLabel, Counter>,
    watch_errors: Family<KindLabel, Counter>,
    /// Full recomputes of the cluster's configs.
    pub recomputes: Counter,
    /// How long a recompute plus publish took, seconds.
    pub recompute_seconds: Histogram,
    /// Changed configs pushed to subscribers (once per workload group).
    pub config_pushes: Counter,
    /// Config stream subscribers connected now.
    pub subscribers: Gauge,
    /// Subscriptions refused (authentication, unknown pod, bad request).
    pub subscriptions_refused: Counter,
    /// From the first watch event of a change to the push, seconds.
    pub propagation_seconds: Histogram,
    /// Events published about misconfigured SMI objects.
    pub events_published: Counter,
    /// 1 while this replica holds the leader Lease.
    pub leader: Gauge,
    certify_requests: Family<CertifyLabels, Counter>,
    /// 1 while the issuer's anchor is in the trusted bundle (else the CA
    /// refuses to sign).
    pub identity_issuer_trusted: Gauge,
    /// Issuer reloads after the issuer Secret changed.
    pub identity_issuer_reloads: Counter,
    /// Issuer Secret or trust anchors ConfigMap changes that were unusable.
    pub identity_load_errors: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("meshlet_operator");
        let m = Metrics {
            watch_events: Family::default(),
            watch_errors: Family::default(),
            recomputes: Counter::default(),
            recompute_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 14)),
            config_pushes: Counter::default(),
            subscribers: Gauge::default(),
            subscriptions_refused: Counter::default(),
            propagation_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 14)),
            events_published: Counter::default(),
            leader: Gauge::default(),
            certify_requests: Family::default(),
            identity_issuer_trusted: Gauge::default(),
            identity_issuer_reloads: Counter::default(),
            identity_load_errors: Counter::default(),
            registry: Registry::default(),
        };
        registry.register(
            "watch_events",
            "Watch events received, by kind",
            m.watch_events.clone(),
        );
        registry.register(
            "watch_errors",
            "Watch errors (retried with backoff), by kind",
            m.watch_errors.clone(),
        );
        registry.register(
            "recomputes",
            "Full recomputes of proxy configs",
            m.recomputes.clone(),
        );
        registry.register(
            "recompute_seconds",
            "Duration of a recompute and publish",
            m.recompute_seconds.clone(),
        );
        registry.register(
            "config_pushes",
            "Changed configs pushed to config stream subscribers, per workload",
            m.config_pushes.clone(),
        );
        registry.register(
            "subscribers",
            "Config stream subscribers connected",
            m.subscribers.clone(),
        );
        registry.register(
            "subscriptions_refused",
            "Config stream subscriptions refused",
            m.subscriptions_refused.clone(),
        );
        registry.register(
            "propagation_seconds",
            "From a watch event to the push of the changed configs",
            m.propagation_seconds.clone(),
        );
        registry.register(
            "events_published",
            "Kubernetes Events published about SMI objects",
            m.events_published.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica holds the leader Lease",
            m.leader.clone(),
        );
        registry.register(
            "certify_requests",
            "Certify requests, by result (issued, refused) and refusal reason",
            m.certify_requests.clone(),
        );
        registry.register(
            "identity_issuer_trusted",
            "1 while the issuer's trust anchor is in the trusted bundle (else no certificates are signed)",
            m.identity_issuer_trusted.clone(),
        );
        registry.register(
            "identity_issuer_reloads",
            "Issuer reloads after the issuer Secret changed",
            m.identity_issuer_reloads.clone(),
        );
        registry.register(
            "identity_load_errors",
            "Unusable changes of the issuer Secret or the trust anchors ConfigMap (previous one kept)",
            m.identity_load_errors.clone(),
        );
        Metrics { registry, ..m }
    }
}

impl Metrics {
    /// Counts a watch event of `kind`.
    pub fn watch_event(&self, kind: &str) {
        self.watch_events
            .get_or_create(&KindLabel { kind: kind.into() })
            .inc();
    }

    /// Counts a watch error of `kind`.
    pub fn watch_error(&self, kind: &str) {
        self.watch_errors
            .get_or_create(&KindLabel { kind: kind.into() })
            .inc();
    }

    /// Counts a certify answer.
    pub fn certify(&self, result: &str, reason: &str) {
        self.certify_requests
            .get_or_create(&CertifyLabels {
                result: result.into(),
                reason: reason.into(),
            })
            .inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}
