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
use meshlet_operator::trafficmetrics::{self, ServiceRef, ServingSource, TrafficMetricsSettings};

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

    #[command(flatten)]
    metrics_api: MetricsApiArgs,
}

/// The SMI TrafficMetrics API (`metrics.smi-spec.io`).
#[derive(clap::Args, Debug)]
struct MetricsApiArgs {
    /// Address of the metrics.smi-spec.io HTTPS server (the APIService's Service targets it).
    #[arg(long, env = "MESHLET_METRICS_API_ADDR", default_value_t = SocketAddr::from(([0, 0, 0, 0], trafficmetrics::DEFAULT_PORT)))]
    metrics_api_addr: SocketAddr,

    /// Do not serve metrics.smi-spec.io (and do not scrape the proxies).
    #[arg(long, env = "MESHLET_NO_METRICS_API")]
    no_metrics_api: bool,

    /// Time between scrapes of every proxy's /metrics (`10s`, `500ms`, `1m`).
    #[arg(long, env = "MESHLET_SCRAPE_INTERVAL", default_value = "10s", value_parser = trafficmetrics::parse_duration)]
    scrape_interval: Duration,

    /// Longest one scrape may take.
    #[arg(long, env = "MESHLET_SCRAPE_TIMEOUT", default_value = "2s", value_parser = trafficmetrics::parse_duration)]
    scrape_timeout: Duration,

    /// Scrapes in flight at once.
    #[arg(long, env = "MESHLET_SCRAPE_CONCURRENCY", default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..))]
    scrape_concurrency: u16,

    /// The window TrafficMetrics cover (at least the scrape interval).
    #[arg(long, env = "MESHLET_METRICS_WINDOW", default_value = "30s", value_parser = trafficmetrics::parse_duration)]
    metrics_window: Duration,

    /// Serving certificate chain (PEM) of the metrics API; default: a
    /// self-signed one made at start (single replica, with --register-apiservices).
    #[arg(
        long,
        env = "MESHLET_METRICS_API_TLS_CERT_FILE",
        requires = "metrics_api_tls_key_file"
    )]
    metrics_api_tls_cert_file: Option<std::path::PathBuf>,

    /// Key (PEM) of --metrics-api-tls-cert-file.
    #[arg(
        long,
        env = "MESHLET_METRICS_API_TLS_KEY_FILE",
        requires = "metrics_api_tls_cert_file"
    )]
    metrics_api_tls_key_file: Option<std::path::PathBuf>,

    /// CA (PEM) kube-apiserver should trust, for the registered caBundle.
    #[arg(
        long,
        env = "MESHLET_METRICS_API_TLS_CA_FILE",
        requires = "metrics_api_tls_cert_file"
    )]
    metrics_api_tls_ca_file: Option<std::path::PathBuf>,

    /// Create or update the v1alpha1/v1alpha2.metrics.smi-spec.io APIServices
    /// (with the serving CA as caBundle) pointing at --metrics-api-service.
    #[arg(long, env = "MESHLET_REGISTER_APISERVICES")]
    register_apiservices: bool,

    /// The Service (in --namespace) in front of the metrics API.
    #[arg(long, env = "MESHLET_METRICS_API_SERVICE", default_value = install::OPERATOR_SERVICE)]
    metrics_api_service: String,

    /// Port of --metrics-api-service.
    #[arg(long, env = "MESHLET_METRICS_API_SERVICE_PORT", default_value_t = 443)]
    metrics_api_service_port: u16,
}

impl MetricsApiArgs {
    fn settings(&self, namespace: &str) -> Option<TrafficMetricsSettings> {
        if self.no_metrics_api {
            return None;
        }
        let service = ServiceRef {
            namespace: namespace.to_string(),
            name: self.metrics_api_service.clone(),
            port: self.metrics_api_service_port.into(),
        };
        let serving = match (
            &self.metrics_api_tls_cert_file,
            &self.metrics_api_tls_key_file,
        ) {
            (Some(cert), Some(key)) => ServingSource::Files {
                cert: cert.clone(),
                key: key.clone(),
                ca: self.metrics_api_tls_ca_file.clone(),
            },
            _ => ServingSource::SelfSigned(service.dns_names()),
        };
        let mut s = TrafficMetricsSettings::new(self.metrics_api_addr, serving);
        s.scrape.interval = self.scrape_interval;
        s.scrape.timeout = self.scrape_timeout;
        s.scrape.concurrency = self.scrape_concurrency.into();
        s.window = self.metrics_window;
        s.register = self.register_apiservices.then_some(service);
        Some(s)
    }
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
        traffic_metrics: args.metrics_api.settings(&args.namespace),
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
