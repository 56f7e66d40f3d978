//! `specs.smi-spec.io/v1alpha1`: HTTPRouteGroup with top-level `matches`
//! (path and methods only, no headers) and TCPRoute with no fields at all.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::HttpMethod;

/// Named HTTP routes (path regex and methods) that policies reference.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "specs.smi-spec.io",
    version = "v1alpha1",
    kind = "HTTPRouteGroup",
    root = "HttpRouteGroup",
    namespaced,
    shortname = "htr",
    derive = "PartialEq",
    no_spec
)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteGroupFields {
    /// The routes of this group.
    pub matches: Vec<HttpMatch>,
}

/// One named HTTP route.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpMatch {
    /// Name of the route, referenced from TrafficTarget rules.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Methods this route matches; any when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<HttpMethod>,
    /// Regular expression the whole request path must match; any path when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_regex: Option<String>,
}

/// L4 TCP traffic, with no further detail in this version.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[kube(
    group = "specs.smi-spec.io",
    version = "v1alpha1",
    kind = "TCPRoute",
    root = "TcpRoute",
    namespaced,
    shortname = "tr",
    derive = "PartialEq",
    no_spec
)]
pub struct TcpRouteFields {}
