//! Wire types of the operator→proxy config stream, and the static config file.
//!
//! Transport: the proxy sends `GET /v1/proxy-config` over HTTP/2 to the
//! operator; the response body is newline-delimited JSON, one
//! [`ConfigMessage`] per line. Every message carries a FULL snapshot of the
//! proxy's config, never a delta, so a slow subscriber only ever needs the
//! latest one (the server keeps one value per proxy, e.g. in a
//! `tokio::sync::watch`, and memory stays bounded). `generation` grows with
//! every change; the proxy applies a message atomically and keeps serving the
//! last config if the stream is lost.
//!
//! The same [`ProxyConfig`] is what `meshlet-proxy run --config FILE` loads
//! (JSON or YAML) for tests and benchmarks.
//!
//! Field names are camelCase on the wire; every list and optional field has a
//! default so older proxies ignore what they do not know (unknown fields are
//! not rejected), and `version` changes only on incompatible changes.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

/// The contract version of [`ConfigMessage`]; a proxy refuses other versions.
pub const CONFIG_VERSION: u32 = 1;

/// Path of the config stream on the operator.
pub const CONFIG_STREAM_PATH: &str = "/v1/proxy-config";

/// Query parameter of [`CONFIG_STREAM_PATH`] naming the subscriber's pod namespace.
pub const CONFIG_STREAM_NAMESPACE_PARAM: &str = "namespace";
/// Query parameter of [`CONFIG_STREAM_PATH`] naming the subscriber's pod.
pub const CONFIG_STREAM_POD_PARAM: &str = "pod";

/// The request target a proxy subscribes with. Kubernetes names are DNS
/// labels, so they need no escaping.
pub fn config_stream_path_and_query(namespace: &str, pod: &str) -> String {
    format!(
        "{CONFIG_STREAM_PATH}?{CONFIG_STREAM_NAMESPACE_PARAM}={namespace}&{CONFIG_STREAM_POD_PARAM}={pod}"
    )
}

/// Content type of the config stream's body.
pub const CONFIG_STREAM_CONTENT_TYPE: &str = "application/x-ndjson";

/// One line of the config stream.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMessage {
    /// Contract version, [`CONFIG_VERSION`].
    pub version: u32,
    /// Grows by at least one on every change of this proxy's config.
    pub generation: u64,
    /// The full config snapshot.
    pub config: ProxyConfig,
}

/// Everything one proxy needs to route its pod's traffic.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct ProxyConfig {
    /// Services the app may call, with their endpoints, splits and routes.
    pub outbound: OutboundConfig,
    /// The app's own ports and who may call them.
    pub inbound: InboundConfig,
    /// Trust material for mTLS.
    pub identity: IdentityConfig,
}

/// Trust material the operator pushes so anchor rotation reaches running
/// proxies (see [`crate::contract::identity`]).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct IdentityConfig {
    /// PEM bundle of the trusted anchors; empty means "keep what you have".
    pub trust_anchors_pem: String,
}

/// Outbound side: destinations the app may call.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct OutboundConfig {
    /// Every service the proxy may route to, including split backends.
    pub services: Vec<Service>,
}

/// A Kubernetes Service as the proxy sees it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct Service {
    /// Service name.
    pub name: String,
    /// Service namespace.
    pub namespace: String,
    /// Cluster IPs; a connection to `ip:port` of one of them means this
    /// service. Empty for headless services.
    pub cluster_ips: Vec<IpAddr>,
    /// Names the service answers to in a Host header or `:authority`, with
    /// the port, e.g. `web.shop.svc.cluster.local:80`, `web.shop:80`, `web:80`.
    /// Port 80 may be omitted in the request.
    pub authorities: Vec<String>,
    /// The service's ports with their endpoints.
    pub ports: Vec<ServicePort>,
    /// The TrafficSplit whose root is this service, if any.
    pub split: Option<Split>,
    /// Per-route policies, first match wins (HTTP only).
    pub routes: Vec<Route>,
    /// Timeout for a request to this service when no route sets one.
    pub timeout_ms: Option<u64>,
    /// Outlier ejection for this service's endpoints.
    pub outlier: Option<OutlierPolicy>,
}

/// One port of a [`Service`].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct ServicePort {
    /// The service port (what clients connect to).
    pub port: u16,
    /// Port name from the Service, if any.
    pub name: Option<String>,
    /// How to treat this port's traffic.
    pub protocol: AppProtocol,
    /// Ready endpoints backing this port (already mapped to the targetPort).
    pub endpoints: Vec<Endpoint>,
}

