//! `meshlet-webhook`: injects the proxy into pods, validates SMI objects and
//! converts them between versions.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, ValueEnum};
use meshlet_crds::contract::{identity, install, ports};
use meshlet_webhook::inject::{InjectorSettings, ProxyResources};
use meshlet_webhook::register::{Endpoint, Registration};
use meshlet_webhook::run::{self, CertSource, Config};

/// Whether the proxy is injected as a Kubernetes native sidecar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum NativeSidecar {
    /// When the API server is 1.29 or newer.
    Auto,
    /// Always.
    True,
    /// Never: a regular container placed first.
    False,
}

/// A trust domain as SPIFFE IDs need it.
fn parse_trust_domain(s: &str) -> Result<String, String> {
    identity::SpiffeId::new(s, "ns", "sa")
        .map(|_| s.to_string())
        .map_err(|e| e.to_string())
}

/// Meshlet's admission webhooks: sidecar injection, SMI validation and SMI
/// version conversion.
#[derive(Parser, Debug)]
#[command(name = "meshlet-webhook", version, about, long_about = None)]
struct Args {
    /// HTTPS address the API server calls.
    #[arg(long, env = "MESHLET_WEBHOOK_ADDR", default_value = "0.0.0.0:8443")]
    addr: SocketAddr,
    /// Namespace Meshlet is installed in (its own pods are never injected).
    #[arg(long, env = "MESHLET_NAMESPACE", default_value = install::NAMESPACE)]
    namespace: String,
    /// Proxy image injected into pods.
    #[arg(long, env = "MESHLET_PROXY_IMAGE", default_value = concat!("meshlet/proxy:", env!("CARGO_PKG_VERSION")))]
    proxy_image: String,
    /// Image of the init step that installs the traffic redirect
    /// (`meshlet-proxy init`; needs `iptables`). The proxy image when unset.
    #[arg(long, env = "MESHLET_INIT_IMAGE")]
    init_image: Option<String>,
    /// Proxy version recorded on injected pods.
    #[arg(long, env = "MESHLET_PROXY_VERSION", default_value = env!("CARGO_PKG_VERSION"))]
    proxy_version: String,
    /// imagePullPolicy of the injected containers (cluster default when unset).
    #[arg(long, env = "MESHLET_IMAGE_PULL_POLICY", value_parser = ["Always", "IfNotPresent", "Never"])]
    image_pull_policy: Option<String>,
    /// Operator config stream address given to proxies.
    #[arg(long, env = "MESHLET_OPERATOR_ADDR")]
    operator_addr: Option<String>,
    /// Native sidecar injection.
    #[arg(long, env = "MESHLET_NATIVE_SIDECAR", value_enum, default_value_t = NativeSidecar::Auto)]
    native_sidecar: NativeSidecar,
    /// Trust domain of workload identities (the operator's must match).
    #[arg(long, env = "MESHLET_TRUST_DOMAIN", default_value = identity::DEFAULT_TRUST_DOMAIN, value_parser = parse_trust_domain)]
    trust_domain: String,
    /// Default proxy log level.
    #[arg(long, env = "MESHLET_PROXY_LOG_LEVEL", default_value = "info")]
    proxy_log_level: String,
    /// Default proxy CPU request.
    #[arg(long, default_value = "10m")]
    proxy_cpu_request: String,
    /// Default proxy memory request.
    #[arg(long, default_value = "16Mi")]
    proxy_memory_request: String,
    /// Default proxy CPU limit (none when unset).
    #[arg(long)]
    proxy_cpu_limit: Option<String>,
    /// Default proxy memory limit.
    #[arg(long, default_value = "64Mi")]
    proxy_memory_limit: String,

    /// Serving certificate chain (PEM); a self-signed one is generated when unset.
    #[arg(long, env = "MESHLET_TLS_CERT_FILE", requires = "tls_key_file")]
    tls_cert_file: Option<PathBuf>,
    /// Serving key (PEM).
    #[arg(long, env = "MESHLET_TLS_KEY_FILE", requires = "tls_cert_file")]
    tls_key_file: Option<PathBuf>,
    /// CA to publish as caBundle (with --tls-cert-file); the certificate itself when unset.
    #[arg(long, env = "MESHLET_CA_FILE", requires = "tls_cert_file")]
    ca_file: Option<PathBuf>,
    /// Service the API server calls (names in the generated certificate).
    #[arg(long, default_value = install::WEBHOOK_SERVICE)]
    service_name: String,
    /// Extra DNS names or IPs for the generated certificate (comma-separated).
    #[arg(long, value_delimiter = ',')]
    extra_san: Vec<String>,
    /// Lifetime of the generated serving certificate, in hours.
    #[arg(long, default_value_t = 24 * 90)]
    cert_validity_hours: u64,
    /// Renew the certificate when less than this many hours are left.
    #[arg(long, default_value_t = 24 * 30)]
    renew_before_hours: u64,

