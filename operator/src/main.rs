//! `meshlet-operator`: reconciles SMI objects into per-proxy configuration
//! and streams it to the proxies.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use kube::runtime::events::Reporter;
use meshlet_crds::contract::{identity, install, ports};
use meshlet_operator::config::MeshSettings;
use meshlet_operator::context::{self, Settings};
use meshlet_operator::identity::IdentitySettings;
use meshlet_operator::leader::LeaderSettings;
use meshlet_operator::telemetry;

/// Meshlet's control plane: SMI controllers and the proxy config stream.
#[derive(Parser, Debug)]
#[command(name = "meshlet-operator", version, about, long_about = None)]
struct Args {
    /// SPIFFE trust domain of proxy identities (spiffe://<trust-domain>/ns/<ns>/sa/<sa>).
    #[arg(long, env = "MESHLET_TRUST_DOMAIN", default_value = identity::DEFAULT_TRUST_DOMAIN)]
    trust_domain: String,

    /// Lifetime of the proxy certificates the identity CA signs (and of
    /// the operator's own serving certificate): seconds, or a number with
    /// a unit s, m, h or d (`24h`); at least one minute. Proxies renew at
    /// 70 % of it.
    #[arg(long, env = "MESHLET_CERT_LIFETIME", default_value = "24h", value_parser = meshlet_operator::identity::lifetime::parse)]
    cert_lifetime: Duration,

    /// Extra DNS names or IP addresses on the config port's serving
    /// certificate (besides meshlet-operator.meshlet-system.svc and its
    /// .cluster.local form); repeat or separate with commas.
    #[arg(
        long = "server-name",
        env = "MESHLET_SERVER_NAMES",
        value_delimiter = ','
    )]
    server_names: Vec<String>,

    /// DNS suffix of the cluster, for service names (`web.shop.svc.<domain>`).
    #[arg(long, env = "MESHLET_CLUSTER_DOMAIN", default_value = "cluster.local")]
    cluster_domain: String,

    /// Namespace Meshlet is installed in (holds the leader Lease, the
    /// identity issuer Secret and the trust anchors ConfigMap).
    #[arg(long, env = "MESHLET_NAMESPACE", default_value = install::NAMESPACE)]
    namespace: String,

    /// Address of the config stream that proxies subscribe to.
    #[arg(long, env = "MESHLET_CONFIG_ADDR", default_value_t = SocketAddr::from(([0, 0, 0, 0], ports::OPERATOR_CONFIG_PORT)))]
    config_addr: SocketAddr,

    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, env = "MESHLET_ADMIN_ADDR", default_value = "0.0.0.0:9990")]
    admin_addr: SocketAddr,

    /// Allow traffic that no TrafficTarget allows (for adoption); default is deny.
    #[arg(long, env = "MESHLET_PERMISSIVE")]
    permissive: bool,

    /// Accept config stream subscribers without a ServiceAccount token.
    /// For development only: anyone reaching the port can read any config.
    #[arg(long, env = "MESHLET_INSECURE_NO_AUTH")]
    insecure_no_auth: bool,

    /// Wait this many milliseconds after a change before recomputing.
    #[arg(long, env = "MESHLET_DEBOUNCE_MS", default_value_t = 5)]
    debounce_ms: u64,

    /// Run without leader election (a single replica).
    #[arg(long, env = "MESHLET_NO_LEADER_ELECTION")]
    no_leader_election: bool,

    /// Name of the leader election Lease.
    #[arg(long, env = "MESHLET_LEASE_NAME", default_value = "meshlet-operator")]
    lease_name: String,

    /// Seconds a leader's Lease stays valid without renewal.
    #[arg(long, env = "MESHLET_LEASE_SECONDS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(2..))]
    lease_seconds: u64,

    /// This replica's name (the pod name, from the downward API).
    #[arg(long, env = "POD_NAME")]
    pod_name: Option<String>,

    /// Log filter, e.g. `info` or `meshlet_operator=debug`.
    #[arg(long, env = "MESHLET_LOG", default_value = "info")]
    log: String,

    /// Log as JSON lines.
    #[arg(long, env = "MESHLET_LOG_JSON")]
    log_json: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    telemetry::init(&args.log, args.log_json)?;
    tracing::info!(?args, "meshlet-operator starting");
    let identity = args
        .pod_name
        .clone()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "meshlet-operator".into());
    let settings = Settings {
        mesh: MeshSettings {
            trust_domain: args.trust_domain.clone(),
            cluster_domain: args.cluster_domain.clone(),
            permissive: args.permissive,
        },
        config_addr: args.config_addr,
        admin_addr: args.admin_addr,
        debounce: Duration::from_millis(args.debounce_ms),
        authenticate: !args.insecure_no_auth,
        identity: IdentitySettings {
            namespace: args.namespace.clone(),
            cert_lifetime: args.cert_lifetime,
            extra_server_names: args.server_names.clone(),
        },
        leader: (!args.no_leader_election).then(|| LeaderSettings {
            namespace: args.namespace.clone(),
            name: args.lease_name.clone(),
            identity: identity.clone(),
            duration: Duration::from_secs(args.lease_seconds),
            renew: Duration::from_secs(args.lease_seconds) / 3,
        }),
        reporter: Reporter {
            controller: "meshlet-operator".into(),
            instance: Some(identity),
        },
        ..Settings::default()
    };
    meshlet_crds::contract::identity::SpiffeId::new(&settings.mesh.trust_domain, "a", "b")
        .map_err(|e| anyhow::anyhow!("--trust-domain: {e}"))?;
    let client = kube::Client::try_default()
        .await
        .context("connecting to the Kubernetes API (in-cluster config or KUBECONFIG)")?;
    let running = context::start(client, settings).await?;
    tokio::select! {
        _ = running.join() => anyhow::bail!("an operator task ended unexpectedly"),
        _ = shutdown_signal() => tracing::info!("shutting down"),
    }
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
