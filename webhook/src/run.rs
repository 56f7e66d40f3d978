//! Wiring: certificates, the HTTPS server, registration and caBundle
//! patching, and the renewal loop that keeps the certificate fresh.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use kube::Client;
use meshlet_crds::contract::install;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::certs::{SelfSignedCa, ServingCert, SwappableCert};
use crate::inject::InjectorSettings;
use crate::namespaces::Namespaces;
use crate::register::{self, Endpoint, Registration};
use crate::server::{self, App};
use crate::trust_anchors::TrustAnchors;

/// Where the serving certificate comes from.
#[derive(Debug, Clone)]
pub enum CertSource {
    /// Generated: a self-signed CA and a serving certificate for `names`.
    SelfSigned {
        /// DNS names and IPs the certificate carries.
        names: Vec<String>,
        /// Lifetime of the serving certificate.
        validity: Duration,
        /// Lifetime of the CA.
        ca_validity: Duration,
    },
    /// Given as PEM files (e.g. by cert-manager), re-read when they change.
    Files {
        /// Certificate chain.
        cert: PathBuf,
        /// Private key.
        key: PathBuf,
        /// CA to publish as caBundle; the certificate itself when absent.
        ca: Option<PathBuf>,
    },
}

/// Everything `start` needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Injection settings.
    pub settings: InjectorSettings,
    /// Certificates.
    pub certs: CertSource,
    /// Create/update the webhook configurations (else only patch caBundles).
    pub register: Option<Registration>,
    /// Names of the configurations whose caBundle is kept current when not
    /// registering (installed by manifests).
    pub mutating_name: String,
    /// See `mutating_name`.
    pub validating_name: String,
    /// Keep caBundles current at all.
    pub patch_ca_bundles: bool,
    /// Renew when less than this is left.
    pub renew_before: Duration,
    /// How often to check.
    pub check_every: Duration,
}

/// A running webhook.
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its routes' state (latencies).
    pub app: Arc<App>,
    /// The caBundle published at start.
    pub ca_pem: String,
    bundle: Arc<std::sync::RwLock<String>>,
    server: JoinHandle<()>,
    renewal: JoinHandle<()>,
}

impl Running {
    /// The caBundle published last (changes on renewal of the CA or of
    /// given certificate files).
    pub fn current_ca_bundle(&self) -> String {
        self.bundle.read().expect("lock not poisoned").clone()
    }

    /// Waits until the server stops (it does not, unless it panics).
    pub async fn wait(mut self) -> Result<()> {
        let result = (&mut self.server).await;
        result.context("the HTTPS server stopped")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.server.abort();
        self.renewal.abort();
    }
}

/// The certificate state the renewal loop owns.
enum Certs {
    SelfSigned {
        ca: Box<SelfSignedCa>,
        cert: ServingCert,
        names: Vec<String>,
        validity: Duration,
        ca_validity: Duration,
    },
    Files {
        cert: ServingCert,
        paths: (PathBuf, PathBuf, Option<PathBuf>),
    },
}

fn read_files(cert: &PathBuf, key: &PathBuf, ca: &Option<PathBuf>) -> Result<ServingCert> {
    let read = |flag: &str, p: &PathBuf| {
        std::fs::read_to_string(p).with_context(|| format!("{flag} {}", p.display()))
    };
    ServingCert::from_pem(
        read("--tls-cert-file", cert)?,
        read("--tls-key-file", key)?,
        ca.as_ref().map(|p| read("--ca-file", p)).transpose()?,
    )
}

impl Certs {
    fn load(source: &CertSource) -> Result<Certs> {
        Ok(match source {
            CertSource::SelfSigned {
                names,
                validity,
                ca_validity,
            } => {
                let ca = Box::new(SelfSignedCa::generate(*ca_validity)?);
                let cert = ca.issue(names, *validity)?;
                Certs::SelfSigned {
                    ca,
                    cert,
                    names: names.clone(),
                    validity: *validity,
                    ca_validity: *ca_validity,
                }
            }
            CertSource::Files { cert, key, ca } => Certs::Files {
                cert: read_files(cert, key, ca)?,
                paths: (cert.clone(), key.clone(), ca.clone()),
            },
        })
    }

    fn current(&self) -> &ServingCert {
        match self {
            Certs::SelfSigned { cert, .. } | Certs::Files { cert, .. } => cert,
        }
    }

