//! `meshlet-proxy init`: the iptables nat rules that redirect a pod's TCP
//! traffic to the proxy (the webhook's init container runs the same).
//!
//! Inbound: PREROUTING → `MESHLET_INBOUND`: skip-listed ports return, the
//! rest is REDIRECTed to the inbound port. Outbound: OUTPUT →
//! `MESHLET_OUTBOUND`: the proxy's own UID and loopback return (so the
//! proxy's connections and its forwards to the app are not looped back),
//! skip-listed ports return, the rest is REDIRECTed to the outbound port.
//! Re-running is idempotent: chains are created if missing and flushed, and
//! jumps are added only if absent.

mod apply;

pub use apply::apply;

/// Inbound chain name.
pub const INBOUND_CHAIN: &str = "MESHLET_INBOUND";
/// Outbound chain name.
pub const OUTBOUND_CHAIN: &str = "MESHLET_OUTBOUND";

/// iptables' multiport match takes at most 15 ports per rule.
const MULTIPORT_MAX: usize = 15;

/// What to redirect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectSpec {
    /// The proxy's UID, never redirected.
    pub proxy_uid: u32,
    /// Where inbound connections go.
    pub inbound_port: u16,
    /// Where outbound connections go.
    pub outbound_port: u16,
    /// Destination ports of inbound connections left alone (`p` or `a:b`).
    pub inbound_skip_ports: Vec<String>,
    /// Destination ports of outbound connections left alone (`p` or `a:b`).
    pub outbound_skip_ports: Vec<String>,
}

/// How a command is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Run as is; failure is an error.
    Run,
    /// `-N chain`: an existing chain is fine.
    CreateChain,
    /// `-A ...`: skipped when `-C ...` finds the rule already there.
    AppendOnce,
}

/// One iptables invocation (arguments after the binary name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// How to run it.
    pub kind: Kind,
    /// The arguments.
    pub args: Vec<String>,
}

impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "iptables {}", self.args.join(" "))
    }
}

/// Checks a skip-list entry: a port or a `low:high` range. `flag` names the
/// flag in the error.
pub fn validate_port_spec(flag: &str, spec: &str) -> Result<(), String> {
    let bad = || format!("{flag}: {spec:?} is not a port (1-65535) or a range low:high");
    let port = |s: &str| s.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(bad);
    match spec.split_once(':') {
        Some((a, b)) if port(a)? <= port(b)? => Ok(()),
        Some(_) => Err(bad()),
        None => port(spec).map(|_| ()),
    }
}

fn cmd(kind: Kind, args: &[&str]) -> Command {
    Command {
        kind,
        args: args.iter().map(|s| s.to_string()).collect(),
    }
}

fn skip_rules(chain: &str, ports: &[String]) -> Vec<Command> {
    ports
        .chunks(MULTIPORT_MAX)
        .map(|chunk| {
            let list = chunk.join(",");
            cmd(
                Kind::Run,
                &[
                    "-t",
                    "nat",
                    "-A",
                    chain,
                    "-p",
                    "tcp",
                    "-m",
                    "multiport",
                    "--dports",
                    &list,
                    "-j",
                    "RETURN",
                ],
            )
        })
        .collect()
}

