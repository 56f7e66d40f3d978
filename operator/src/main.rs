//! `meshlet-operator`: reconciles SMI objects into per-proxy configuration,
//! runs the identity CA and serves the SMI TrafficMetrics API.
#![forbid(unsafe_code)]

use std::net::SocketAddr;

use clap::Parser;

/// Meshlet's control plane: SMI controllers, config stream, identity CA and
/// the metrics.smi-spec.io API.
#[derive(Parser, Debug)]
#[command(name = "meshlet-operator", version, about, long_about = None)]
struct Args {
    /// SPIFFE trust domain of proxy identities (spiffe://<trust-domain>/ns/<ns>/sa/<sa>).
    #[arg(long, env = "MESHLET_TRUST_DOMAIN", default_value = "cluster.local")]
    trust_domain: String,

    /// Namespace Meshlet is installed in (its own pods are never meshed).
    #[arg(long, env = "MESHLET_NAMESPACE", default_value = "meshlet-system")]
    namespace: String,

    /// Address of the config stream that proxies subscribe to.
    #[arg(long, env = "MESHLET_CONFIG_ADDR", default_value = "0.0.0.0:8086")]
    config_addr: SocketAddr,

    /// Address of the health and Prometheus metrics endpoint.
    #[arg(long, env = "MESHLET_ADMIN_ADDR", default_value = "0.0.0.0:9990")]
    admin_addr: SocketAddr,

    /// Allow traffic that no TrafficTarget allows (for adoption); default is deny.
    #[arg(long, env = "MESHLET_PERMISSIVE")]
    permissive: bool,

    /// Log filter, e.g. `info` or `meshlet_operator=debug`.
    #[arg(long, env = "MESHLET_LOG", default_value = "info")]
    log: String,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&args.log)?)
        .init();
    tracing::info!(?args, "meshlet-operator starting");
    anyhow::bail!("the operator's controllers are not built yet (issue #5); only --help works")
}
