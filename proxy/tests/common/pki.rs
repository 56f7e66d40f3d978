//! A test certificate authority (rcgen): mesh workload certificates with
//! the SPIFFE URI SAN and TLS server name, an operator serving certificate,
//! expired and foreign certificates, and rustls configs built from them.
#![allow(dead_code)]

use meshlet_crds::contract::identity::SpiffeId;
use meshlet_proxy::identity::{self, LocalIdentity, TlsStore};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, PKCS_ECDSA_P256_SHA256,
};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

/// A self-signed anchor that issues certificates directly.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    /// The anchor as PEM.
    pub pem: String,
}

/// A certificate and its key, as PEM.
#[derive(Clone)]
pub struct Issued {
    pub chain_pem: String,
    pub key_pem: String,
}

impl Ca {
    pub fn new(name: &str) -> Self {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = OffsetDateTime::now_utc() - Duration::hours(1);
        params.not_after = OffsetDateTime::now_utc() + Duration::days(1);
        let cert = params.self_signed(&key).unwrap();
        Ca {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    fn sign(
        &self,
        sans: Vec<SanType>,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Issued {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.subject_alt_names = sans;
        params.not_before = not_before;
        params.not_after = not_after;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Issued {
            chain_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// A workload certificate for `id`, valid for an hour.
    pub fn workload(&self, id: &SpiffeId) -> Issued {
        let now = OffsetDateTime::now_utc();
        self.workload_valid(id, now - Duration::minutes(5), now + Duration::hours(1))
    }

    /// A workload certificate for `id` that expired a minute ago.
    pub fn expired_workload(&self, id: &SpiffeId) -> Issued {
        let now = OffsetDateTime::now_utc();
        self.workload_valid(id, now - Duration::hours(2), now - Duration::minutes(1))
    }

    pub fn workload_valid(
        &self,
        id: &SpiffeId,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Issued {
        self.sign(
            vec![
                SanType::URI(id.to_string().try_into().unwrap()),
                SanType::DnsName(id.tls_server_name().try_into().unwrap()),
            ],
            from,
            to,
        )
    }

    /// A serving certificate for a DNS name (the operator).
    pub fn server(&self, dns: &str) -> Issued {
        let now = OffsetDateTime::now_utc();
        self.sign(
            vec![SanType::DnsName(dns.try_into().unwrap())],
            now - Duration::minutes(5),
            now + Duration::hours(1),
        )
    }

    /// A TLS store holding `cert` for its identity, trusting this CA.
    pub fn store(&self, cert: &Issued) -> Arc<TlsStore> {
        store_trusting(&self.pem, cert)
    }
}

/// A TLS store holding `cert` (its identity from the URI SAN), trusting
/// the anchors `anchors_pem`.
pub fn store_trusting(anchors_pem: &str, cert: &Issued) -> Arc<TlsStore> {
    let chain = identity::parse_certs("cert", &cert.chain_pem).unwrap();
    let key = identity::parse_key("key", &cert.key_pem).unwrap();
    let id = identity::leaf_identity(&chain[0]).unwrap();
    let store = TlsStore::new(Some(LocalIdentity::new(id)), "anchors", anchors_pem).unwrap();
    store.set_certificate(chain, key).unwrap();
    Arc::new(store)
}

pub fn spiffe(ns: &str, sa: &str) -> SpiffeId {
    SpiffeId::new("cluster.local", ns, sa).unwrap()
}

/// A rustls server config presenting `cert` (no client auth).
pub fn server_config(cert: &Issued, alpn: &[&[u8]]) -> Arc<rustls::ServerConfig> {
    let chain = identity::parse_certs("cert", &cert.chain_pem).unwrap();
    let key = identity::parse_key("key", &cert.key_pem).unwrap();
    let mut c = rustls::ServerConfig::builder_with_provider(identity::tls_provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    c.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
    Arc::new(c)
}

impl Ca {
    /// Signs the CSR's public key for its SANs, valid from a minute ago for
    /// `lifetime`, as the operator's issuer would.
    pub fn sign_csr(&self, csr_pem: &str, lifetime: std::time::Duration) -> Result<String, String> {
        let mut csr = rcgen::CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| format!("bad CSR: {e}"))?;
        let now = OffsetDateTime::now_utc();
        csr.params.not_before = now - Duration::minutes(1);
        csr.params.not_after = now + lifetime;
        csr.params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        csr.params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = csr
            .signed_by(&self.issuer)
            .map_err(|e| format!("signing: {e}"))?;
        Ok(cert.pem())
    }
}

/// The SANs of a CSR, as strings (`URI:...`, `DNS:...`).
pub fn csr_sans(csr_pem: &str) -> Result<Vec<String>, String> {
    let csr = rcgen::CertificateSigningRequestParams::from_pem(csr_pem)
        .map_err(|e| format!("bad CSR: {e}"))?;
    Ok(csr
        .params
        .subject_alt_names
        .iter()
        .map(|s| match s {
            SanType::URI(u) => format!("URI:{}", u.as_str()),
            SanType::DnsName(d) => format!("DNS:{}", d.as_str()),
            other => format!("{other:?}"),
        })
        .collect())
}
