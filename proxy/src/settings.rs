//! Run-time settings of the proxy (from flags and environment), separate
//! from the routing config that the operator streams.

use meshlet_crds::contract::ports;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

/// The proxy's own workload, for the constant metric labels.
#[derive(Debug, Clone, Default)]
pub struct Workload {
    /// Pod namespace.
    pub namespace: String,
    /// Owning Deployment.
    pub deployment: String,
    /// Pod name.
    pub pod: String,
}

/// How to run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Outbound listener (iptables redirects the app's connections here).
    pub outbound_addr: SocketAddr,
    /// Inbound listener (iptables redirects connections to the pod here).
    pub inbound_addr: SocketAddr,
    /// Admin server.
    pub admin_addr: SocketAddr,
    /// Destination assumed for outbound connections that were not
    /// redirected and name no known authority (tests, benchmarks, or an
    /// app pointed at the proxy explicitly).
    pub outbound_fallback: Option<SocketAddr>,
    /// App port assumed for inbound connections that were not redirected.
    pub inbound_fallback_port: Option<u16>,
    /// How long to wait for a client's first bytes before treating the
    /// connection as opaque TCP (server-speaks-first protocols).
    pub detect_timeout: Duration,
    /// How long a client of the inbound side may take to send HTTP/1
    /// request headers (slowloris guard; the outbound side's client is the
    /// pod's own app and has none).
    pub header_read_timeout: Duration,
    /// How long shutdown waits for requests in flight.
    pub drain_timeout: Duration,
    /// Constant metric labels.
    pub workload: Workload,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            outbound_addr: SocketAddr::from((Ipv4Addr::UNSPECIFIED, ports::PROXY_OUTBOUND_PORT)),
            inbound_addr: SocketAddr::from((Ipv4Addr::UNSPECIFIED, ports::PROXY_INBOUND_PORT)),
            admin_addr: SocketAddr::from((Ipv4Addr::UNSPECIFIED, ports::PROXY_ADMIN_PORT)),
            outbound_fallback: None,
            inbound_fallback_port: None,
            detect_timeout: Duration::from_secs(5),
            header_read_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(30),
            workload: Workload::default(),
        }
    }
}

impl Settings {
    /// Settings listening on ephemeral loopback ports (tests, benchmarks).
    pub fn loopback() -> Self {
        let any = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        Self {
            outbound_addr: any,
            inbound_addr: any,
            admin_addr: any,
            ..Self::default()
        }
    }
}
