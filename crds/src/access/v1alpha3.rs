//! TrafficTarget `access.smi-spec.io/v1alpha3`, the hub and storage version:
//! no destination `port`; rules may reference UDPRoutes; `rules` and
//! `sources` are required.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Allows the listed source identities to reach the destination identity on
/// the listed routes. Access is additive and denied by default.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "access.smi-spec.io",
    version = "v1alpha3",
    kind = "TrafficTarget",
    namespaced,
    shortname = "tt",
    derive = "PartialEq",
    status = "crate::split::status::SmiStatus"
)]
#[serde(rename_all = "camelCase")]
pub struct TrafficTargetSpec {
    /// The identity (ServiceAccount) that receives the traffic.
    pub destination: IdentityBindingSubject,
    /// The identities allowed to send traffic.
    pub sources: Vec<IdentityBindingSubject>,
    /// The routes allowed.
    pub rules: Vec<TrafficTargetRule>,
}

/// A subject (ServiceAccount) taking part in a TrafficTarget.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IdentityBindingSubject {
    /// Kind of the subject, e.g. `ServiceAccount`.
    #[schemars(length(min = 1))]
    pub kind: String,
    /// Name of the subject.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Namespace of the subject; the TrafficTarget's namespace when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// A route the target allows.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrafficTargetRule {
    /// Kind of the route resource.
    pub kind: RuleKind,
    /// Name of the route resource.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Names of matches within the route resource; all of them when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matches: Vec<String>,
}

/// Route kinds v1alpha3 may reference.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum RuleKind {
    // specs.smi-spec.io HTTPRouteGroup.
    #[serde(rename = "HTTPRouteGroup")]
    HttpRouteGroup,
    // specs.smi-spec.io TCPRoute.
    #[serde(rename = "TCPRoute")]
    TcpRoute,
    // specs.smi-spec.io UDPRoute.
    #[serde(rename = "UDPRoute")]
    UdpRoute,
}
