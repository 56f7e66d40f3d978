//! The issuer that signs proxy certificates: its certificate and key and the
//! anchor it chains to, read from the Secret's PEM (each key checked, errors
//! name the key) or generated as a self-signed ECDSA P-256 anchor that is
//! its own issuer.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
    PublicKeyData, SanType,
};
use rustls::pki_types::CertificateDer;

use super::bundle::{parse_certs, verify_server_chain};
use super::signer::{self, Issued};
use super::CaError;

/// Secret key of the issuer certificate (then any intermediates).
pub const TLS_CRT: &str = "tls.crt";
/// Secret key of the issuer's private key.
pub const TLS_KEY: &str = "tls.key";
/// Secret key of the trust anchor the issuer chains to.
pub const CA_CRT: &str = "ca.crt";

/// Validity of a generated trust anchor. Long, because replacing an anchor
/// means the documented rotation; proxy certificates stay short-lived.
pub const GENERATED_ANCHOR_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// The issuer's PEM texts as stored in the Secret.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuerPem {
    /// `tls.crt`: the issuer certificate first, then intermediates.
    pub tls_crt: String,
    /// `tls.key`: the issuer's private key.
    pub tls_key: String,
    /// `ca.crt`: the trust anchor(s) the issuer chains to.
    pub ca_crt: String,
}

impl std::fmt::Debug for IssuerPem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerPem").finish_non_exhaustive()
    }
}

impl IssuerPem {
    /// The Secret's `data`.
    pub fn to_secret_data(&self) -> BTreeMap<String, k8s_openapi::ByteString> {
        [
            (TLS_CRT, &self.tls_crt),
            (TLS_KEY, &self.tls_key),
            (CA_CRT, &self.ca_crt),
        ]
        .into_iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                k8s_openapi::ByteString(v.as_bytes().to_vec()),
            )
        })
        .collect()
    }
}

/// A loaded, checked issuer.
pub struct Issuer {
    signer: rcgen::Issuer<'static, KeyPair>,
    /// tls.crt's certificates that are not anchors: sent after the leaf.
    intermediates: Vec<CertificateDer<'static>>,
    anchors: Vec<CertificateDer<'static>>,
    not_after: SystemTime,
    pem: IssuerPem,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("not_after", &self.not_after)
            .field("intermediates", &self.intermediates.len())
            .field("anchors", &self.anchors.len())
            .finish_non_exhaustive()
    }
}

fn bad(key: &'static str, why: impl Into<String>) -> CaError {
    CaError::Secret {
        key,
        why: why.into(),
    }
}

/// A random positive 16-byte serial number.
pub fn random_serial() -> rcgen::SerialNumber {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system random source works");
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    rcgen::SerialNumber::from_slice(&bytes)
}

fn not_after(der: &CertificateDer<'_>) -> Option<SystemTime> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    let secs = cert.validity().not_after.timestamp();
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64))
}

