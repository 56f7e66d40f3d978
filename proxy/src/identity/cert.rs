//! What the proxy reads out of a verified certificate: the SPIFFE ID in
//! its URI SAN and its expiry.

use meshlet_crds::contract::identity::SpiffeId;
use std::time::{Duration, SystemTime};
use x509_parser::extensions::GeneralName;

/// The SPIFFE identity named by the certificate's URI SAN. Exactly one
/// `spiffe://` URI is accepted, so a certificate cannot claim two identities.
pub fn leaf_identity(der: &[u8]) -> Result<SpiffeId, String> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|e| format!("certificate: {e}"))?;
    let san = cert
        .subject_alternative_name()
        .map_err(|e| format!("certificate subjectAltName: {e}"))?
        .ok_or("certificate has no subjectAltName")?;
    let mut ids = san.value.general_names.iter().filter_map(|n| match n {
        GeneralName::URI(u) if u.starts_with("spiffe://") => Some(*u),
        _ => None,
    });
    let (Some(uri), None) = (ids.next(), ids.next()) else {
        return Err("certificate must carry exactly one spiffe:// URI SAN".into());
    };
    uri.parse().map_err(|e| format!("certificate URI SAN: {e}"))
}

/// When the certificate stops being valid.
pub fn leaf_not_after(der: &[u8]) -> Result<SystemTime, String> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|e| format!("certificate: {e}"))?;
    let secs = cert.validity().not_after.timestamp();
    Ok(SystemTime::UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64))
}
