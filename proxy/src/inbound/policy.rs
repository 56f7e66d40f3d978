//! The inbound side of a config: which app ports are opaque, and the
//! compiled access policy (enforced once clients have identities, with mTLS).

use crate::split::{CompiledMatch, RequestView};
use meshlet_crds::contract::config::{AppProtocol, InboundConfig};
use meshlet_crds::contract::ports::DEFAULT_OPAQUE_PORTS;
use std::collections::HashSet;

/// Compiled inbound config.
#[derive(Debug, Default)]
pub struct InboundPolicy {
    opaque_ports: HashSet<u16>,
    listed_ports: HashSet<u16>,
    /// Permissive mode: every client allowed.
    pub permissive: bool,
    /// Compiled TrafficTarget rules: (sources, HTTP matches, TCP ports).
    pub rules: Vec<(Vec<String>, Vec<CompiledMatch>, Vec<u16>)>,
}

impl InboundPolicy {
    /// Compiles `cfg`; errors name the offending field.
    pub fn build(cfg: &InboundConfig) -> Result<Self, String> {
        let rules = cfg
            .policies
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let matches = p
                    .http
                    .iter()
                    .enumerate()
                    .map(|(j, m)| {
                        CompiledMatch::compile(
                            m,
                            &format!("inbound.policies[{i}]({}).http[{j}]", p.name),
                        )
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((p.sources.clone(), matches, p.tcp_ports.clone()))
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
            rules,
        })
    }

    /// Whether a client may make a request, by TrafficTarget semantics:
    /// permissive mode allows all; otherwise access is additive and denied
    /// by default, granted by a policy listing the client's identity whose
    /// rules match (HTTP matches for requests, TCP ports for connections;
    /// a policy with neither allows everything from its sources). A client
    /// without an identity (no mTLS) is allowed only in permissive mode.
    pub fn allows(
        &self,
        client: Option<&str>,
        port: u16,
        request: Option<&RequestView<'_>>,
    ) -> bool {
        if self.permissive {
            return true;
        }
        let Some(client) = client else { return false };
        self.rules.iter().any(|(sources, http, tcp_ports)| {
            if !sources.iter().any(|s| s == client) {
                return false;
            }
            if http.is_empty() && tcp_ports.is_empty() {
                return true;
            }
            let by_port = tcp_ports.contains(&port);
            let by_http = request.is_some_and(|r| http.iter().any(|m| m.matches(r)));
            by_port || by_http
        })
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
    use meshlet_crds::contract::config::{HttpMatch, InboundPolicy as Policy};

    const WEB: &str = "spiffe://cluster.local/ns/shop/sa/web";
    const OTHER: &str = "spiffe://cluster.local/ns/shop/sa/other";

    fn policy(permissive: bool) -> InboundPolicy {
        InboundPolicy::build(&InboundConfig {
            ports: vec![],
            permissive,
            policies: vec![Policy {
                name: "web-to-api".into(),
                sources: vec![WEB.into()],
                http: vec![HttpMatch {
                    path_regex: Some("/api/.*".into()),
                    methods: vec!["GET".into()],
                    ..Default::default()
                }],
                tcp_ports: vec![5432],
            }],
            ..Default::default()
        })
        .unwrap()
    }

    fn get(path: &str) -> (http::Method, String, http::HeaderMap) {
        (http::Method::GET, path.to_string(), http::HeaderMap::new())
    }

    #[test]
    fn denied_by_default_and_allowed_by_matching_rules() {
        let p = policy(false);
        let (m, path, h) = get("/api/x");
        let allowed = RequestView {
            method: &m,
            path: &path,
            headers: &h,
        };
        assert!(p.allows(Some(WEB), 80, Some(&allowed)));
        assert!(!p.allows(Some(OTHER), 80, Some(&allowed)));
        assert!(!p.allows(None, 80, Some(&allowed)));
        let (m, path, h) = get("/admin");
        let other_route = RequestView {
            method: &m,
            path: &path,
            headers: &h,
        };
        assert!(!p.allows(Some(WEB), 80, Some(&other_route)));
        assert!(p.allows(Some(WEB), 5432, None));
        assert!(!p.allows(Some(WEB), 6379, None));
    }

    #[test]
    fn well_known_server_first_ports_are_opaque_unless_listed() {
        let p = InboundPolicy::build(&InboundConfig {
            ports: vec![meshlet_crds::contract::config::InboundPort {
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
    fn permissive_allows_everyone() {
        assert!(policy(true).allows(None, 1, None));
    }
}
