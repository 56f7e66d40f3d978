//! The metrics API's serving certificate — from PEM files (the install
//! mounts a Secret; its CA goes in the APIServices' `caBundle`), or a
//! self-signed CA and leaf made at start for the Service's DNS names (the
//! operator then registers the APIServices with that CA itself) — and the
//! rustls server config that requires the front-proxy client certificate.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;

/// Where the serving certificate comes from.
#[derive(Clone, Debug)]
pub enum ServingSource {
    /// Generated at start for these DNS names / IPs.
    SelfSigned(Vec<String>),
    /// PEM files: certificate chain, key, and the CA callers trust (the
    /// certificate itself when absent).
    Files {
        /// `--metrics-api-tls-cert-file`.
        cert: PathBuf,
        /// `--metrics-api-tls-key-file`.
        key: PathBuf,
        /// `--metrics-api-tls-ca-file`.
        ca: Option<PathBuf>,
    },
}

/// A serving certificate and key, and the CA PEM for `caBundle`.
#[derive(Clone, Debug)]
pub struct Serving {
    /// Chain, PEM.
    pub cert_pem: String,
    /// Key, PEM.
    pub key_pem: String,
    /// The CA, PEM.
    pub ca_pem: String,
}

impl ServingSource {
    /// Loads or makes the certificate.
    pub fn load(&self) -> Result<Serving> {
        match self {
            ServingSource::SelfSigned(names) => self_signed(names),
            ServingSource::Files { cert, key, ca } => {
                let read = |p: &PathBuf, flag: &str| {
                    std::fs::read_to_string(p)
                        .with_context(|| format!("{flag}: reading {}", p.display()))
                };
                let cert_pem = read(cert, "--metrics-api-tls-cert-file")?;
                let key_pem = read(key, "--metrics-api-tls-key-file")?;
                let ca_pem = match ca {
                    Some(ca) => read(ca, "--metrics-api-tls-ca-file")?,
                    None => cert_pem.clone(),
                };
                Ok(Serving {
                    cert_pem,
                    key_pem,
                    ca_pem,
                })
            }
        }
    }
}

fn self_signed(names: &[String]) -> Result<Serving> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "meshlet-operator-metrics-ca");
    ca_params.distinguished_name = dn;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.subject_alt_names = names
        .iter()
        .map(|n| match n.parse::<std::net::IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => Ok(SanType::DnsName(n.clone().try_into()?)),
        })
        .collect::<Result<_, rcgen::Error>>()?;
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        names.first().cloned().unwrap_or_default(),
    );
    params.distinguished_name = dn;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, &ca)?;
    Ok(Serving {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        ca_pem: ca.pem(),
    })
}

/// A TLS server config serving `serving` that requires a client
/// certificate signed by one of `client_ca_pem` (the front-proxy CA).
pub fn server_config(serving: &Serving, client_ca_pem: &str) -> Result<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(client_ca_pem.as_bytes()) {
        roots
            .add(cert.context("requestheader-client-ca-file: bad PEM")?)
            .context("requestheader-client-ca-file: not a usable CA certificate")?;
    }
    anyhow::ensure!(
        !roots.is_empty(),
        "requestheader-client-ca-file: no CERTIFICATE block"
    );
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .context("building the front-proxy client verifier")?;
    let chain = CertificateDer::pem_slice_iter(serving.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .context("metrics API serving certificate: bad PEM")?;
    let key = PrivateKeyDer::from_pem_slice(serving.key_pem.as_bytes())
        .context("metrics API serving key: bad PEM")?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .context("metrics API serving certificate and key do not match")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}
