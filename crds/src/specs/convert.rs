//! HTTPRouteGroup, TCPRoute and UDPRoute conversion, hub = v1alpha4.
//!
//! HTTPRouteGroup:
//!
//! | from → to | rule |
//! | --- | --- |
//! | v1alpha1 → hub | top-level `matches` → `spec.matches` |
//! | hub → v1alpha1 | the reverse; match `headers` (new in v1alpha2) dropped (kept in the conversion-data annotation) |
//! | v1alpha2 ↔ hub | top-level `matches` ↔ `spec.matches`, nothing lost |
//! | v1alpha3 ↔ hub | identical shape |
//!
//! TCPRoute:
//!
//! | from → to | rule |
//! | --- | --- |
//! | v1alpha1/2/3 → hub | `spec.matches` = no name, no ports (= every port, what an old TCPRoute meant) |
//! | hub → v1alpha1/2/3 | `spec.matches` dropped (annotation) |
//!
//! UDPRoute exists only in v1alpha4.

use serde_json::Value;

use super::{v1alpha1, v1alpha2, v1alpha3, v1alpha4, GROUP};
use super::{HTTP_ROUTE_GROUP_VERSIONS, TCP_ROUTE_VERSIONS, UDP_ROUTE_VERSIONS};
use crate::conversion::{parse, to_value, ConversionError, KindConversion};

/// The HTTPRouteGroup hub type.
pub type HttpRouteGroupHub = v1alpha4::HttpRouteGroup;
/// The TCPRoute hub type.
pub type TcpRouteHub = v1alpha4::TcpRoute;

fn unknown(kind: &str, version: &str, served: &[&str]) -> ConversionError {
    ConversionError::UnknownVersion {
        kind: kind.into(),
        group: GROUP.into(),
        version: version.into(),
        served: served.join(", "),
    }
}

/// HTTPRouteGroup v1alpha1 → hub.
pub fn http_from_v1alpha1(old: v1alpha1::HttpRouteGroup) -> HttpRouteGroupHub {
    HttpRouteGroupHub {
        metadata: old.metadata,
        spec: v1alpha4::HttpRouteGroupSpec {
            matches: old
                .spec
                .matches
                .into_iter()
                .map(|m| v1alpha4::HttpMatch {
                    name: m.name,
                    methods: m.methods,
                    path_regex: m.path_regex,
                    headers: Default::default(),
                })
                .collect(),
        },
    }
}

/// HTTPRouteGroup hub → v1alpha1 (drops headers).
pub fn http_to_v1alpha1(hub: &HttpRouteGroupHub) -> v1alpha1::HttpRouteGroup {
    v1alpha1::HttpRouteGroup {
        metadata: hub.metadata.clone(),
        spec: v1alpha1::HttpRouteGroupFields {
            matches: hub
                .spec
                .matches
                .iter()
                .map(|m| v1alpha1::HttpMatch {
                    name: m.name.clone(),
                    methods: m.methods.clone(),
                    path_regex: m.path_regex.clone(),
                })
                .collect(),
        },
    }
}

/// HTTPRouteGroup v1alpha2 → hub.
pub fn http_from_v1alpha2(old: v1alpha2::HttpRouteGroup) -> HttpRouteGroupHub {
    HttpRouteGroupHub {
        metadata: old.metadata,
        spec: v1alpha4::HttpRouteGroupSpec {
            matches: old
                .spec
                .matches
                .into_iter()
                .map(|m| v1alpha4::HttpMatch {
                    name: m.name,
                    methods: m.methods,
                    path_regex: m.path_regex,
                    headers: m.headers,
                })
                .collect(),
        },
    }
}

/// HTTPRouteGroup hub → v1alpha2.
pub fn http_to_v1alpha2(hub: &HttpRouteGroupHub) -> v1alpha2::HttpRouteGroup {
    v1alpha2::HttpRouteGroup {
        metadata: hub.metadata.clone(),
        spec: v1alpha2::HttpRouteGroupFields {
            matches: hub
                .spec
                .matches
                .iter()
                .map(|m| v1alpha2::HttpMatch {
                    name: m.name.clone(),
                    methods: m.methods.clone(),
                    path_regex: m.path_regex.clone(),
                    headers: m.headers.clone(),
                })
                .collect(),
        },
    }
}

