//! `specs.smi-spec.io/v1alpha4`, the hub and storage version: HTTPRouteGroup
//! as in v1alpha3; TCPRoute gains `spec.matches` (name, ports); UDPRoute
//! appears.

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
    version = "v1alpha4",
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

/// L4 TCP traffic on a set of ports.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[kube(
    group = "specs.smi-spec.io",
    version = "v1alpha4",
    kind = "TCPRoute",
    root = "TcpRoute",
    namespaced,
    shortname = "tr",
    derive = "PartialEq"
)]
pub struct TcpRouteSpec {
    /// The ports this route matches.
    pub matches: PortMatch,
}

/// L4 UDP traffic on a set of ports.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[kube(
    group = "specs.smi-spec.io",
    version = "v1alpha4",
    kind = "UDPRoute",
    root = "UdpRoute",
    namespaced,
    shortname = "ur",
    derive = "PartialEq"
)]
pub struct UdpRouteSpec {
    /// The ports this route matches.
    pub matches: PortMatch,
}

/// A port match of a TCPRoute or UDPRoute.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
pub struct PortMatch {
    /// Name of the match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Ports to match; every port of the destination service when empty.
    #[schemars(schema_with = "crate::schema::ports")]
    pub ports: Vec<u16>,
}
