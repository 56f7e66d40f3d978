//! The trusted anchors: a PEM bundle parsed into certificates, with the
//! membership test the issuer check needs and a chain verifier.

use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::RootCertStore;

/// A parsed bundle of trust anchors.
#[derive(Clone, Debug)]
pub struct TrustBundle {
    pem: String,
    certs: Vec<CertificateDer<'static>>,
}

/// The certificates of a PEM text; `what` names its origin in errors.
pub fn parse_certs(pem: &str, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{what}: bad PEM ({e})"))?;
    if certs.is_empty() {
        return Err(format!("{what}: no CERTIFICATE block"));
    }
    for (i, cert) in certs.iter().enumerate() {
        x509_parser::parse_x509_certificate(cert.as_ref())
            .map_err(|e| format!("{what}: certificate #{} is not X.509 ({e})", i + 1))?;
    }
    Ok(certs)
}

impl TrustBundle {
    /// Parses `pem`; `what` names where it came from, for errors.
    pub fn parse(pem: &str, what: &str) -> Result<TrustBundle, String> {
        Ok(TrustBundle {
            pem: pem.to_string(),
            certs: parse_certs(pem, what)?,
        })
    }

    /// The bundle as given.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// The anchors.
    pub fn certs(&self) -> &[CertificateDer<'static>] {
        &self.certs
    }

    /// Whether `cert` is one of the anchors (byte-for-byte).
    pub fn contains(&self, cert: &CertificateDer<'_>) -> bool {
        self.certs.iter().any(|c| c.as_ref() == cert.as_ref())
    }

    /// The anchors as a rustls root store.
    pub fn root_store(&self) -> Result<RootCertStore, String> {
        root_store(&self.certs)
    }
}

/// A rustls root store of `anchors`.
pub fn root_store(anchors: &[CertificateDer<'static>]) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for anchor in anchors {
        roots
            .add(anchor.clone())
            .map_err(|e| format!("not usable as a trust anchor: {e}"))?;
    }
    Ok(roots)
}

/// Verifies that `chain` (leaf first) chains to one of `anchors` and is
/// valid for `dns_name` as a TLS server, the way a proxy will check it.
pub fn verify_server_chain(
    chain: &[CertificateDer<'static>],
    anchors: &[CertificateDer<'static>],
    dns_name: &str,
) -> Result<(), String> {
    let (leaf, intermediates) = chain.split_first().ok_or("an empty certificate chain")?;
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(root_store(anchors)?),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .map_err(|e| e.to_string())?;
    let name = ServerName::try_from(dns_name.to_string()).map_err(|e| e.to_string())?;
    verifier
        .verify_server_cert(leaf, intermediates, &name, &[], UnixTime::now())
        .map(|_| ())
        .map_err(|e| e.to_string())
}
