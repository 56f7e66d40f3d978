//! `specs.smi-spec.io/v1alpha3`: HTTPRouteGroup fields move under `spec`;
//! TCPRoute gains an empty `spec`.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::headers::HttpHeaders;
use super::HttpMethod;

/// Named HTTP routes (path regex, methods, headers) that policies and splits
/// reference.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "specs.smi-spec.io",
    version = "v1alpha3",
    kind = "HTTPRouteGroup",
    root = "HttpRouteGroup",
    namespaced,
    shortname = "htr",
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteGroupSpec {
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
    /// Header conditions, all of which must match.
    #[serde(default, skip_serializing_if = "HttpHeaders::is_empty")]
    pub headers: HttpHeaders,
}

/// L4 TCP traffic; the spec is empty in this version.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[kube(
    group = "specs.smi-spec.io",
    version = "v1alpha3",
    kind = "TCPRoute",
    root = "TcpRoute",
    namespaced,
    shortname = "tr",
    derive = "PartialEq"
)]
pub struct TcpRouteSpec {}
