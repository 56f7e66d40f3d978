//! The webhook's serving certificate: a self-signed CA and a serving
//! certificate it signs (rcgen), or a certificate given as PEM files; and a
//! rustls certificate resolver whose certificate can be swapped at runtime,
//! so renewal needs no restart.

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// A serving certificate chain and key, PEM, with its expiry.
#[derive(Clone, Debug)]
pub struct ServingCert {
    /// Certificate chain, PEM (leaf first).
    pub cert_pem: String,
    /// Private key, PEM.
    pub key_pem: String,
    /// The PEM the API server trusts the webhook with (the `caBundle`).
    pub ca_pem: String,
    /// When the leaf expires.
    pub not_after: SystemTime,
}

impl ServingCert {
    /// Reads a certificate given as files; `ca_pem` is what callers should
    /// trust (the CA file, or the certificate itself when none is given).
    pub fn from_pem(cert_pem: String, key_pem: String, ca_pem: Option<String>) -> Result<Self> {
        let leaf = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .next()
            .context("--tls-cert-file: no CERTIFICATE block")?
            .context("--tls-cert-file: bad PEM")?;
        let not_after = not_after(&leaf).context("--tls-cert-file")?;
        Ok(ServingCert {
            ca_pem: ca_pem.unwrap_or_else(|| cert_pem.clone()),
            cert_pem,
            key_pem,
            not_after,
        })
    }

    /// The rustls form.
    pub fn certified_key(&self) -> Result<CertifiedKey> {
        let chain = CertificateDer::pem_slice_iter(self.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .context("serving certificate: bad PEM")?;
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes())
            .context("serving key: bad PEM")?;
        let signing = rustls::crypto::ring::sign::any_supported_type(&key)
            .context("serving key: unsupported key type")?;
        Ok(CertifiedKey::new(chain, signing))
    }

    /// Whether it should be replaced now: less than `renew_before` left.
    pub fn needs_renewal(&self, renew_before: Duration) -> bool {
        self.not_after
            .duration_since(SystemTime::now())
            .map_or(true, |left| left < renew_before)
    }
}

fn not_after(der: &CertificateDer<'_>) -> Result<SystemTime> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref())
        .map_err(|e| anyhow::anyhow!("not an X.509 certificate: {e}"))?;
    let secs = cert.validity().not_after.timestamp();
    Ok(SystemTime::UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64))
}

/// A self-signed CA that issues the serving certificate.
pub struct SelfSignedCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    not_after: SystemTime,
}

impl SelfSignedCa {
    /// A new CA valid for `validity`.
    pub fn generate(validity: Duration) -> Result<Self> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "meshlet-webhook-ca");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let (not_before, not_after) = window(validity);
        params.not_before = not_before;
        params.not_after = not_after;
        Ok(SelfSignedCa {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate()?)?,
            not_after: SystemTime::UNIX_EPOCH
                + Duration::from_secs(not_after.unix_timestamp().max(0) as u64),
        })
    }

    /// The CA certificate, PEM (the caBundle).
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// Whether the CA itself has less than `renew_before` left.
    pub fn needs_renewal(&self, renew_before: Duration) -> bool {
        self.not_after
            .duration_since(SystemTime::now())
            .map_or(true, |left| left < renew_before)
    }

    /// A serving certificate for `names` (DNS names or IP addresses).
    pub fn issue(&self, names: &[String], validity: Duration) -> Result<ServingCert> {
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
        let (not_before, not_after) = window(validity);
        params.not_before = not_before;
        params.not_after = not_after;
        let cert = params.signed_by(&key, &self.issuer)?;
        let leaf = cert.der().clone();
        Ok(ServingCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            ca_pem: self.pem(),
            not_after: not_after_of(&leaf)?,
        })
    }
}

fn not_after_of(der: &CertificateDer<'_>) -> Result<SystemTime> {
    not_after(der)
}

/// Valid from an hour ago (clock skew) for `validity`.
fn window(validity: Duration) -> (time::OffsetDateTime, time::OffsetDateTime) {
    let now = time::OffsetDateTime::now_utc();
    (
        now - time::Duration::hours(1),
        now + time::Duration::seconds(validity.as_secs() as i64),
    )
}

/// A rustls resolver serving whichever certificate was stored last.
#[derive(Debug)]
pub struct SwappableCert {
    current: RwLock<Arc<CertifiedKey>>,
}

impl SwappableCert {
    /// Starts with `cert`.
    pub fn new(cert: &ServingCert) -> Result<Arc<Self>> {
        Ok(Arc::new(SwappableCert {
            current: RwLock::new(Arc::new(cert.certified_key()?)),
        }))
    }

    /// Serves `cert` from the next handshake on.
    pub fn store(&self, cert: &ServingCert) -> Result<()> {
        let key = Arc::new(cert.certified_key()?);
        *self.current.write().expect("lock not poisoned") = key;
        Ok(())
    }

    /// A rustls server config (HTTP/2 and HTTP/1.1 by ALPN) using this resolver.
    pub fn server_config(self: &Arc<Self>) -> Result<rustls::ServerConfig> {
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}

impl ResolvesServerCert for SwappableCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().expect("lock not poisoned").clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issues_a_cert_for_dns_and_ip_names_and_knows_when_to_renew() {
        let ca = SelfSignedCa::generate(Duration::from_secs(3600 * 24 * 365)).unwrap();
        let cert = ca
            .issue(
                &[
                    "meshlet-webhook.meshlet-system.svc".into(),
                    "127.0.0.1".into(),
                ],
                Duration::from_secs(3600 * 24),
            )
            .unwrap();
        assert!(cert.cert_pem.contains("BEGIN CERTIFICATE"));
        assert_eq!(cert.ca_pem, ca.pem());
        assert!(!cert.needs_renewal(Duration::from_secs(3600)));
        assert!(cert.needs_renewal(Duration::from_secs(3600 * 48)));
        assert!(!ca.needs_renewal(Duration::from_secs(3600 * 24)));
        cert.certified_key().unwrap();
        let again =
            ServingCert::from_pem(cert.cert_pem.clone(), cert.key_pem.clone(), None).unwrap();
        assert_eq!(again.ca_pem, cert.cert_pem);
        let delta = again
            .not_after
            .duration_since(cert.not_after)
            .unwrap_or_else(|e| e.duration());
        assert!(delta < Duration::from_secs(2));
    }
}
