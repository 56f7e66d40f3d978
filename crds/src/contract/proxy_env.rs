//! Environment variables the webhook sets on the injected containers and
//! `meshlet-proxy` reads: the interface between injection and the proxy.

/// This pod's name (downward API `metadata.name`).
pub const POD_NAME: &str = "MESHLET_POD_NAME";
/// This pod's namespace (downward API `metadata.namespace`).
pub const POD_NAMESPACE: &str = "MESHLET_POD_NAMESPACE";
/// This pod's IP (downward API `status.podIP`).
pub const POD_IP: &str = "MESHLET_POD_IP";
/// This pod's ServiceAccount (downward API `spec.serviceAccountName`).
pub const SERVICE_ACCOUNT: &str = "MESHLET_SERVICE_ACCOUNT";
/// The Deployment that owns this pod, when there is one: the `deployment`
/// label of the proxy's metrics, which Linkerd-style queries (Flagger) use.
pub const POD_DEPLOYMENT: &str = "MESHLET_POD_DEPLOYMENT";
/// The operator's config stream address (`host:port`).
pub const OPERATOR_ADDR: &str = "MESHLET_OPERATOR_ADDR";
/// The proxy's log filter (`info`, `meshlet_proxy=debug`, ...).
pub const LOG: &str = "MESHLET_LOG";
/// Path of the projected ServiceAccount token the proxy proves itself with.
pub const IDENTITY_TOKEN_FILE: &str = "MESHLET_IDENTITY_TOKEN_FILE";
/// `meshlet-proxy init`: the proxy's UID, whose own traffic is not redirected.
pub const PROXY_UID: &str = "MESHLET_PROXY_UID";
/// `meshlet-proxy init`: inbound ports not redirected (comma-separated).
pub const INBOUND_SKIP_PORTS: &str = "MESHLET_INBOUND_SKIP_PORTS";
/// `meshlet-proxy init`: outbound ports not redirected (comma-separated).
pub const OUTBOUND_SKIP_PORTS: &str = "MESHLET_OUTBOUND_SKIP_PORTS";

/// PEM bundle of the trust anchors (from the injector) used to verify the
/// operator and peers until the config stream sends a newer bundle.
pub const TRUST_ANCHORS: &str = "MESHLET_TRUST_ANCHORS";
/// The trust domain of workload identities.
pub const TRUST_DOMAIN: &str = "MESHLET_TRUST_DOMAIN";
/// DNS name to verify on the operator's certificate (default
/// [`crate::contract::identity::OPERATOR_SERVER_NAME`]).
pub const OPERATOR_SERVER_NAME: &str = "MESHLET_OPERATOR_SERVER_NAME";
