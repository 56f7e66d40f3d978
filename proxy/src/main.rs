//! `meshlet-proxy`: the sidecar data plane.
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};

/// Meshlet's sidecar proxy: transparent inbound and outbound proxying with
/// mTLS, SMI access control, weighted splits and metrics.
#[derive(Parser, Debug)]
#[command(name = "meshlet-proxy", version, about, long_about = None)]
struct Args {
    /// Log filter, e.g. `info` or `meshlet_proxy=debug`.
    #[arg(long, env = "MESHLET_LOG", default_value = "info", global = true)]
    log: String,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the proxy (the default).
    Run,
    /// Install the iptables rules that redirect the pod's traffic to the proxy.
    Init {
        /// Print the rules instead of applying them.
        #[arg(long)]
        dry_run: bool,
    },
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&args.log)?)
        .init();
    tracing::info!(?args, "meshlet-proxy starting");
    anyhow::bail!("the proxy is not built yet (issue #4); only --help works")
}
