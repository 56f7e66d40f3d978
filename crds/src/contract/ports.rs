//! Port numbers and the user id of the sidecar proxy, shared by the webhook
//! (which injects them), the init step (which redirects to them) and the proxy
//! (which listens on them).

/// Where iptables redirects the app's outgoing TCP connections.
pub const PROXY_OUTBOUND_PORT: u16 = 4140;

/// Where iptables redirects TCP connections coming into the pod.
pub const PROXY_INBOUND_PORT: u16 = 4143;

/// The proxy's admin server: `/ready`, `/live`, `/metrics`, `/config`.
/// Never redirected, so the kubelet's probes and Prometheus reach it directly.
pub const PROXY_ADMIN_PORT: u16 = 4191;
/// Admin path answering 200 once the proxy has a config and is not
/// draining: the injected readiness probe.
pub const PROXY_READY_PATH: &str = "/ready";
/// Admin path answering 200 while the process runs: the injected liveness
/// and startup probes.
pub const PROXY_LIVE_PATH: &str = "/live";

/// The UID the proxy runs as. The init step's OUTPUT rule skips traffic from
/// this user, so the proxy's own connections are not redirected back to it.
pub const PROXY_UID: u32 = 2102;

/// Inbound ports the init step never redirects by default: the proxy's own
/// admin and inbound ports (a redirected probe would loop through itself).
pub const DEFAULT_INBOUND_SKIP_PORTS: &[u16] = &[PROXY_ADMIN_PORT, PROXY_INBOUND_PORT];

/// Ports treated as opaque TCP (no protocol detection) when the config does
/// not say otherwise: server-speaks-first or otherwise undetectable protocols
/// (SMTP, MySQL, Galera, PostgreSQL, Redis, Elasticsearch transport,
/// memcached), Linkerd's defaults. Detection would stall these until its
/// timeout.
pub const DEFAULT_OPAQUE_PORTS: &[u16] = &[25, 587, 3306, 4444, 5432, 6379, 9300, 11211];

/// The port the operator serves the config stream (and identity) on.
pub const OPERATOR_CONFIG_PORT: u16 = 8086;

/// The port the operator serves the SMI TrafficMetrics aggregated API on
/// (behind Service port 443).
pub const OPERATOR_METRICS_API_PORT: u16 = 6443;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_ports_are_distinct() {
        let ports = [PROXY_OUTBOUND_PORT, PROXY_INBOUND_PORT, PROXY_ADMIN_PORT];
        for (i, a) in ports.iter().enumerate() {
            for b in &ports[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }
}
