//! The inbound side of a config, compiled: which app ports are opaque, the
//! TrafficTargets whose destination is this pod, the kubelet probe routes,
//! and permissive mode. [`super::authz`] decides with it.

use crate::split::{CompiledMatch, RequestView};
use meshlet_crds::contract::config::{AppProtocol, InboundConfig};
use meshlet_crds::contract::identity::SpiffeId;
use meshlet_crds::contract::ports::DEFAULT_OPAQUE_PORTS;
use std::collections::HashSet;

/// Compiled inbound config.
#[derive(Debug, Default)]
pub struct InboundPolicy {
    opaque_ports: HashSet<u16>,
    listed_ports: HashSet<u16>,
    /// Permissive mode: every client allowed, meshed or not.
    pub permissive: bool,
    /// The TrafficTargets for this pod, in config order.
    pub targets: Vec<CompiledTarget>,
    /// Kubelet `httpGet` probes as (port, path): plaintext GETs allowed.
    probes: Vec<(u16, String)>,
}

/// One TrafficTarget's grant, as the operator resolved it.
#[derive(Debug)]
pub struct CompiledTarget {
    /// The TrafficTarget's name (for deny messages and logs).
    pub name: String,
    /// Client identities the grant applies to.
    pub sources: Vec<SpiffeId>,
    /// HTTP requests allowed.
    pub http: Vec<CompiledMatch>,
    /// TCP ports allowed.
    pub tcp_ports: Vec<u16>,
    /// Destination ports the whole grant is limited to; all when empty.
    pub ports: Vec<u16>,
}

impl CompiledTarget {
    /// Whether `client` is one of the sources.
    pub fn has_source(&self, client: &SpiffeId) -> bool {
        self.sources.iter().any(|s| s == client)
    }

    /// A grant with neither HTTP matches nor ports allows all traffic: the
    /// operator sends that for a TCPRoute with no ports (SMI: every port).
    fn allows_everything(&self) -> bool {
        self.http.is_empty() && self.tcp_ports.is_empty()
    }

    /// Whether the grant applies to destination `port` at all.
    fn on_port(&self, port: u16) -> bool {
        self.ports.is_empty() || self.ports.contains(&port)
    }

    /// Whether a raw TCP connection to `port` is allowed (sources aside).
    pub fn allows_connection(&self, port: u16) -> bool {
        self.on_port(port) && (self.allows_everything() || self.tcp_ports.contains(&port))
    }

    /// Whether an HTTP request to `port` is allowed (sources aside). A TCP
    /// grant for the port covers HTTP on it too: it carries the same bytes.
    pub fn allows_request(&self, port: u16, req: &RequestView<'_>) -> bool {
        let ambiguous = is_ambiguous_path(req.path);
        self.allows_connection(port)
            || (self.on_port(port)
                && self
                    .http
                    .iter()
                    .any(|m| !(ambiguous && m.has_path_regex()) && m.matches(req)))
    }
}

/// Whether `path` may name another resource once the app normalizes it:
/// a `.` or `..` segment (also percent-encoded) or an encoded slash or
/// backslash. `/public/../admin` matches `/public/.*` as written but is
/// `/admin` to most servers, so such paths never match a `pathRegex`.
/// Clients normalize paths before sending, so legitimate calls are not hit.
pub fn is_ambiguous_path(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    if lower.contains("%2f") || lower.contains("%5c") || lower.contains('\\') {
        return true;
    }
    lower
        .split('/')
        .map(|segment| segment.replace("%2e", "."))
        .any(|segment| segment == "." || segment == "..")
}