/// How a port's traffic is handled.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub enum AppProtocol {
    /// Peek at the first bytes: HTTP/1, HTTP/2 or else opaque TCP.
    #[default]
    Detect,
    /// Opaque TCP, no detection (server-speaks-first protocols).
    Opaque,
}

/// One backend instance (a pod's `ip:targetPort`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    /// Where to connect.
    pub addr: SocketAddr,
    /// Whether a Meshlet proxy runs beside the endpoint (then mTLS is used).
    #[serde(default)]
    pub meshed: bool,
    /// Expected identity of the endpoint's proxy, `spiffe://td/ns/NS/sa/SA`.
    #[serde(default)]
    pub identity: Option<String>,
    /// Topology zone, if known.
    #[serde(default)]
    pub zone: Option<String>,
    /// Labels for metrics, e.g. `deployment`, `pod`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Relative weight in load balancing (default 1).
    #[serde(default = "default_weight")]
    pub weight: u32,
}

fn default_weight() -> u32 {
    1
}

/// A reference to a [`Service`] by namespace and name.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRef {
    /// Service name.
    pub name: String,
    /// Service namespace.
    pub namespace: String,
}

/// A TrafficSplit, computed by the operator for its root service.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct Split {
    /// Name of the TrafficSplit, for diagnostics.
    pub name: String,
    /// Backends with their weights; a backend of weight 0 gets no traffic.
    pub backends: Vec<SplitBackend>,
    /// When not empty, only requests matching one of these are split; other
    /// requests go to the root service as if there were no split.
    pub matches: Vec<HttpMatch>,
}

/// One backend of a [`Split`].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct SplitBackend {
    /// The backend service; it must also be listed in
    /// [`OutboundConfig::services`].
    pub service: ServiceRef,
    /// Relative weight.
    pub weight: u32,
    /// Root service port → backend service port. A root port missing here
    /// maps to the same port number on the backend.
    pub ports: Vec<PortMapping>,
}

/// Maps a root service port to a backend service port.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    /// Port of the root service.
    pub port: u16,
    /// Port of the backend service.
    pub backend_port: u16,
}

/// An HTTP request match (an HTTPRouteGroup match). All set fields must match.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpMatch {
    /// Match name from the HTTPRouteGroup.
    pub name: Option<String>,
    /// Regex that must match the WHOLE path (anchored).
    pub path_regex: Option<String>,
    /// Allowed methods; empty or containing `*` means any.
    pub methods: Vec<String>,
    /// Header name → regex that must match the whole value.
    pub headers: BTreeMap<String, String>,
}

/// Per-route policy on an outbound service.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct Route {
    /// Route name (metrics label `route`).
    pub name: String,
    /// The route applies when any of these matches; empty matches all.
    pub matches: Vec<HttpMatch>,
    /// Time allowed until response headers; on expiry the proxy answers 504.
    pub timeout_ms: Option<u64>,
    /// Retries after connect failures.
    pub retry: Option<RetryPolicy>,
}

/// Retry policy. Retries happen only when the request was not sent (connect
/// failure), on another endpoint, within a budget.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct RetryPolicy {
    /// Maximum attempts per request, the first included.
    pub max_attempts: u32,
    /// Retries allowed as a share of requests, e.g. 0.2.
    pub budget_ratio: f64,
    /// Retries always allowed per second, whatever the ratio.
    pub min_retries_per_second: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            budget_ratio: 0.2,
            min_retries_per_second: 10,
        }
    }
}

/// Outlier ejection: an endpoint failing `consecutiveFailures` times in a row
/// (connect errors or 5xx) is skipped for `baseEjectionMs`, doubled on each
/// repeated ejection up to `maxEjectionMs`, then probed again with real
/// traffic.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct OutlierPolicy {
    /// Failures in a row that eject an endpoint.
    pub consecutive_failures: u32,
    /// First ejection duration.
    pub base_ejection_ms: u64,
    /// Longest ejection duration.
    pub max_ejection_ms: u64,
}

impl Default for OutlierPolicy {
    fn default() -> Self {
        Self {
            consecutive_failures: 5,
            base_ejection_ms: 10_000,
            max_ejection_ms: 300_000,
        }
    }
}

