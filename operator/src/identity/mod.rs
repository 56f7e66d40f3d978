//! The operator's identity CA: the issuer and trust anchors kept in the
//! install namespace ([`store`]), CSR checks ([`csr`]), signing
//! ([`signer`]), the certify endpoint ([`certify`]) and the config port's
//! TLS ([`tls`]). The wire contract is `meshlet_crds::contract::identity`.

pub mod bundle;
pub mod ca;
pub mod certify;
pub mod csr;
pub mod issuer;
pub mod lifetime;
pub mod signer;
pub mod store;
pub mod tls;

use std::time::Duration;

use meshlet_crds::contract::identity::{DEFAULT_CERT_LIFETIME_SECS, ISSUER_SECRET};
use meshlet_crds::contract::install;

pub use bundle::TrustBundle;
pub use ca::Ca;
pub use issuer::{Issuer, IssuerPem};

/// How the identity CA runs.
#[derive(Clone, Debug)]
pub struct IdentitySettings {
    /// Namespace of the issuer Secret and the trust anchors ConfigMap.
    pub namespace: String,
    /// Lifetime of proxy certificates (and of the operator's own).
    pub cert_lifetime: Duration,
    /// DNS names (or IPs) on the operator's serving certificate besides
    /// the contract's `OPERATOR_SERVER_NAME` and its `.cluster.local` form.
    pub extra_server_names: Vec<String>,
}

impl Default for IdentitySettings {
    fn default() -> Self {
        IdentitySettings {
            namespace: install::NAMESPACE.into(),
            cert_lifetime: Duration::from_secs(DEFAULT_CERT_LIFETIME_SECS),
            extra_server_names: Vec::new(),
        }
    }
}

/// What can go wrong loading or using the identity CA.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// The issuer Secret has bad content; names the key.
    #[error("Secret {ISSUER_SECRET} key {key}: {why}")]
    Secret {
        /// The Secret key at fault.
        key: &'static str,
        /// What is wrong with it.
        why: String,
    },
    /// The trust anchors ConfigMap has bad content.
    #[error("{0}")]
    Bundle(String),
    /// Signing failed.
    #[error("signing: {0}")]
    Sign(String),
    /// The Kubernetes API refused or failed.
    #[error("{what}: {source}")]
    Kube {
        /// What was being done.
        what: String,
        /// The API error.
        source: kube::Error,
    },
}

/// A loaded identity CA with its serving TLS and the tasks that keep both
/// current (to be spawned by the caller).
pub struct Started {
    /// The CA.
    pub ca: std::sync::Arc<Ca>,
    /// The config port's serving certificate.
    pub serving: std::sync::Arc<tls::ServingCert>,
    /// The config port's TLS config.
    pub tls: std::sync::Arc<rustls::ServerConfig>,
    /// Watches of the Secret and ConfigMap, serving certificate renewal,
    /// and pushing bundle changes to the config stream.
    pub tasks: Vec<futures::future::BoxFuture<'static, ()>>,
}

/// Loads (or creates) the issuer and the trust bundle in the install
/// namespace, issues the serving certificate, and puts the bundle into
/// every config `registry` sends.
pub async fn start(
    client: &kube::Client,
    settings: &IdentitySettings,
    trust_domain: &str,
    registry: std::sync::Arc<crate::stream::Registry>,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
) -> Result<Started, CaError> {
    use futures::FutureExt;
    use meshlet_crds::contract::config::IdentityConfig;

    let namespace = &settings.namespace;
    let issuer = store::load_or_create_issuer(client, namespace, trust_domain).await?;
    let bundle = store::load_or_create_bundle(client, namespace, &issuer).await?;
    let ca = Ca::new(
        trust_domain,
        settings.cert_lifetime,
        issuer,
        bundle,
        metrics.clone(),
    );
    let names = tls::server_names(&settings.extra_server_names);
    let (serving, renew_at) = tls::ServingCert::new(&ca, &names).map_err(CaError::Sign)?;
    let tls_config = tls::server_config(serving.clone()).map_err(CaError::Sign)?;
    let identity = |bundle: &TrustBundle| IdentityConfig {
        trust_anchors_pem: bundle.pem().to_string(),
    };
    registry.set_identity(&identity(&ca.bundle()));
    let mut bundles = ca.watch_bundle();
    let push_bundles = async move {
        while bundles.changed().await.is_ok() {
            let bundle = bundles.borrow_and_update().clone();
            let pushed = registry.set_identity(&identity(&bundle));
            tracing::info!(pushed, "pushed the new trust anchors to subscribers");
        }
    };
    let tasks = vec![
        store::watch_issuer(
            client.clone(),
            namespace.clone(),
            ca.clone(),
            metrics.clone(),
        )
        .boxed(),
        store::watch_bundle(client.clone(), namespace.clone(), ca.clone(), metrics).boxed(),
        tls::keep_renewed(ca.clone(), serving.clone(), names, renew_at).boxed(),
        push_bundles.boxed(),
    ];
    Ok(Started {
        ca,
        serving,
        tls: tls_config,
        tasks,
    })
}
