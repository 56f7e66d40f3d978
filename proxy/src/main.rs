//! `meshlet-proxy`: the sidecar data plane (`run`) and its traffic redirect
//! (`init`).
#![forbid(unsafe_code)]

use clap::{Args as ClapArgs, Parser, Subcommand};
use meshlet_crds::contract::{config::config_stream_path_and_query, ports, proxy_env};
use meshlet_proxy::config::stream::{self, StreamSettings};
use meshlet_proxy::init::{self, RedirectSpec};
use meshlet_proxy::settings::{Settings, Workload};
use meshlet_proxy::{ConfigStore, Proxy};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Meshlet's sidecar proxy: transparent inbound and outbound proxying with
/// weighted splits, latency-aware balancing and metrics.
#[derive(Parser, Debug)]
#[command(name = "meshlet-proxy", version, about, long_about = None)]
struct Args {
    /// Log filter, e.g. `info` or `meshlet_proxy=debug`.
    #[arg(long, env = proxy_env::LOG, default_value = "info", global = true)]
    log: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the proxy.
    Run(Box<RunArgs>),
    /// Install the iptables rules that redirect the pod's traffic to the proxy.
    Init(InitArgs),
}

#[derive(ClapArgs, Debug)]
struct RunArgs {
    /// Static config file (JSON, or YAML by extension) instead of the stream.
    #[arg(long, env = "MESHLET_PROXY_CONFIG", conflicts_with = "operator")]
    config: Option<PathBuf>,
    /// Operator address (`host:port`) serving the config stream.
    #[arg(
        long,
        env = proxy_env::OPERATOR_ADDR,
        required_unless_present = "config"
    )]
    operator: Option<String>,
    /// Projected ServiceAccount token presented to the operator.
    #[arg(long, env = proxy_env::IDENTITY_TOKEN_FILE)]
    token_file: Option<PathBuf>,
    /// Outbound listener.
    #[arg(long, env = "MESHLET_OUTBOUND_ADDR", default_value_t = SocketAddr::from(([0, 0, 0, 0], ports::PROXY_OUTBOUND_PORT)))]
    outbound_addr: SocketAddr,
    /// Inbound listener.
    #[arg(long, env = "MESHLET_INBOUND_ADDR", default_value_t = SocketAddr::from(([0, 0, 0, 0], ports::PROXY_INBOUND_PORT)))]
    inbound_addr: SocketAddr,
    /// Admin listener.
    #[arg(long, env = "MESHLET_ADMIN_ADDR", default_value_t = SocketAddr::from(([0, 0, 0, 0], ports::PROXY_ADMIN_PORT)))]
    admin_addr: SocketAddr,
    /// Destination for outbound connections that were not redirected and
    /// name no known authority (benchmarks, tests).
    #[arg(long, env = "MESHLET_OUTBOUND_FALLBACK")]
    outbound_fallback: Option<SocketAddr>,
    /// App port for inbound connections that were not redirected.
    #[arg(long, env = "MESHLET_INBOUND_FALLBACK_PORT")]
    inbound_fallback_port: Option<u16>,
    /// Milliseconds to wait for a client's first bytes before treating the
    /// connection as opaque TCP.
    #[arg(long, env = "MESHLET_DETECT_TIMEOUT_MS", default_value_t = 5000)]
    detect_timeout_ms: u64,
    /// Seconds to drain requests in flight on SIGTERM.
    #[arg(long, env = "MESHLET_DRAIN_TIMEOUT_SECS", default_value_t = 30)]
    drain_timeout_secs: u64,
    /// Worker threads; 1 runs everything on one thread (smallest footprint).
    #[arg(long, env = "MESHLET_PROXY_THREADS", default_value_t = 1)]
    threads: usize,
    /// This pod's namespace (metric label).
    #[arg(long, env = proxy_env::POD_NAMESPACE, default_value = "")]
    namespace: String,
    /// This pod's Deployment (metric label).
    #[arg(long, env = proxy_env::POD_DEPLOYMENT, default_value = "")]
    deployment: String,
    /// This pod's name (metric label).
    #[arg(long, env = proxy_env::POD_NAME, default_value = "")]
    pod: String,
}