/// Inbound side: the app's ports and who may call them.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct InboundConfig {
    /// The app's container ports.
    pub ports: Vec<InboundPort>,
    /// Permissive mode: allow every client, even without a TrafficTarget.
    pub permissive: bool,
    /// Access policies from TrafficTargets whose destination is this pod.
    /// Access is additive and denied by default (unless `permissive`).
    pub policies: Vec<InboundPolicy>,
    /// The pod's HTTP probe endpoints (kubelet liveness/readiness/startup
    /// `httpGet`, and `grpc` as [`GRPC_HEALTH_CHECK_PATH`]): GETs to them
    /// (the POST of the gRPC health check) are allowed without identity,
    /// so kubelet probes keep working under default deny.
    pub probes: Vec<ProbeRoute>,
}

/// Request path of a kubelet `grpc` probe (the standard gRPC health check,
/// a POST over plaintext HTTP/2).
pub const GRPC_HEALTH_CHECK_PATH: &str = "/grpc.health.v1.Health/Check";

/// One kubelet HTTP probe of the app.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct ProbeRoute {
    /// The container port the probe targets.
    pub port: u16,
    /// The exact request path the probe uses (without query).
    pub path: String,
}

/// One container port of the app.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct InboundPort {
    /// The port number the app listens on (on localhost).
    pub port: u16,
    /// How to treat this port's traffic.
    pub protocol: AppProtocol,
}

/// One TrafficTarget, resolved for this pod.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct InboundPolicy {
    /// Name of the TrafficTarget.
    pub name: String,
    /// Allowed client identities, `spiffe://td/ns/NS/sa/SA`.
    pub sources: Vec<String>,
    /// Allowed HTTP requests; empty with empty `tcpPorts` allows everything.
    pub http: Vec<HttpMatch>,
    /// Allowed TCP ports (TCPRoute), for TCP connections and any HTTP on
    /// them; empty with empty `http` allows everything.
    pub tcp_ports: Vec<u16>,
    /// Destination ports the whole grant is limited to (TrafficTarget
    /// v1alpha1/v1alpha2 `destination.port`); every port when empty.
    pub ports: Vec<u16>,
}

impl ProxyConfig {
    /// Looks up an outbound service by reference.
    pub fn service(&self, r: &ServiceRef) -> Option<&Service> {
        self.outbound
            .services
            .iter()
            .find(|s| s.name == r.name && s.namespace == r.namespace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_round_trips_in_camel_case() {
        let msg = ConfigMessage {
            version: CONFIG_VERSION,
            generation: 7,
            config: ProxyConfig {
                outbound: OutboundConfig {
                    services: vec![Service {
                        name: "web".into(),
                        namespace: "shop".into(),
                        cluster_ips: vec!["10.96.0.10".parse().unwrap()],
                        authorities: vec!["web.shop.svc.cluster.local:80".into()],
                        ports: vec![ServicePort {
                            port: 80,
                            endpoints: vec![Endpoint {
                                addr: "10.0.0.5:8080".parse().unwrap(),
                                meshed: true,
                                identity: None,
                                zone: None,
                                labels: BTreeMap::new(),
                                weight: 1,
                            }],
                            ..Default::default()
                        }],
                        timeout_ms: Some(500),
                        ..Default::default()
                    }],
                },
                inbound: InboundConfig::default(),
                identity: IdentityConfig::default(),
            },
        };
        let json = serde_json::to_string(&msg).unwrap();
        assert!(json.contains("\"clusterIps\""), "{json}");
        assert!(json.contains("\"timeoutMs\":500"), "{json}");
        let back: ConfigMessage = serde_json::from_str(&json).unwrap();
        assert_eq!(back, msg);
    }

    #[test]
    fn minimal_config_uses_defaults() {
        let c: ProxyConfig = serde_json::from_str(
            r#"{"outbound":{"services":[{"name":"a","namespace":"b",
                "ports":[{"port":80,"endpoints":[{"addr":"127.0.0.1:1"}]}]}]}}"#,
        )
        .unwrap();
        let ep = &c.outbound.services[0].ports[0].endpoints[0];
        assert_eq!(ep.weight, 1);
        assert!(!ep.meshed);
        assert_eq!(
            c.outbound.services[0].ports[0].protocol,
            AppProtocol::Detect
        );
        assert!(!c.inbound.permissive);
    }
}