    /// Renews what needs it; returns the caBundle to publish *before* the
    /// new certificate is served (old and new CA during a CA rollover), or
    /// `None` when nothing changed.
    fn renew(&mut self, renew_before: Duration) -> Result<Option<String>> {
        match self {
            Certs::SelfSigned {
                ca,
                cert,
                names,
                validity,
                ca_validity,
            } => {
                if ca.needs_renewal(renew_before) {
                    let new_ca = SelfSignedCa::generate(*ca_validity)?;
                    let bundle = format!("{}{}", new_ca.pem(), ca.pem());
                    *cert = new_ca.issue(names, *validity)?;
                    **ca = new_ca;
                    return Ok(Some(bundle));
                }
                if cert.needs_renewal(renew_before) {
                    *cert = ca.issue(names, *validity)?;
                    return Ok(Some(cert.ca_pem.clone()));
                }
                Ok(None)
            }
            Certs::Files { cert, paths } => {
                let fresh = read_files(&paths.0, &paths.1, &paths.2)?;
                if fresh.cert_pem == cert.cert_pem
                    && fresh.key_pem == cert.key_pem
                    && fresh.ca_pem == cert.ca_pem
                {
                    return Ok(None);
                }
                *cert = fresh;
                Ok(Some(cert.ca_pem.clone()))
            }
        }
    }
}

async fn publish(config: &Config, client: &Client, ca_pem: &str) -> Result<()> {
    if let Some(registration) = &config.register {
        registration.apply(client, ca_pem).await?;
    }
    if config.patch_ca_bundles {
        let conversion_url = match config.register.as_ref().map(|r| &r.endpoint) {
            Some(Endpoint::Url(base)) => Some(format!(
                "{}{}",
                base.trim_end_matches('/'),
                install::CONVERT_PATH
            )),
            _ => None,
        };
        let (mutating, validating) = match &config.register {
            Some(r) => (
                format!("{}{}", install::INJECT_WEBHOOK_CONFIGURATION, r.name_suffix),
                format!(
                    "{}{}",
                    install::VALIDATE_WEBHOOK_CONFIGURATION,
                    r.name_suffix
                ),
            ),
            None => (config.mutating_name.clone(), config.validating_name.clone()),
        };
        let n = register::patch_ca_bundles(
            client,
            ca_pem,
            &mutating,
            &validating,
            conversion_url.as_deref(),
        )
        .await?;
        tracing::info!(updated = n, "caBundle published");
    }
    Ok(())
}

/// Starts the webhook on `listener`: serves at once, then publishes the
/// caBundle (and registers, if asked), then renews in the background.
pub async fn start(config: Config, client: Client, listener: TcpListener) -> Result<Running> {
    let namespaces = Namespaces::watch(client.clone());
    let anchors = TrustAnchors::watch(client.clone(), &config.settings.mesh_namespace);
    start_with(config, client, listener, namespaces, anchors).await
}

/// [`start`] with a given namespace source.
pub async fn start_with(
    config: Config,
    client: Client,
    listener: TcpListener,
    namespaces: Namespaces,
    trust_anchors: TrustAnchors,
) -> Result<Running> {
    let mut certs = Certs::load(&config.certs)?;
    let resolver = SwappableCert::new(certs.current())?;
    let tls = Arc::new(resolver.server_config()?);
    let app = App::with_trust_anchors(config.settings.clone(), namespaces, trust_anchors);
    let addr = listener.local_addr()?;
    let server = tokio::spawn(server::serve(listener, tls, app.clone()));
    let ca_pem = certs.current().ca_pem.clone();
    publish(&config, &client, &ca_pem).await?;
    let bundle = Arc::new(std::sync::RwLock::new(ca_pem.clone()));
    let published = bundle.clone();
    tracing::info!(%addr, "meshlet-webhook serving");

    let renewal = tokio::spawn(async move {
        loop {
            tokio::time::sleep(config.check_every).await;
            match certs.renew(config.renew_before) {
                Ok(None) => {}
                Ok(Some(bundle)) => {
                    // Trust first, then serve: the API server must accept
                    // the new certificate from its first handshake.
                    if let Err(e) = publish(&config, &client, &bundle).await {
                        tracing::error!(error = %e, "publishing the renewed caBundle");
                    }
                    *published.write().expect("lock not poisoned") = bundle;
                    if let Err(e) = resolver.store(certs.current()) {
                        tracing::error!(error = %e, "serving the renewed certificate");
                    } else {
                        tracing::info!("serving certificate renewed");
                    }
                }
                Err(e) => tracing::error!(error = %e, "renewing the serving certificate"),
            }
        }
    });
    Ok(Running {
        addr,
        app,
        ca_pem,
        bundle,
        server,
        renewal,
    })
}
