//! Misconfigurations of SMI objects found while computing configs; the
//! events publisher turns them into Kubernetes Events.

use std::fmt;

/// Which object a finding is about.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    /// `apiVersion`, e.g. `split.smi-spec.io/v1alpha4`.
    pub api_version: String,
    /// Kind, e.g. `TrafficSplit`.
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// UID, when known (Events refer to it).
    pub uid: Option<String>,
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// One misconfiguration: a machine-readable reason (PascalCase, the Event
/// reason) and a message for humans.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Finding {
    /// The misconfigured object.
    pub object: ObjectKey,
    /// Why, e.g. `BackendServiceNotFound`.
    pub reason: &'static str,
    /// What is wrong and what Meshlet does about it.
    pub message: String,
}

/// Reasons, one constant each so tests and docs name the same strings.
pub mod reason {
    /// A split's backend Service does not exist.
    pub const BACKEND_SERVICE_NOT_FOUND: &str = "BackendServiceNotFound";
    /// A split's backend has no port matching a root service port.
    pub const BACKEND_PORT_MISMATCH: &str = "BackendPortMismatch";
    /// Every backend of a split has weight 0.
    pub const ALL_WEIGHTS_ZERO: &str = "AllWeightsZero";
    /// A split lists its own root service as a backend.
    pub const BACKEND_IS_ROOT: &str = "BackendIsRootService";
    /// A split names the same backend twice.
    pub const DUPLICATE_BACKEND: &str = "DuplicateBackend";
    /// A split has no backend left that can take traffic.
    pub const NO_USABLE_BACKENDS: &str = "NoUsableBackends";
    /// A split's root service does not exist.
    pub const ROOT_SERVICE_NOT_FOUND: &str = "RootServiceNotFound";
    /// Another split for the same root service is older and wins.
    pub const CONFLICTING_SPLIT: &str = "ConflictingSplit";
    /// A split or target refers to a route object that does not exist.
    pub const ROUTE_NOT_FOUND: &str = "RouteNotFound";
    /// A target rule names a match its route group does not have.
    pub const ROUTE_MATCH_NOT_FOUND: &str = "RouteMatchNotFound";
    /// A target subject is not a ServiceAccount.
    pub const UNSUPPORTED_SUBJECT: &str = "UnsupportedSubject";
    /// A target's destination ServiceAccount does not exist.
    pub const DESTINATION_NOT_FOUND: &str = "DestinationServiceAccountNotFound";
    /// A target allows nothing (no usable source or rule).
    pub const NOTHING_ALLOWED: &str = "NothingAllowed";
    /// A target's destination is in another namespace than the target.
    pub const CROSS_NAMESPACE_DESTINATION: &str = "CrossNamespaceDestination";
    /// A namespace's `meshlet.dev/default-policy` is neither `deny` nor `permissive`.
    pub const INVALID_DEFAULT_POLICY: &str = "InvalidDefaultPolicy";
}
