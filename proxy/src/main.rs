//! `meshlet-proxy`: the sidecar data plane (`run`) and its traffic redirect
//! (`init`).
#![forbid(unsafe_code)]

use anyhow::Context as _;
use clap::{Args as ClapArgs, Parser, Subcommand};
use meshlet_crds::contract::identity::{SpiffeId, DEFAULT_TRUST_DOMAIN, OPERATOR_SERVER_NAME};
use meshlet_crds::contract::{config::config_stream_path_and_query, ports, proxy_env};
use meshlet_proxy::config::stream::{self, OperatorVerify, StreamSettings};
use meshlet_proxy::identity::certify::CertifySettings;
use meshlet_proxy::identity::{self, renew, LocalIdentity, TlsStore};
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
    /// Milliseconds an inbound HTTP/1 client may take to send its request
    /// headers before the connection is closed (slowloris guard).
    #[arg(long, env = "MESHLET_HEADER_READ_TIMEOUT_MS", default_value_t = 30_000)]
    header_read_timeout_ms: u64,
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
    /// This pod's ServiceAccount: with the namespace and trust domain, the
    /// identity the proxy asks the operator to certify.
    #[arg(long, env = proxy_env::SERVICE_ACCOUNT)]
    service_account: Option<String>,
    /// Trust domain of workload identities.
    #[arg(long, env = proxy_env::TRUST_DOMAIN, default_value = DEFAULT_TRUST_DOMAIN)]
    trust_domain: String,
    /// Trust anchors (PEM bundle) as text; enables identity and mTLS, and
    /// HTTPS to the operator.
    #[arg(long, env = proxy_env::TRUST_ANCHORS, hide_env_values = true, conflicts_with = "trust_anchors")]
    trust_anchors_pem: Option<String>,
    /// Trust anchors (PEM bundle) from a file, instead of the text.
    #[arg(long)]
    trust_anchors: Option<PathBuf>,
    /// DNS name the operator's certificate must carry.
    #[arg(long, env = proxy_env::OPERATOR_SERVER_NAME, default_value = OPERATOR_SERVER_NAME)]
    operator_server_name: String,
    /// Static identity (tests, benchmarks): this certificate chain (PEM,
    /// leaf first, URI SAN = SPIFFE ID) instead of asking the operator.
    #[arg(long, requires = "identity_key", conflicts_with = "operator")]
    identity_cert: Option<PathBuf>,
    /// The private key (PEM) of `--identity-cert`.
    #[arg(long, requires = "identity_cert")]
    identity_key: Option<PathBuf>,
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

fn read_file(flag: &str, path: &std::path::Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("{flag} {}", path.display()))
}

/// The TLS store from the flags: a static identity, an identity to be
/// certified by the operator, or none (plaintext).
fn identity_from_args(a: &RunArgs) -> anyhow::Result<TlsStore> {
    let anchors = match (&a.trust_anchors, &a.trust_anchors_pem) {
        (Some(path), _) => Some((
            format!("--trust-anchors {}", path.display()),
            read_file("--trust-anchors", path)?,
        )),
        (None, Some(pem)) if !pem.trim().is_empty() => Some((
            format!("{} (--trust-anchors-pem)", proxy_env::TRUST_ANCHORS),
            pem.clone(),
        )),
        _ => None,
    };
    if let (Some(cert), Some(key)) = (&a.identity_cert, &a.identity_key) {
        let (what, pem) = anchors.context(
            "--identity-cert needs trust anchors: --trust-anchors FILE or MESHLET_TRUST_ANCHORS",
        )?;
        let what_cert = format!("--identity-cert {}", cert.display());
        let chain = identity::parse_certs(&what_cert, &read_file("--identity-cert", cert)?)
            .map_err(anyhow::Error::msg)?;
        let key = identity::parse_key(
            &format!("--identity-key {}", key.display()),
            &read_file("--identity-key", key)?,
        )
        .map_err(anyhow::Error::msg)?;
        let id =
            identity::leaf_identity(&chain[0]).map_err(|e| anyhow::anyhow!("{what_cert}: {e}"))?;
        let store =
            TlsStore::new(Some(LocalIdentity::new(id)), &what, &pem).map_err(anyhow::Error::msg)?;
        store
            .set_certificate(chain, key)
            .map_err(|e| anyhow::anyhow!("{what_cert}: {e}"))?;
        return Ok(store);
    }
    let Some((what, pem)) = anchors else {
        if a.operator.is_some() {
            tracing::warn!(
                "no trust anchors ({} / --trust-anchors): identity and mTLS disabled, config stream in plaintext",
                proxy_env::TRUST_ANCHORS
            );
        }
        return Ok(TlsStore::disabled());
    };
    if a.operator.is_none() {
        tracing::warn!(
            "trust anchors without --operator or --identity-cert: identity and mTLS disabled"
        );
        return Ok(TlsStore::disabled());
    }
    if a.namespace.is_empty() {
        anyhow::bail!(
            "identity needs the pod namespace: --namespace or {}",
            proxy_env::POD_NAMESPACE
        );
    }
    let sa = a
        .service_account
        .as_deref()
        .filter(|s| !s.is_empty())
        .with_context(|| {
            format!(
                "identity needs the ServiceAccount: --service-account or {}",
                proxy_env::SERVICE_ACCOUNT
            )
        })?;
    if a.token_file.is_none() {
        anyhow::bail!(
            "identity needs the projected token: --token-file or {}",
            proxy_env::IDENTITY_TOKEN_FILE
        );
    }
    let id = SpiffeId::new(&a.trust_domain, &a.namespace, sa).map_err(|e| {
        anyhow::anyhow!("identity (--trust-domain, --namespace, --service-account): {e}")
    })?;
    TlsStore::new(Some(LocalIdentity::new(id)), &what, &pem).map_err(anyhow::Error::msg)
}

async fn run(a: RunArgs) -> anyhow::Result<()> {
    let store = Arc::new(ConfigStore::default());
    let tls = Arc::new(identity_from_args(&a)?);
    if let Some(local) = tls.local() {
        tracing::info!(identity = %local.id, server_name = %local.server_name, "identity enabled");
    }
    let settings = Settings {
        outbound_addr: a.outbound_addr,
        inbound_addr: a.inbound_addr,
        admin_addr: a.admin_addr,
        outbound_fallback: a.outbound_fallback,
        inbound_fallback_port: a.inbound_fallback_port,
        detect_timeout: Duration::from_millis(a.detect_timeout_ms),
        header_read_timeout: Duration::from_millis(a.header_read_timeout_ms),
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
    let proxy = Proxy::start_with_identity(settings, store.clone(), tls.clone()).await?;
    if let Some(operator) = a.operator {
        let verify = tls.load().operator.is_some().then(|| OperatorVerify {
            store: tls.clone(),
            server_name: a.operator_server_name.clone(),
        });
        if let (true, Some(token_file)) = (tls.is_enabled(), &a.token_file) {
            let certify = CertifySettings {
                operator: operator.clone(),
                server_name: a.operator_server_name.clone(),
                token_file: token_file.clone(),
            };
            tokio::spawn(renew::run(
                certify,
                tls.clone(),
                renew::RetryDelays::default(),
                proxy.ctx().shutdown.clone(),
            ));
        }
        let settings = StreamSettings {
            tls: verify,
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
