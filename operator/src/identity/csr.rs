//! Checks a proxy's CSR against the identity its token proves: exactly one
//! URI SAN, equal to the token's SPIFFE ID; DNS SANs only the identity's
//! TLS server name; no other SANs and no CA request. The refusal says what
//! was asked and what is allowed, in one line.

use meshlet_crds::contract::identity::SpiffeId;
use rcgen::{CertificateSigningRequestParams, IsCa, PublicKey, SanType};

/// Why a CSR is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsrRefusal {
    /// Not a parsable, correctly self-signed PKCS#10 CSR (400).
    #[error("csrPem: {0}")]
    Malformed(String),
    /// A CSR for something else than the caller's identity (403).
    #[error("{0}")]
    WrongIdentity(String),
}

fn san_text(san: &SanType) -> String {
    match san {
        SanType::URI(u) => format!("URI:{}", u.as_str()),
        SanType::DnsName(d) => format!("DNS:{}", d.as_str()),
        SanType::IpAddress(ip) => format!("IP:{ip}"),
        SanType::Rfc822Name(e) => format!("email:{}", e.as_str()),
        other => format!("{other:?}"),
    }
}

/// Parses `csr_pem` and checks it asks for exactly `id`; returns the
/// public key to certify.
pub fn check(csr_pem: &str, id: &SpiffeId) -> Result<PublicKey, CsrRefusal> {
    if csr_pem.trim().is_empty() {
        return Err(CsrRefusal::Malformed(
            "empty; expected a PEM \"CERTIFICATE REQUEST\"".into(),
        ));
    }
    let csr = CertificateSigningRequestParams::from_pem(csr_pem).map_err(|e| {
        CsrRefusal::Malformed(format!("not a valid PEM PKCS#10 certificate request ({e})"))
    })?;
    let want_uri = id.to_string();
    let want_dns = id.tls_server_name();
    let allowed = format!("allowed: exactly URI:{want_uri} and optionally DNS:{want_dns}");
    let asked: Vec<String> = csr.params.subject_alt_names.iter().map(san_text).collect();
    let asked_text = if asked.is_empty() {
        "no SANs".to_string()
    } else {
        asked.join(", ")
    };
    let refuse = |what: &str| {
        Err(CsrRefusal::WrongIdentity(format!(
            "the CSR {what}: asked for {asked_text}; {allowed}"
        )))
    };
    if matches!(csr.params.is_ca, IsCa::Ca(_)) {
        return refuse("asks to be a CA");
    }
    let mut uris = 0;
    for san in &csr.params.subject_alt_names {
        match san {
            SanType::URI(u) if u.as_str() == want_uri => uris += 1,
            SanType::URI(_) => return refuse("names another identity"),
            SanType::DnsName(d) if d.as_str() == want_dns => {}
            SanType::DnsName(_) => return refuse("names another DNS name"),
            _ => return refuse("has a SAN type other than URI and DNS"),
        }
    }
    if uris != 1 {
        return refuse("must carry the identity as exactly one URI SAN");
    }
    Ok(csr.public_key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, KeyPair};

    fn id() -> SpiffeId {
        SpiffeId::new("cluster.local", "shop", "web").unwrap()
    }

    fn csr(sans: Vec<SanType>, ca: bool) -> String {
        let mut params = CertificateParams::default();
        params.subject_alt_names = sans;
        if ca {
            params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        }
        let key = KeyPair::generate().unwrap();
        params.serialize_request(&key).unwrap().pem().unwrap()
    }

    fn uri(s: &str) -> SanType {
        SanType::URI(s.try_into().unwrap())
    }

    fn dns(s: &str) -> SanType {
        SanType::DnsName(s.try_into().unwrap())
    }

    const ME: &str = "spiffe://cluster.local/ns/shop/sa/web";
    const MY_NAME: &str = "web.shop.serviceaccount.identity.meshlet.cluster.local";

    #[test]
    fn accepts_exactly_the_identity() {
        assert!(check(&csr(vec![uri(ME), dns(MY_NAME)], false), &id()).is_ok());
        assert!(check(&csr(vec![uri(ME)], false), &id()).is_ok());
    }

    #[test]
    fn refuses_anything_else_saying_what_was_asked() {
        let cases = [
            (vec![], "no SANs"),
            (vec![dns(MY_NAME)], "exactly one URI SAN"),
            (
                vec![uri("spiffe://cluster.local/ns/shop/sa/admin")],
                "URI:spiffe://cluster.local/ns/shop/sa/admin",
            ),
            (
                vec![uri("spiffe://other.org/ns/shop/sa/web")],
                "another identity",
            ),
            (vec![uri(ME), uri(ME)], "exactly one URI SAN"),
            (vec![uri(ME), dns("web.shop.svc")], "DNS:web.shop.svc"),
            (
                vec![uri(ME), SanType::IpAddress("10.0.0.1".parse().unwrap())],
                "IP:10.0.0.1",
            ),
        ];
        for (sans, want) in cases {
            let err = check(&csr(sans.clone(), false), &id()).unwrap_err();
            let text = err.to_string();
            assert!(
                matches!(err, CsrRefusal::WrongIdentity(_)),
                "{sans:?}: {text}"
            );
            assert!(text.contains(want), "{sans:?}: {text}");
            assert!(
                text.contains(&format!("allowed: exactly URI:{ME}")),
                "{text}"
            );
            assert!(!text.contains('\n'), "one line: {text}");
        }
        let err = check(&csr(vec![uri(ME)], true), &id()).unwrap_err();
        assert!(err.to_string().contains("CA"), "{err}");
    }

    #[test]
    fn garbage_is_malformed() {
        for bad in [
            "",
            "hello",
            "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
        ] {
            let err = check(bad, &id()).unwrap_err();
            assert!(matches!(err, CsrRefusal::Malformed(_)), "{bad:?}: {err}");
            assert!(err.to_string().starts_with("csrPem: "), "{err}");
        }
    }

    #[test]
    fn a_tampered_csr_fails_its_signature_check() {
        let good = csr(vec![uri(ME)], false);
        let der = rustls::pki_types::pem::PemObject::from_pem_slice(good.as_bytes())
            .map(|d: rustls::pki_types::CertificateSigningRequestDer<'static>| d.as_ref().to_vec())
            .unwrap();
        let mut der = der;
        let n = der.len();
        der[n - 5] ^= 0x55; // inside the signature
        let text = {
            use base64::Engine as _;
            let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
            format!(
                "-----BEGIN CERTIFICATE REQUEST-----\n{b64}\n-----END CERTIFICATE REQUEST-----\n"
            )
        };
        let err = check(&text, &id()).unwrap_err();
        assert!(matches!(err, CsrRefusal::Malformed(_)), "{err}");
    }
}