#[derive(ClapArgs, Debug)]
struct InitArgs {
    /// Print the rules instead of applying them.
    #[arg(long)]
    dry_run: bool,
    /// The iptables binary (`iptables`, `iptables-legacy`, `iptables-nft`).
    #[arg(long, env = "MESHLET_IPTABLES", default_value = "iptables")]
    iptables: String,
    /// The proxy's UID, whose traffic is never redirected.
    #[arg(long, env = proxy_env::PROXY_UID, default_value_t = ports::PROXY_UID)]
    proxy_uid: u32,
    /// Port inbound connections are redirected to.
    #[arg(long, env = "MESHLET_INBOUND_PORT", default_value_t = ports::PROXY_INBOUND_PORT)]
    inbound_port: u16,
    /// Port outbound connections are redirected to.
    #[arg(long, env = "MESHLET_OUTBOUND_PORT", default_value_t = ports::PROXY_OUTBOUND_PORT)]
    outbound_port: u16,
    /// Inbound destination ports not redirected (comma-separated, `a:b`
    /// ranges allowed); the proxy's admin and inbound ports are always added.
    #[arg(long, env = proxy_env::INBOUND_SKIP_PORTS, value_delimiter = ',')]
    inbound_skip_ports: Vec<String>,
    /// Outbound destination ports not redirected (comma-separated).
    #[arg(long, env = proxy_env::OUTBOUND_SKIP_PORTS, value_delimiter = ',')]
    outbound_skip_ports: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&args.log)?)
        .init();
    match args.command {
        Command::Init(a) => init_command(a),
        Command::Run(a) => {
            let a = *a;
            let runtime = if a.threads <= 1 {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?
            } else {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(a.threads)
                    .enable_all()
                    .build()?
            };
            runtime.block_on(run(a))
        }
    }
}

fn init_command(a: InitArgs) -> anyhow::Result<()> {
    let mut inbound_skip: Vec<String> = a
        .inbound_skip_ports
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect();
    let outbound_skip: Vec<String> = a
        .outbound_skip_ports
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect();
    for p in &inbound_skip {
        init::validate_port_spec("--inbound-skip-ports", p).map_err(anyhow::Error::msg)?;
    }
    for p in &outbound_skip {
        init::validate_port_spec("--outbound-skip-ports", p).map_err(anyhow::Error::msg)?;
    }
    for p in ports::DEFAULT_INBOUND_SKIP_PORTS {
        let p = p.to_string();
        if !inbound_skip.contains(&p) {
            inbound_skip.push(p);
        }
    }
    let commands = init::rules(&RedirectSpec {
        proxy_uid: a.proxy_uid,
        inbound_port: a.inbound_port,
        outbound_port: a.outbound_port,
        inbound_skip_ports: inbound_skip,
        outbound_skip_ports: outbound_skip,
    });
    if a.dry_run {
        for c in &commands {
            println!("{c}");
        }
        return Ok(());
    }
    init::apply(&a.iptables, &commands)
}

async fn run(a: RunArgs) -> anyhow::Result<()> {
    let store = Arc::new(ConfigStore::default());
    let settings = Settings {
        outbound_addr: a.outbound_addr,
        inbound_addr: a.inbound_addr,
        admin_addr: a.admin_addr,
        outbound_fallback: a.outbound_fallback,
        inbound_fallback_port: a.inbound_fallback_port,
        detect_timeout: Duration::from_millis(a.detect_timeout_ms),
        drain_timeout: Duration::from_secs(a.drain_timeout_secs),
        workload: Workload {
            namespace: a.namespace.clone(),
            deployment: a.deployment.clone(),
            pod: a.pod.clone(),
        },
    };
    if let Some(path) = &a.config {
        let config = meshlet_proxy::config::load_file(path)?;
        store
            .apply(0, config)
            .map_err(|e| anyhow::anyhow!("--config {}: {e}", path.display()))?;
    }
    let drain = settings.drain_timeout;
    let proxy = Proxy::start(settings, store.clone()).await?;
    if let Some(operator) = a.operator {
        let settings = StreamSettings {
            operator,
            path_and_query: config_stream_path_and_query(&a.namespace, &a.pod),
            token_file: a.token_file.clone(),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(30),
        };
        let shutdown = proxy.ctx().shutdown.clone();
        tokio::spawn(stream::run(settings, store, shutdown));
    }
    wait_for_signal().await?;
    tracing::info!(?drain, "shutting down: draining requests in flight");
    if proxy.shutdown(drain).await {
        tracing::info!("drained");
    } else {
        tracing::warn!("drain deadline reached with requests still in flight");
    }
    Ok(())
}

async fn wait_for_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
