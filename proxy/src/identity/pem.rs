//! PEM parsing of certificate chains, anchor bundles and private keys,
//! with errors that say which input was bad.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Every certificate in `pem` (in order); an error names `what` when there
/// is none or one is malformed.
pub fn parse_certs(what: &str, pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{what}: invalid PEM certificate: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{what}: no PEM certificate found"));
    }
    Ok(certs)
}

/// The private key in `pem` (PKCS#8, SEC1 or PKCS#1).
pub fn parse_key(what: &str, pem: &str) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| format!("{what}: no usable PEM private key: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_input() {
        let e = parse_certs("--trust-anchors", "hello").unwrap_err();
        assert!(e.contains("--trust-anchors") && e.contains("no PEM"), "{e}");
        let e = parse_key("--identity-key", "").unwrap_err();
        assert!(e.contains("--identity-key"), "{e}");
    }
}