/// The commands that install `spec`, in order.
pub fn rules(spec: &RedirectSpec) -> Vec<Command> {
    let inbound_port = spec.inbound_port.to_string();
    let outbound_port = spec.outbound_port.to_string();
    let uid = spec.proxy_uid.to_string();
    let mut out = vec![
        cmd(Kind::CreateChain, &["-t", "nat", "-N", INBOUND_CHAIN]),
        cmd(Kind::Run, &["-t", "nat", "-F", INBOUND_CHAIN]),
    ];
    out.extend(skip_rules(INBOUND_CHAIN, &spec.inbound_skip_ports));
    out.push(cmd(
        Kind::Run,
        &[
            "-t",
            "nat",
            "-A",
            INBOUND_CHAIN,
            "-p",
            "tcp",
            "-j",
            "REDIRECT",
            "--to-port",
            &inbound_port,
        ],
    ));
    out.push(cmd(
        Kind::AppendOnce,
        &[
            "-t",
            "nat",
            "-A",
            "PREROUTING",
            "-p",
            "tcp",
            "-j",
            INBOUND_CHAIN,
        ],
    ));
    out.push(cmd(Kind::CreateChain, &["-t", "nat", "-N", OUTBOUND_CHAIN]));
    out.push(cmd(Kind::Run, &["-t", "nat", "-F", OUTBOUND_CHAIN]));
    out.push(cmd(
        Kind::Run,
        &[
            "-t",
            "nat",
            "-A",
            OUTBOUND_CHAIN,
            "-m",
            "owner",
            "--uid-owner",
            &uid,
            "-j",
            "RETURN",
        ],
    ));
    out.push(cmd(
        Kind::Run,
        &[
            "-t",
            "nat",
            "-A",
            OUTBOUND_CHAIN,
            "-o",
            "lo",
            "-j",
            "RETURN",
        ],
    ));
    out.extend(skip_rules(OUTBOUND_CHAIN, &spec.outbound_skip_ports));
    out.push(cmd(
        Kind::Run,
        &[
            "-t",
            "nat",
            "-A",
            OUTBOUND_CHAIN,
            "-p",
            "tcp",
            "-j",
            "REDIRECT",
            "--to-port",
            &outbound_port,
        ],
    ));
    out.push(cmd(
        Kind::AppendOnce,
        &[
            "-t",
            "nat",
            "-A",
            "OUTPUT",
            "-p",
            "tcp",
            "-j",
            OUTBOUND_CHAIN,
        ],
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> RedirectSpec {
        RedirectSpec {
            proxy_uid: 2102,
            inbound_port: 4143,
            outbound_port: 4140,
            inbound_skip_ports: vec!["4191".into(), "4143".into()],
            outbound_skip_ports: vec![],
        }
    }

    fn text(spec: &RedirectSpec) -> Vec<String> {
        rules(spec).iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn redirects_inbound_and_outbound_excluding_the_proxy_uid() {
        let t = text(&spec());
        assert_eq!(
            t,
            vec![
                "iptables -t nat -N MESHLET_INBOUND",
                "iptables -t nat -F MESHLET_INBOUND",
                "iptables -t nat -A MESHLET_INBOUND -p tcp -m multiport --dports 4191,4143 -j RETURN",
                "iptables -t nat -A MESHLET_INBOUND -p tcp -j REDIRECT --to-port 4143",
                "iptables -t nat -A PREROUTING -p tcp -j MESHLET_INBOUND",
                "iptables -t nat -N MESHLET_OUTBOUND",
                "iptables -t nat -F MESHLET_OUTBOUND",
                "iptables -t nat -A MESHLET_OUTBOUND -m owner --uid-owner 2102 -j RETURN",
                "iptables -t nat -A MESHLET_OUTBOUND -o lo -j RETURN",
                "iptables -t nat -A MESHLET_OUTBOUND -p tcp -j REDIRECT --to-port 4140",
                "iptables -t nat -A OUTPUT -p tcp -j MESHLET_OUTBOUND",
            ]
        );
    }

    #[test]
    fn uid_exclusion_comes_before_the_redirect() {
        let t = text(&spec());
        let uid = t
            .iter()
            .position(|r| r.contains("--uid-owner 2102"))
            .unwrap();
        let redirect = t.iter().position(|r| r.contains("--to-port 4140")).unwrap();
        assert!(uid < redirect);
    }

    #[test]
    fn long_skip_lists_are_chunked_for_multiport() {
        let mut s = spec();
        s.outbound_skip_ports = (1..=20).map(|p| p.to_string()).collect();
        let t = text(&s);
        let skips: Vec<_> = t
            .iter()
            .filter(|r| r.contains("MESHLET_OUTBOUND -p tcp -m multiport"))
            .collect();
        assert_eq!(skips.len(), 2);
        assert!(skips[0].contains("--dports 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15 "));
        assert!(skips[1].contains("--dports 16,17,18,19,20 "));
    }

    #[test]
    fn jumps_are_added_once() {
        let r = rules(&spec());
        let jumps: Vec<_> = r.iter().filter(|c| c.kind == Kind::AppendOnce).collect();
        assert_eq!(jumps.len(), 2);
    }

    #[test]
    fn port_specs_are_validated_with_the_flag_name() {
        assert!(validate_port_spec("--x", "80").is_ok());
        assert!(validate_port_spec("--x", "8000:8100").is_ok());
        let e = validate_port_spec("--inbound-skip-ports", "http").unwrap_err();
        assert!(e.starts_with("--inbound-skip-ports"), "{e}");
        assert!(validate_port_spec("--x", "0").is_err());
        assert!(validate_port_spec("--x", "9:8").is_err());
        assert!(validate_port_spec("--x", "70000").is_err());
    }
}