    /// Create/update the webhook configurations (else they come from the install manifests).
    #[arg(long)]
    register: bool,
    /// With --register: call this base URL (`https://127.0.0.1:8443`) instead of the Service.
    #[arg(long, requires = "register")]
    webhook_url: Option<String>,
    /// Do not write caBundles (the install manages them, e.g. cert-manager's CA injector).
    #[arg(long)]
    no_ca_bundle_patch: bool,
    /// failurePolicy of the injection webhook.
    #[arg(long, default_value = "Ignore", value_parser = ["Ignore", "Fail"])]
    inject_failure_policy: String,
    /// failurePolicy of the validation webhook.
    #[arg(long, default_value = "Fail", value_parser = ["Ignore", "Fail"])]
    validate_failure_policy: String,

    /// Log filter, e.g. `info` or `meshlet_webhook=debug`.
    #[arg(long, env = "MESHLET_LOG", default_value = "info")]
    log: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&args.log)?)
        .init();
    meshlet_crds::contract::annotations::parse_log_level(&args.proxy_log_level)
        .map_err(|e| anyhow::anyhow!("--proxy-log-level: {e}"))?;
    let client = kube::Client::try_default()
        .await
        .context("connecting to the API server")?;
    let native_sidecar = match args.native_sidecar {
        NativeSidecar::True => true,
        NativeSidecar::False => false,
        NativeSidecar::Auto => {
            let info = client
                .apiserver_version()
                .await
                .context("--native-sidecar=auto: reading the API server version")?;
            meshlet_webhook::inject::native_sidecars_supported(&info.major, &info.minor)
        }
    };
    let settings = InjectorSettings {
        proxy_image: args.proxy_image,
        init_image: args.init_image,
        proxy_version: args.proxy_version,
        image_pull_policy: args.image_pull_policy,
        mesh_namespace: args.namespace.clone(),
        native_sidecar,
        operator_addr: args.operator_addr.unwrap_or_else(|| {
            format!(
                "{}.{}.svc:{}",
                install::OPERATOR_SERVICE,
                args.namespace,
                ports::OPERATOR_CONFIG_PORT
            )
        }),
        log_level: args.proxy_log_level,
        resources: ProxyResources {
            cpu_request: Some(args.proxy_cpu_request),
            memory_request: Some(args.proxy_memory_request),
            cpu_limit: args.proxy_cpu_limit,
            memory_limit: Some(args.proxy_memory_limit),
        },
        trust_domain: args.trust_domain,
        trust_anchors_pem: String::new(),
    };
    if args.renew_before_hours >= args.cert_validity_hours {
        bail!("--renew-before-hours must be less than --cert-validity-hours");
    }
    let certs = match (args.tls_cert_file, args.tls_key_file) {
        (Some(cert), Some(key)) => CertSource::Files {
            cert,
            key,
            ca: args.ca_file,
        },
        _ => {
            let service = &args.service_name;
            let ns = &args.namespace;
            let mut names = vec![
                format!("{service}.{ns}.svc"),
                format!("{service}.{ns}.svc.cluster.local"),
                format!("{service}.{ns}"),
            ];
            names.extend(args.extra_san);
            CertSource::SelfSigned {
                names,
                validity: Duration::from_secs(args.cert_validity_hours * 3600),
                ca_validity: Duration::from_secs(10 * 365 * 24 * 3600),
            }
        }
    };
    let register = args.register.then(|| Registration {
        endpoint: match args.webhook_url {
            Some(url) => Endpoint::Url(url),
            None => Endpoint::Service {
                namespace: args.namespace.clone(),
                name: args.service_name.clone(),
                port: install::WEBHOOK_SERVICE_PORT.into(),
            },
        },
        mesh_namespace: args.namespace.clone(),
        inject_failure_policy: args.inject_failure_policy,
        validate_failure_policy: args.validate_failure_policy,
        timeout_seconds: 5,
        name_suffix: String::new(),
    });
    tracing::info!(native_sidecar, "meshlet-webhook starting");
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("--addr {}", args.addr))?;
    let running = run::start(
        Config {
            settings,
            certs,
            register,
            mutating_name: install::INJECT_WEBHOOK_CONFIGURATION.into(),
            validating_name: install::VALIDATE_WEBHOOK_CONFIGURATION.into(),
            patch_ca_bundles: !args.no_ca_bundle_patch,
            renew_before: Duration::from_secs(args.renew_before_hours * 3600),
            check_every: Duration::from_secs(600),
        },
        client,
        listener,
    )
    .await?;
    // SIGTERM (pod deletion) and Ctrl-C end the process cleanly; the API
    // server retries on another replica or applies the failurePolicy.
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = running.wait() => result,
        _ = terminate.recv() => {
            tracing::info!("SIGTERM: stopping");
            Ok(())
        }
        _ = tokio::signal::ctrl_c() => {
            tracing::info!("interrupted: stopping");
            Ok(())
        }
    }
}
