//! `specs.smi-spec.io` HTTPRouteGroup, TCPRoute and UDPRoute: one module per
//! published version, the two-shape `headers` field, and the conversion
//! between versions (hub: [`v1alpha4`], the newest).

pub mod convert;
pub mod headers;
pub mod v1alpha1;
pub mod v1alpha2;
pub mod v1alpha3;
pub mod v1alpha4;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The API group.
pub const GROUP: &str = "specs.smi-spec.io";
/// HTTPRouteGroup versions, oldest first; the last one is the hub and storage version.
pub const HTTP_ROUTE_GROUP_VERSIONS: &[&str] = &["v1alpha1", "v1alpha2", "v1alpha3", "v1alpha4"];
/// TCPRoute versions, oldest first; the last one is the hub and storage version.
pub const TCP_ROUTE_VERSIONS: &[&str] = &["v1alpha1", "v1alpha2", "v1alpha3", "v1alpha4"];
/// UDPRoute versions (it first appears in v1alpha4).
pub const UDP_ROUTE_VERSIONS: &[&str] = &["v1alpha4"];

/// An HTTP method a route matches (RFC 7231), or `*` for any. The same set
/// in every version.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum HttpMethod {
    // Any method.
    #[serde(rename = "*")]
    Any,
    // GET.
    #[serde(rename = "GET")]
    Get,
    // HEAD.
    #[serde(rename = "HEAD")]
    Head,
    // PUT.
    #[serde(rename = "PUT")]
    Put,
    // POST.
    #[serde(rename = "POST")]
    Post,
    // DELETE.
    #[serde(rename = "DELETE")]
    Delete,
    // CONNECT.
    #[serde(rename = "CONNECT")]
    Connect,
    // OPTIONS.
    #[serde(rename = "OPTIONS")]
    Options,
    // TRACE.
    #[serde(rename = "TRACE")]
    Trace,
    // PATCH.
    #[serde(rename = "PATCH")]
    Patch,
}

impl HttpMethod {
    /// The method as written on the wire (`"GET"`, `"*"`).
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Any => "*",
            HttpMethod::Get => "GET",
            HttpMethod::Head => "HEAD",
            HttpMethod::Put => "PUT",
            HttpMethod::Post => "POST",
            HttpMethod::Delete => "DELETE",
            HttpMethod::Connect => "CONNECT",
            HttpMethod::Options => "OPTIONS",
            HttpMethod::Trace => "TRACE",
            HttpMethod::Patch => "PATCH",
        }
    }
}
