//! The live CA: the current issuer and trust bundle (each in a `watch`
//! channel, replaced when the Secret or ConfigMap changes) and signing
//! proxy certificates, refused while the issuer's anchor is not in the
//! trusted bundle (proxies could not verify what it signs).

use std::sync::Arc;
use std::time::Duration;

use meshlet_crds::contract::identity::{CertifyResponse, SpiffeId, TRUST_ANCHORS_CONFIGMAP};
use rcgen::{ExtendedKeyUsagePurpose, KeyPair, SanType};
use tokio::sync::watch;

use super::csr::{self, CsrRefusal};
use super::signer::{self, unix, Issued};
use super::{Issuer, TrustBundle};
use crate::metrics::Metrics;

/// Why a certificate was not signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignRefusal {
    /// The CSR is malformed or asks for another identity.
    #[error(transparent)]
    Csr(#[from] CsrRefusal),
    /// The issuer's anchor is not in the trusted bundle.
    #[error("{0}")]
    AnchorNotTrusted(String),
    /// Signing itself failed.
    #[error("signing failed: {0}")]
    Sign(String),
}

/// The identity CA's current state.
pub struct Ca {
    trust_domain: String,
    lifetime: Duration,
    issuer: watch::Sender<Arc<Issuer>>,
    bundle: watch::Sender<Arc<TrustBundle>>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("trust_domain", &self.trust_domain)
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl Ca {
    /// A CA signing with `issuer` for `trust_domain`, trusting `bundle`.
    pub fn new(
        trust_domain: &str,
        lifetime: Duration,
        issuer: Issuer,
        bundle: TrustBundle,
        metrics: Arc<Metrics>,
    ) -> Arc<Ca> {
        let ca = Arc::new(Ca {
            trust_domain: trust_domain.into(),
            lifetime,
            issuer: watch::Sender::new(Arc::new(issuer)),
            bundle: watch::Sender::new(Arc::new(bundle)),
            metrics,
        });
        let _ = ca.check_anchor_trusted();
        ca
    }

    /// The trust domain of the identities it signs.
    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    /// Lifetime of the certificates it signs.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// The current issuer.
    pub fn issuer(&self) -> Arc<Issuer> {
        self.issuer.borrow().clone()
    }

    /// The current trusted bundle.
    pub fn bundle(&self) -> Arc<TrustBundle> {
        self.bundle.borrow().clone()
    }

    /// Notified on every issuer change.
    pub fn watch_issuer(&self) -> watch::Receiver<Arc<Issuer>> {
        self.issuer.subscribe()
    }

    /// Notified on every bundle change.
    pub fn watch_bundle(&self) -> watch::Receiver<Arc<TrustBundle>> {
        self.bundle.subscribe()
    }

    /// Replaces the issuer (the Secret changed).
    pub fn set_issuer(&self, issuer: Issuer) {
        self.issuer.send_replace(Arc::new(issuer));
        self.metrics.identity_issuer_reloads.inc();
        let _ = self.check_anchor_trusted();
    }

    /// Replaces the bundle (the ConfigMap changed); a no-op when the text
    /// is the same.
    pub fn set_bundle(&self, bundle: TrustBundle) {
        let changed = self.bundle.send_if_modified(|current| {
            let changed = current.pem() != bundle.pem();
            if changed {
                *current = Arc::new(bundle);
            }
            changed
        });
        if changed {
            let _ = self.check_anchor_trusted();
        }
    }

    /// `Err` saying why when no anchor of the issuer is in the bundle;
    /// updates the `identity_issuer_trusted` gauge.
    pub fn check_anchor_trusted(&self) -> Result<(), String> {
        let issuer = self.issuer();
        let bundle = self.bundle();
        let trusted = issuer.anchors().iter().any(|a| bundle.contains(a));
        self.metrics.identity_issuer_trusted.set(i64::from(trusted));
        if trusted {
            return Ok(());
        }
        let why = format!(
            "the issuer's anchor (ca.crt of the issuer Secret) is not in the trust anchors ConfigMap {TRUST_ANCHORS_CONFIGMAP}; \
             add it to the bundle before replacing the issuer (no certificates are signed until then)"
        );
        tracing::error!("{why}");
        Err(why)
    }

    /// Checks `csr_pem` against `id` and signs it.
    pub fn certify(&self, csr_pem: &str, id: &SpiffeId) -> Result<CertifyResponse, SignRefusal> {
        let public_key = csr::check(csr_pem, id)?;
        self.check_anchor_trusted()
            .map_err(SignRefusal::AnchorNotTrusted)?;
        let sans = signer::proxy_sans(id).map_err(|e| SignRefusal::Sign(e.to_string()))?;
        let issued = self
            .issuer()
            .issue(&public_key, sans, signer::PROXY_USAGES, self.lifetime)
            .map_err(|e| SignRefusal::Sign(e.to_string()))?;
        Ok(CertifyResponse {
            certificate_chain_pem: issued.chain_pem,
            trust_anchors_pem: self.bundle().pem().to_string(),
            expires_unix: unix(issued.not_after),
            renew_after_unix: unix(issued.renew_after),
        })
    }

    /// A fresh key and a serving certificate for `names` (DNS names or IP
    /// addresses), valid for the CA's lifetime.
    pub fn serving_cert(&self, names: &[String]) -> Result<(Issued, KeyPair), String> {
        let key = KeyPair::generate().map_err(|e| e.to_string())?;
        let sans = names
            .iter()
            .map(|n| match n.parse::<std::net::IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => n
                    .clone()
                    .try_into()
                    .map(SanType::DnsName)
                    .map_err(|e| format!("server name {n:?}: {e}")),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let issued = self
            .issuer()
            .issue(
                &key,
                sans,
                &[ExtendedKeyUsagePurpose::ServerAuth],
                self.lifetime,
            )
            .map_err(|e| e.to_string())?;
        Ok((issued, key))
    }
}