impl Issuer {
    /// A new self-signed ECDSA P-256 trust anchor that is also the issuer.
    pub fn generate(trust_domain: &str) -> Result<Issuer, CaError> {
        let sign = |e: rcgen::Error| CaError::Sign(format!("generating the trust anchor: {e}"));
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(sign)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(sign)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "meshlet");
        dn.push(
            DnType::CommonName,
            format!("meshlet identity trust anchor {trust_domain}"),
        );
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.serial_number = Some(random_serial());
        let now = SystemTime::now();
        params.not_before = (now - Duration::from_secs(300)).into();
        params.not_after = (now + GENERATED_ANCHOR_VALIDITY).into();
        let cert = params.self_signed(&key).map_err(sign)?;
        let pem = IssuerPem {
            tls_crt: cert.pem(),
            tls_key: key.serialize_pem(),
            ca_crt: cert.pem(),
        };
        Issuer::from_pem(pem)
    }

    /// Loads and checks an issuer; errors name the Secret key at fault.
    pub fn from_pem(pem: IssuerPem) -> Result<Issuer, CaError> {
        let chain = parse_certs(&pem.tls_crt, TLS_CRT).map_err(|e| bad(TLS_CRT, e))?;
        let key = KeyPair::from_pem(&pem.tls_key).map_err(|e| {
            bad(
                TLS_KEY,
                format!("not a usable private key (PKCS#8, SEC1 or PKCS#1 PEM): {e}"),
            )
        })?;
        let anchors = parse_certs(&pem.ca_crt, CA_CRT).map_err(|e| bad(CA_CRT, e))?;
        let issuer_cert = &chain[0];
        let (_, parsed) = x509_parser::parse_x509_certificate(issuer_cert.as_ref())
            .map_err(|e| bad(TLS_CRT, format!("not X.509: {e}")))?;
        if parsed.public_key().subject_public_key.data.as_ref() != key.der_bytes() {
            return Err(bad(
                TLS_KEY,
                "does not match the public key of the first certificate in tls.crt",
            ));
        }
        if !parsed.is_ca() {
            return Err(bad(
                TLS_CRT,
                "the first certificate is not a CA (basicConstraints CA:TRUE), so it cannot sign proxy certificates",
            ));
        }
        let not_after = not_after(issuer_cert).unwrap_or(SystemTime::UNIX_EPOCH);
        if not_after <= SystemTime::now() {
            return Err(bad(TLS_CRT, "the issuer certificate has expired"));
        }
        let signer = rcgen::Issuer::from_ca_cert_der(issuer_cert, key)
            .map_err(|e| bad(TLS_CRT, format!("not usable as an issuer: {e}")))?;
        let intermediates = chain
            .iter()
            .filter(|c| !anchors.iter().any(|a| a.as_ref() == c.as_ref()))
            .cloned()
            .collect();
        let issuer = Issuer {
            signer,
            intermediates,
            anchors,
            not_after,
            pem,
        };
        issuer.self_check()?;
        Ok(issuer)
    }

    /// Issues a throwaway certificate and verifies it against `ca.crt`, so
    /// an issuer that does not chain to its anchor fails at load time
    /// rather than in every proxy's handshake.
    fn self_check(&self) -> Result<(), CaError> {
        const NAME: &str = "issuer-check.meshlet.invalid";
        let key = KeyPair::generate().map_err(|e| CaError::Sign(e.to_string()))?;
        let issued = self
            .issue(
                &key,
                vec![SanType::DnsName(NAME.try_into().expect("a valid DNS name"))],
                &[rcgen::ExtendedKeyUsagePurpose::ServerAuth],
                Duration::from_secs(600),
            )
            .map_err(|e| bad(TLS_CRT, format!("cannot sign with it: {e}")))?;
        verify_server_chain(&issued.chain, &self.anchors, NAME).map_err(|e| {
            bad(
                CA_CRT,
                format!("the issuer in tls.crt does not chain to it: {e}"),
            )
        })
    }

    /// Signs a leaf for `public_key`; see [`signer::issue`].
    pub fn issue(
        &self,
        public_key: &impl PublicKeyData,
        sans: Vec<SanType>,
        usages: &[rcgen::ExtendedKeyUsagePurpose],
        lifetime: Duration,
    ) -> Result<Issued, rcgen::Error> {
        signer::issue(
            &self.signer,
            &self.intermediates,
            self.not_after,
            public_key,
            sans,
            usages,
            lifetime,
        )
    }

    /// The anchors in `ca.crt`.
    pub fn anchors(&self) -> &[CertificateDer<'static>] {
        &self.anchors
    }

    /// The PEM texts it was loaded from.
    pub fn pem(&self) -> &IssuerPem {
        &self.pem
    }

    /// When the issuer certificate expires.
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_issuer_round_trips_through_pem() {
        let issuer = Issuer::generate("cluster.local").unwrap();
        assert_eq!(issuer.pem().tls_crt, issuer.pem().ca_crt);
        assert!(issuer.intermediates.is_empty(), "the anchor is not sent");
        let again = Issuer::from_pem(issuer.pem().clone()).unwrap();
        assert_eq!(again.anchors(), issuer.anchors());
    }

    #[test]
    fn bad_secret_content_names_the_key() {
        let good = Issuer::generate("cluster.local").unwrap().pem().clone();
        let other = Issuer::generate("cluster.local").unwrap().pem().clone();
        let cases = [
            (
                IssuerPem {
                    tls_crt: "x".into(),
                    ..good.clone()
                },
                "tls.crt",
            ),
            (
                IssuerPem {
                    tls_key: "x".into(),
                    ..good.clone()
                },
                "tls.key",
            ),
            (
                IssuerPem {
                    tls_key: other.tls_key.clone(),
                    ..good.clone()
                },
                "tls.key",
            ),
            (
                IssuerPem {
                    ca_crt: String::new(),
                    ..good.clone()
                },
                "ca.crt",
            ),
            (
                IssuerPem {
                    ca_crt: other.ca_crt.clone(),
                    ..good.clone()
                },
                "ca.crt",
            ),
        ];
        for (pem, key) in cases {
            let err = Issuer::from_pem(pem).unwrap_err().to_string();
            assert!(err.contains(key), "{key}: {err}");
        }
    }

    #[test]
    fn a_leaf_certificate_is_not_an_issuer() {
        let anchor = Issuer::generate("cluster.local").unwrap();
        let key = KeyPair::generate().unwrap();
        let leaf = anchor
            .issue(
                &key,
                vec![SanType::DnsName("a.example".try_into().unwrap())],
                &[],
                Duration::from_secs(600),
            )
            .unwrap();
        let err = Issuer::from_pem(IssuerPem {
            tls_crt: leaf.chain_pem.clone(),
            tls_key: key.serialize_pem(),
            ca_crt: anchor.pem().ca_crt.clone(),
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("tls.crt") && err.contains("not a CA"), "{err}");
    }
}
