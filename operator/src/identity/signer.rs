//! Signs leaf certificates: the SANs given, the extended key usages given,
//! never a CA, valid from a little before now (clock skew) for the lifetime
//! (never past the issuer's own expiry), with the renewal point at
//! [`RENEW_AT_FRACTION`] of the lifetime.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use meshlet_crds::contract::identity::{SpiffeId, RENEW_AT_FRACTION};
use rcgen::{
    CertificateParams, DistinguishedName, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
    PublicKeyData, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use super::issuer::random_serial;

/// How far back `notBefore` is set, so peers whose clocks run a little
/// behind accept a fresh certificate.
pub const BACKDATE: Duration = Duration::from_secs(60);

/// A signed leaf with its chain.
#[derive(Clone, Debug)]
pub struct Issued {
    /// The leaf, then the intermediates (never the anchor).
    pub chain: Vec<CertificateDer<'static>>,
    /// The same, PEM.
    pub chain_pem: String,
    /// When the leaf expires.
    pub not_after: SystemTime,
    /// When its holder should replace it.
    pub renew_after: SystemTime,
}

/// Seconds since the Unix epoch.
pub fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Signs a leaf for `public_key` with `signer`, valid for `lifetime` from
/// now (capped at `issuer_not_after`), followed by `intermediates`.
pub fn issue(
    signer: &rcgen::Issuer<'static, KeyPair>,
    intermediates: &[CertificateDer<'static>],
    issuer_not_after: SystemTime,
    public_key: &impl PublicKeyData,
    sans: Vec<SanType>,
    usages: &[ExtendedKeyUsagePurpose],
    lifetime: Duration,
) -> Result<Issued, rcgen::Error> {
    let now = SystemTime::now();
    let not_after = (now + lifetime).min(issuer_not_after);
    let mut params = CertificateParams::default();
    // No subject: the identity is in the SANs (rcgen then marks the SAN
    // extension critical, as RFC 5280 asks).
    params.distinguished_name = DistinguishedName::new();
    params.subject_alt_names = sans;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = usages.to_vec();
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(random_serial());
    params.not_before = (now - BACKDATE).into();
    params.not_after = not_after.into();
    let leaf = params.signed_by(public_key, signer)?;
    let mut chain = vec![leaf.der().clone()];
    chain.extend(intermediates.iter().cloned());
    let chain_pem = chain.iter().map(pem_of).collect();
    let held = not_after.duration_since(now).unwrap_or_default();
    Ok(Issued {
        chain,
        chain_pem,
        not_after,
        renew_after: now + held.mul_f64(RENEW_AT_FRACTION),
    })
}

fn pem_of(der: &CertificateDer<'_>) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// The SANs of a proxy certificate: the SPIFFE ID (URI) and its TLS server
/// name (DNS).
pub fn proxy_sans(id: &SpiffeId) -> Result<Vec<SanType>, rcgen::Error> {
    Ok(vec![
        SanType::URI(id.to_string().try_into()?),
        SanType::DnsName(id.tls_server_name().try_into()?),
    ])
}

/// A proxy certificate is both a TLS server and a TLS client.
pub const PROXY_USAGES: &[ExtendedKeyUsagePurpose] = &[
    ExtendedKeyUsagePurpose::ServerAuth,
    ExtendedKeyUsagePurpose::ClientAuth,
];

/// Parses PEM certificates (for tests and callers holding PEM).
pub fn certs_of(pem: &str) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .filter_map(Result::ok)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Issuer;

    #[test]
    fn lifetime_backdate_renewal_and_cap_at_the_issuer_expiry() {
        let issuer = Issuer::generate("cluster.local").unwrap();
        let id = SpiffeId::new("cluster.local", "shop", "web").unwrap();
        let key = KeyPair::generate().unwrap();
        let before = SystemTime::now();
        let lifetime = Duration::from_secs(1000);
        let issued = issuer
            .issue(&key, proxy_sans(&id).unwrap(), PROXY_USAGES, lifetime)
            .unwrap();
        let after = SystemTime::now();
        assert!(issued.not_after >= before + lifetime && issued.not_after <= after + lifetime);
        let renew_in = issued.renew_after.duration_since(before).unwrap();
        assert!(renew_in.as_secs().abs_diff(700) <= 1, "70 %: {renew_in:?}");
        let (_, cert) = x509_parser::parse_x509_certificate(issued.chain[0].as_ref()).unwrap();
        let not_before = cert.validity().not_before.timestamp();
        assert_eq!(
            unix(before) as i64 - not_before,
            BACKDATE.as_secs() as i64,
            "backdated for clock skew"
        );
        assert_eq!(certs_of(&issued.chain_pem), issued.chain);
        // Never valid longer than the issuer.
        let long = issuer
            .issue(
                &key,
                proxy_sans(&id).unwrap(),
                PROXY_USAGES,
                Duration::from_secs(100 * 365 * 24 * 3600),
            )
            .unwrap();
        assert_eq!(unix(long.not_after), unix(issuer.not_after()));
    }
}
