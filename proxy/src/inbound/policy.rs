//! The inbound side of a config: which app ports are opaque, and the
//! compiled access policy (enforced once clients have identities, with mTLS).

use crate::split::CompiledMatch;
use meshlet_crds::contract::config::{AppProtocol, InboundConfig};
use std::collections::HashSet;

/// Compiled inbound config.
#[derive(Debug, Default)]
pub struct InboundPolicy {
    opaque_ports: HashSet<u16>,
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
            permissive: cfg.permissive,
            rules,
        })
    }

    /// Whether the app port skips protocol detection.
    pub fn is_opaque(&self, port: u16) -> bool {
        self.opaque_ports.contains(&port)
    }
}