/// HTTPRouteGroup v1alpha3 → hub.
pub fn http_from_v1alpha3(old: v1alpha3::HttpRouteGroup) -> HttpRouteGroupHub {
    HttpRouteGroupHub {
        metadata: old.metadata,
        spec: v1alpha4::HttpRouteGroupSpec {
            matches: old
                .spec
                .matches
                .into_iter()
                .map(|m| v1alpha4::HttpMatch {
                    name: m.name,
                    methods: m.methods,
                    path_regex: m.path_regex,
                    headers: m.headers,
                })
                .collect(),
        },
    }
}

/// HTTPRouteGroup hub → v1alpha3.
pub fn http_to_v1alpha3(hub: &HttpRouteGroupHub) -> v1alpha3::HttpRouteGroup {
    v1alpha3::HttpRouteGroup {
        metadata: hub.metadata.clone(),
        spec: v1alpha3::HttpRouteGroupSpec {
            matches: hub
                .spec
                .matches
                .iter()
                .map(|m| v1alpha3::HttpMatch {
                    name: m.name.clone(),
                    methods: m.methods.clone(),
                    path_regex: m.path_regex.clone(),
                    headers: m.headers.clone(),
                })
                .collect(),
        },
    }
}

/// HTTPRouteGroup's place in [`crate::conversion::convert`].
pub struct HttpRouteGroupConversion;

impl KindConversion for HttpRouteGroupConversion {
    const GROUP: &'static str = GROUP;
    const KIND: &'static str = "HTTPRouteGroup";
    const VERSIONS: &'static [&'static str] = HTTP_ROUTE_GROUP_VERSIONS;
    type Hub = HttpRouteGroupHub;

    fn to_hub(version: &str, obj: &Value) -> Result<Self::Hub, ConversionError> {
        let av = format!("{GROUP}/{version}");
        match version {
            "v1alpha1" => Ok(http_from_v1alpha1(parse(&av, Self::KIND, obj)?)),
            "v1alpha2" => Ok(http_from_v1alpha2(parse(&av, Self::KIND, obj)?)),
            "v1alpha3" => Ok(http_from_v1alpha3(parse(&av, Self::KIND, obj)?)),
            "v1alpha4" => parse(&av, Self::KIND, obj),
            _ => Err(unknown(Self::KIND, version, Self::VERSIONS)),
        }
    }

    fn from_hub(hub: &Self::Hub, version: &str) -> Result<Value, ConversionError> {
        match version {
            "v1alpha1" => Ok(to_value(&http_to_v1alpha1(hub))),
            "v1alpha2" => Ok(to_value(&http_to_v1alpha2(hub))),
            "v1alpha3" => Ok(to_value(&http_to_v1alpha3(hub))),
            "v1alpha4" => Ok(to_value(hub)),
            _ => Err(unknown(Self::KIND, version, Self::VERSIONS)),
        }
    }

    /// v1alpha1 has no headers: an edit there keeps each match's headers
    /// (matched by name).
    fn restore_hub(from: &str, hub: &mut Self::Hub, stored: &Self::Hub) {
        if from != "v1alpha1" {
            return;
        }
        for m in &mut hub.spec.matches {
            if let Some(old) = stored.spec.matches.iter().find(|s| s.name == m.name) {
                if m.headers.is_empty() {
                    m.headers = old.headers.clone();
                }
            }
        }
    }

    fn canonical(version: &str, obj: &Value) -> Result<Value, ConversionError> {
        let av = format!("{GROUP}/{version}");
        let k = Self::KIND;
        match version {
            "v1alpha1" => Ok(to_value(&parse::<v1alpha1::HttpRouteGroup>(&av, k, obj)?)),
            "v1alpha2" => Ok(to_value(&parse::<v1alpha2::HttpRouteGroup>(&av, k, obj)?)),
            "v1alpha3" => Ok(to_value(&parse::<v1alpha3::HttpRouteGroup>(&av, k, obj)?)),
            "v1alpha4" => Ok(to_value(&parse::<v1alpha4::HttpRouteGroup>(&av, k, obj)?)),
            _ => Err(unknown(k, version, Self::VERSIONS)),
        }
    }
}

