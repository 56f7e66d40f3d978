//! PEM certificate bundles (caBundles, trust anchors): parse them and say
//! whether any is expired or expires within a margin.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One certificate of a bundle, as far as checks care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Its subject, for messages.
    pub subject: String,
    /// Expiry, seconds since the epoch.
    pub not_after: i64,
}

/// Parses every certificate of a PEM bundle; an empty bundle or a block
/// that is not a certificate is an error.
pub fn parse_bundle(pem: &[u8]) -> Result<Vec<CertInfo>, String> {
    let mut certs = Vec::new();
    for (i, block) in x509_parser::pem::Pem::iter_from_buffer(pem).enumerate() {
        let block = block.map_err(|e| format!("PEM block {}: {e}", i + 1))?;
        let cert = block
            .parse_x509()
            .map_err(|e| format!("PEM block {}: not an X.509 certificate: {e}", i + 1))?;
        certs.push(CertInfo {
            subject: cert.subject().to_string(),
            not_after: cert.validity().not_after.timestamp(),
        });
    }
    if certs.is_empty() {
        return Err("no PEM certificate in it".into());
    }
    Ok(certs)
}

/// Checks a bundle: `Ok(summary)` when every certificate is valid for at
/// least `margin` more, else what is wrong.
pub fn check_bundle(pem: &[u8], margin: Duration, now: SystemTime) -> Result<String, String> {
    let certs = parse_bundle(pem)?;
    let now = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let mut earliest = i64::MAX;
    for cert in &certs {
        let left = cert.not_after - now;
        if left <= 0 {
            return Err(format!("certificate {:?} has expired", cert.subject));
        }
        if left < margin.as_secs() as i64 {
            return Err(format!(
                "certificate {:?} expires in {} (less than {})",
                cert.subject,
                days(left),
                days(margin.as_secs() as i64)
            ));
        }
        earliest = earliest.min(left);
    }
    Ok(format!(
        "{} certificate{}, valid for {} more",
        certs.len(),
        if certs.len() == 1 { "" } else { "s" },
        days(earliest)
    ))
}

fn days(secs: i64) -> String {
    if secs >= 2 * 86400 {
        format!("{} days", secs / 86400)
    } else {
        format!("{} hours", secs / 3600)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert_pem(days_valid: i64) -> String {
        let mut params = rcgen::CertificateParams::new(vec!["test".into()]).unwrap();
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(days_valid);
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().pem()
    }

    #[test]
    fn valid_expiring_expired_and_garbage() {
        let margin = Duration::from_secs(30 * 86400);
        let now = SystemTime::now();
        let ok = check_bundle(cert_pem(90).as_bytes(), margin, now).unwrap();
        assert!(
            ok == "1 certificate, valid for 89 days more"
                || ok == "1 certificate, valid for 90 days more",
            "{ok}"
        );
        let two = format!("{}{}", cert_pem(90), cert_pem(10));
        let err = check_bundle(two.as_bytes(), margin, now).unwrap_err();
        assert!(
            err.contains("expires in 9 days") || err.contains("expires in 10 days"),
            "{err}"
        );
        let err = check_bundle(cert_pem(-1).as_bytes(), margin, now).unwrap_err();
        assert!(err.contains("expired"), "{err}");
        assert!(check_bundle(b"", margin, now)
            .unwrap_err()
            .contains("no PEM"));
        assert!(check_bundle(
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            margin,
            now
        )
        .is_err());
    }
}
