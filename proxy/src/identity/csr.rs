//! A fresh ECDSA P-256 key (in memory only) and a PKCS#10 CSR for the
//! proxy's identity: URI SAN = SPIFFE ID, DNS SAN = its TLS server name.

use meshlet_crds::contract::identity::SpiffeId;
use rcgen::{CertificateParams, DistinguishedName, KeyPair, SanType, PKCS_ECDSA_P256_SHA256};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// A key and the CSR it signed.
pub struct KeyAndCsr {
    /// The private key (PKCS#8), never written anywhere.
    pub key: PrivateKeyDer<'static>,
    /// The CSR in PEM.
    pub csr_pem: String,
}

/// Generates a key and a CSR for `id`.
pub fn new_key_and_csr(id: &SpiffeId) -> Result<KeyAndCsr, String> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|e| format!("key: {e}"))?;
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.subject_alt_names = vec![
        SanType::URI(
            id.to_string()
                .try_into()
                .map_err(|e| format!("CSR URI SAN {id}: {e}"))?,
        ),
        SanType::DnsName(
            id.tls_server_name()
                .try_into()
                .map_err(|e| format!("CSR DNS SAN {}: {e}", id.tls_server_name()))?,
        ),
    ];
    let csr = params
        .serialize_request(&key)
        .map_err(|e| format!("CSR: {e}"))?;
    let csr_pem = csr.pem().map_err(|e| format!("CSR PEM: {e}"))?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    Ok(KeyAndCsr { key, csr_pem })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csr_carries_the_spiffe_uri_and_the_server_name() {
        let id: SpiffeId = "spiffe://cluster.local/ns/shop/sa/web".parse().unwrap();
        let k = new_key_and_csr(&id).unwrap();
        let parsed = rcgen::CertificateSigningRequestParams::from_pem(&k.csr_pem).unwrap();
        let sans: Vec<String> = parsed
            .params
            .subject_alt_names
            .iter()
            .map(|s| format!("{s:?}"))
            .collect();
        let all = sans.join(" ");
        assert!(
            all.contains("spiffe://cluster.local/ns/shop/sa/web"),
            "{all}"
        );
        assert!(
            all.contains("web.shop.serviceaccount.identity.meshlet.cluster.local"),
            "{all}"
        );
        assert_eq!(sans.len(), 2);
    }
}