fn tcp_hub(metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> TcpRouteHub {
    TcpRouteHub {
        metadata,
        spec: v1alpha4::TcpRouteSpec {
            matches: v1alpha4::PortMatch::default(),
        },
    }
}

/// TCPRoute's place in [`crate::conversion::convert`].
pub struct TcpRouteConversion;

impl KindConversion for TcpRouteConversion {
    const GROUP: &'static str = GROUP;
    const KIND: &'static str = "TCPRoute";
    const VERSIONS: &'static [&'static str] = TCP_ROUTE_VERSIONS;
    type Hub = TcpRouteHub;

    fn to_hub(version: &str, obj: &Value) -> Result<Self::Hub, ConversionError> {
        let av = format!("{GROUP}/{version}");
        let k = Self::KIND;
        match version {
            "v1alpha1" => Ok(tcp_hub(parse::<v1alpha1::TcpRoute>(&av, k, obj)?.metadata)),
            "v1alpha2" => Ok(tcp_hub(parse::<v1alpha2::TcpRoute>(&av, k, obj)?.metadata)),
            "v1alpha3" => Ok(tcp_hub(parse::<v1alpha3::TcpRoute>(&av, k, obj)?.metadata)),
            "v1alpha4" => parse(&av, k, obj),
            _ => Err(unknown(k, version, Self::VERSIONS)),
        }
    }

    fn from_hub(hub: &Self::Hub, version: &str) -> Result<Value, ConversionError> {
        let metadata = hub.metadata.clone();
        match version {
            "v1alpha1" => Ok(to_value(&v1alpha1::TcpRoute {
                metadata,
                spec: Default::default(),
            })),
            "v1alpha2" => Ok(to_value(&v1alpha2::TcpRoute {
                metadata,
                spec: Default::default(),
            })),
            "v1alpha3" => Ok(to_value(&v1alpha3::TcpRoute {
                metadata,
                spec: Default::default(),
            })),
            "v1alpha4" => Ok(to_value(hub)),
            _ => Err(unknown(Self::KIND, version, Self::VERSIONS)),
        }
    }

    /// Before v1alpha4 a TCPRoute has no fields: an edit there (of labels,
    /// say) keeps the hub's port match.
    fn restore_hub(from: &str, hub: &mut Self::Hub, stored: &Self::Hub) {
        if from != "v1alpha4" {
            hub.spec.matches = stored.spec.matches.clone();
        }
    }

    fn canonical(version: &str, obj: &Value) -> Result<Value, ConversionError> {
        let av = format!("{GROUP}/{version}");
        let k = Self::KIND;
        match version {
            "v1alpha1" => Ok(to_value(&parse::<v1alpha1::TcpRoute>(&av, k, obj)?)),
            "v1alpha2" => Ok(to_value(&parse::<v1alpha2::TcpRoute>(&av, k, obj)?)),
            "v1alpha3" => Ok(to_value(&parse::<v1alpha3::TcpRoute>(&av, k, obj)?)),
            "v1alpha4" => Ok(to_value(&parse::<v1alpha4::TcpRoute>(&av, k, obj)?)),
            _ => Err(unknown(k, version, Self::VERSIONS)),
        }
    }
}

/// UDPRoute's place in [`crate::conversion::convert`] (one version only).
pub struct UdpRouteConversion;

impl KindConversion for UdpRouteConversion {
    const GROUP: &'static str = GROUP;
    const KIND: &'static str = "UDPRoute";
    const VERSIONS: &'static [&'static str] = UDP_ROUTE_VERSIONS;
    type Hub = v1alpha4::UdpRoute;

    fn to_hub(version: &str, obj: &Value) -> Result<Self::Hub, ConversionError> {
        match version {
            "v1alpha4" => parse(&format!("{GROUP}/{version}"), Self::KIND, obj),
            _ => Err(unknown(Self::KIND, version, Self::VERSIONS)),
        }
    }

    fn from_hub(hub: &Self::Hub, version: &str) -> Result<Value, ConversionError> {
        match version {
            "v1alpha4" => Ok(to_value(hub)),
            _ => Err(unknown(Self::KIND, version, Self::VERSIONS)),
        }
    }

    fn canonical(version: &str, obj: &Value) -> Result<Value, ConversionError> {
        Self::from_hub(&Self::to_hub(version, obj)?, version)
    }
}
