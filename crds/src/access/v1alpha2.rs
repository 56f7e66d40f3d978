//! TrafficTarget `access.smi-spec.io/v1alpha2`: fields move under `spec`,
//! `specs` becomes `rules`; the destination may still name a `port`.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use super::v1alpha1::RuleKind;

/// Allows the listed source identities to reach the destination identity on
/// the listed routes. Access is additive and denied by default.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "access.smi-spec.io",
    version = "v1alpha2",
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
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<IdentityBindingSubject>,
    /// The routes allowed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
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
    /// Only on this destination port; all ports when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::optional_port")]
    pub port: Option<u16>,
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