impl InboundPolicy {
    /// Compiles `cfg`; errors name the offending field.
    pub fn build(cfg: &InboundConfig) -> Result<Self, String> {
        let targets = cfg
            .policies
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let field = format!("inbound.policies[{i}]({})", p.name);
                let http = p
                    .http
                    .iter()
                    .enumerate()
                    .map(|(j, m)| CompiledMatch::compile(m, &format!("{field}.http[{j}]")))
                    .collect::<Result<Vec<_>, _>>()?;
                let sources = p
                    .sources
                    .iter()
                    .enumerate()
                    .map(|(j, s)| {
                        s.parse::<SpiffeId>()
                            .map_err(|e| format!("{field}.sources[{j}]: {e}"))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(CompiledTarget {
                    name: p.name.clone(),
                    sources,
                    http,
                    tcp_ports: p.tcp_ports.clone(),
                    ports: p.ports.clone(),
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(Self {
            opaque_ports: cfg
                .ports
                .iter()
                .filter(|p| p.protocol == AppProtocol::Opaque)
                .map(|p| p.port)
                .collect(),
            listed_ports: cfg.ports.iter().map(|p| p.port).collect(),
            permissive: cfg.permissive,
            targets,
            probes: cfg
                .probes
                .iter()
                .map(|p| (p.port, p.path.clone()))
                .collect(),
        })
    }

    /// Whether `GET port path` is one of the pod's kubelet probes.
    pub fn is_probe(&self, port: u16, path: &str) -> bool {
        // Probes are few (three per container at most): a scan is enough.
        self.probes.iter().any(|(p, s)| *p == port && s == path)
    }

    /// Whether the app port skips protocol detection: marked opaque in the
    /// config, or not listed there and a well-known server-first port.
    pub fn is_opaque(&self, port: u16) -> bool {
        self.opaque_ports.contains(&port)
            || (!self.listed_ports.contains(&port) && DEFAULT_OPAQUE_PORTS.contains(&port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshlet_crds::contract::config::{InboundPolicy as Policy, InboundPort, ProbeRoute};

    #[test]
    fn well_known_server_first_ports_are_opaque_unless_listed() {
        let p = InboundPolicy::build(&InboundConfig {
            ports: vec![InboundPort {
                port: 6379,
                protocol: AppProtocol::Detect,
            }],
            ..Default::default()
        })
        .unwrap();
        assert!(p.is_opaque(3306));
        assert!(!p.is_opaque(6379), "listed as detect");
        assert!(!p.is_opaque(8080));
    }

    #[test]
    fn bad_source_or_regex_names_the_field() {
        let bad_source = InboundConfig {
            policies: vec![Policy {
                name: "tt".into(),
                sources: vec!["web".into()],
                ..Default::default()
            }],
            ..Default::default()
        };
        let e = InboundPolicy::build(&bad_source).unwrap_err();
        assert!(e.starts_with("inbound.policies[0](tt).sources[0]"), "{e}");
        let bad_regex = InboundConfig {
            policies: vec![Policy {
                name: "tt".into(),
                http: vec![meshlet_crds::contract::config::HttpMatch {
                    path_regex: Some("(".into()),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let e = InboundPolicy::build(&bad_regex).unwrap_err();
        assert!(
            e.starts_with("inbound.policies[0](tt).http[0].pathRegex"),
            "{e}"
        );
    }

    #[test]
    fn dot_segments_and_encoded_slashes_are_ambiguous() {
        for path in [
            "/public/../admin",
            "/public/./x",
            "/public/%2e%2e/admin",
            "/public/%2E./admin",
            "/public%2fadmin",
            "/public/..",
            "..",
        ] {
            assert!(is_ambiguous_path(path), "{path}");
        }
        for path in ["/", "/public/a.b", "/public/...", "/v1.2/x..y", "/%41"] {
            assert!(!is_ambiguous_path(path), "{path}");
        }
    }

    #[test]
    fn probes_match_port_and_exact_path() {
        let p = InboundPolicy::build(&InboundConfig {
            probes: vec![ProbeRoute {
                port: 8080,
                path: "/healthz".into(),
            }],
            ..Default::default()
        })
        .unwrap();
        assert!(p.is_probe(8080, "/healthz"));
        assert!(!p.is_probe(8081, "/healthz"));
        assert!(!p.is_probe(8080, "/healthz/x"));
        assert!(!p.is_probe(8080, "/health"));
    }
}
