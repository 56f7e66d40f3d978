//! TLS on the config port: a serving certificate for the operator's names,
//! issued by the operator's own issuer and swapped in place (a rustls
//! certificate resolver) when it nears expiry or the issuer changes; ALPN
//! offers HTTP/2 and HTTP/1.1.

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use meshlet_crds::contract::identity::OPERATOR_SERVER_NAME;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

use super::Ca;

/// The names on the operator's serving certificate: the contract's
/// [`OPERATOR_SERVER_NAME`], its `.cluster.local` form, then `extra`.
pub fn server_names(extra: &[String]) -> Vec<String> {
    let mut names = vec![
        OPERATOR_SERVER_NAME.to_string(),
        format!("{OPERATOR_SERVER_NAME}.cluster.local"),
    ];
    for name in extra {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    names
}

/// The current serving certificate, replaceable while serving.
pub struct ServingCert {
    current: RwLock<Arc<CertifiedKey>>,
    not_after: RwLock<SystemTime>,
}

impl std::fmt::Debug for ServingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServingCert")
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for ServingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().expect("not poisoned").clone())
    }
}

fn issue(ca: &Ca, names: &[String]) -> Result<(CertifiedKey, SystemTime, SystemTime), String> {
    let (issued, key) = ca.serving_cert(names)?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let signing = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| format!("serving key: {e}"))?;
    Ok((
        CertifiedKey::new(issued.chain, signing),
        issued.not_after,
        issued.renew_after,
    ))
}

impl ServingCert {
    /// A first certificate for `names`; returns it and when to renew it.
    pub fn new(ca: &Ca, names: &[String]) -> Result<(Arc<ServingCert>, SystemTime), String> {
        let (key, not_after, renew_after) = issue(ca, names)?;
        Ok((
            Arc::new(ServingCert {
                current: RwLock::new(Arc::new(key)),
                not_after: RwLock::new(not_after),
            }),
            renew_after,
        ))
    }

    /// Issues a new certificate and serves it from now on; returns when to
    /// renew it.
    pub fn renew(&self, ca: &Ca, names: &[String]) -> Result<SystemTime, String> {
        let (key, not_after, renew_after) = issue(ca, names)?;
        *self.current.write().expect("not poisoned") = Arc::new(key);
        *self.not_after.write().expect("not poisoned") = not_after;
        Ok(renew_after)
    }

    /// The chain served now (leaf first).
    pub fn chain(&self) -> Vec<rustls::pki_types::CertificateDer<'static>> {
        self.current.read().expect("not poisoned").cert.clone()
    }
}

/// The rustls server config of the config port.
pub fn server_config(cert: Arc<ServingCert>) -> Result<Arc<ServerConfig>, String> {
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_cert_resolver(cert);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Renews `cert` at `renew_at`, and when the issuer changed and its anchor
/// is trusted (checked again whenever the bundle changes). While the new
/// issuer's anchor is not in the bundle the previous certificate is kept,
/// so proxies can still connect and be told why nothing is signed.
pub async fn keep_renewed(
    ca: Arc<Ca>,
    cert: Arc<ServingCert>,
    names: Vec<String>,
    mut renew_at: SystemTime,
) {
    let mut issuers = ca.watch_issuer();
    let mut bundles = ca.watch_bundle();
    let mut issued_by = issuers.borrow_and_update().clone();
    bundles.mark_unchanged();
    loop {
        let wait = renew_at
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        let due = tokio::select! {
            _ = tokio::time::sleep(wait) => true,
            changed = issuers.changed() => { changed.ok().map(|_| false).unwrap_or(true) }
            changed = bundles.changed() => { changed.ok().map(|_| false).unwrap_or(true) }
        };
        let issuer = issuers.borrow_and_update().clone();
        bundles.mark_unchanged();
        if !due && (Arc::ptr_eq(&issuer, &issued_by) || ca.check_anchor_trusted().is_err()) {
            continue;
        }
        match cert.renew(&ca, &names) {
            Ok(next) => {
                tracing::info!("renewed the operator's serving certificate");
                renew_at = next;
                issued_by = issuer;
            }
            Err(error) => {
                tracing::error!(%error, "renewing the operator's serving certificate; retrying in 30 s");
                renew_at = SystemTime::now() + Duration::from_secs(30);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_contract_name_its_long_form_then_extras() {
        assert_eq!(
            server_names(&["operator.example".into(), OPERATOR_SERVER_NAME.into()]),
            vec![
                "meshlet-operator.meshlet-system.svc".to_string(),
                "meshlet-operator.meshlet-system.svc.cluster.local".to_string(),
                "operator.example".to_string(),
            ]
        );
    }
}
