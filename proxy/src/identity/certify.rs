//! One certify exchange with the operator: a fresh key and CSR, POSTed to
//! `/v1/certify` over TLS with the projected ServiceAccount token, and the
//! operator's answer (a certificate, or a refusal with its reason).

use super::{new_key_and_csr, parse_certs, TlsStore};
use crate::http::client;
use crate::transport::{connect_operator, OperatorTls};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use meshlet_crds::contract::identity::{
    CertifyRequest, CertifyResponse, IdentityErrorBody, CERTIFY_PATH,
};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// Largest answer read from the operator.
const MAX_BODY: usize = 1 << 20;

/// Where and as whom to ask.
#[derive(Debug, Clone)]
pub struct CertifySettings {
    /// The operator's address, `host:port`.
    pub operator: String,
    /// The name the operator's certificate must carry.
    pub server_name: String,
    /// The projected token, re-read on every request (the kubelet rotates it).
    pub token_file: PathBuf,
}

/// Why a certify exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum CertifyError {
    /// The operator answered and refused; `message` is its reason.
    #[error("operator refused the certificate request ({status}): {message}")]
    Refused {
        /// HTTP status.
        status: http::StatusCode,
        /// The operator's error message.
        message: String,
    },
    /// Anything else: connection, TLS, token file, malformed answer.
    #[error("{0}")]
    Failed(String),
}

fn failed(e: impl std::fmt::Display) -> CertifyError {
    CertifyError::Failed(e.to_string())
}

/// A certificate now in use, and when to renew it.
#[derive(Debug, Clone, Copy)]
pub struct Issued {
    /// When the certificate expires.
    pub expires: SystemTime,
    /// When to ask for the next one.
    pub renew_after: SystemTime,
}

fn unix(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

/// Gets a certificate for this proxy's identity and puts it (and the
/// anchors the operator sent) into `tls`.
pub async fn certify_once(
    settings: &CertifySettings,
    tls: &TlsStore,
) -> Result<Issued, CertifyError> {
    let local = tls
        .local()
        .ok_or_else(|| failed("identity is disabled"))?
        .clone();
    let token = std::fs::read_to_string(&settings.token_file)
        .map_err(|e| failed(format!("token file {}: {e}", settings.token_file.display())))?;
    let generated = new_key_and_csr(&local.id).map_err(failed)?;
    let operator_tls = OperatorTls {
        config: tls
            .load()
            .operator
            .clone()
            .ok_or_else(|| failed("no trust anchors to verify the operator with"))?,
        server_name: settings.server_name.clone(),
    };
    let (io, h2) = connect_operator(&settings.operator, Some(&operator_tls))
        .await
        .map_err(failed)?;
    let (mut sender, conn) = client::handshake::<Full<Bytes>>(io, h2)
        .await
        .map_err(failed)?;
    let body = serde_json::to_vec(&CertifyRequest {
        csr_pem: generated.csr_pem,
    })
    .map_err(failed)?;
    let req = http::Request::post(format!("https://{}{CERTIFY_PATH}", settings.operator))
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(
            http::header::AUTHORIZATION,
            format!("Bearer {}", token.trim()),
        )
        .body(Full::new(Bytes::from(body)))
        .map_err(failed)?;
    let result = async {
        let rsp = sender.send(req).await.map_err(failed)?;
        let status = rsp.status();
        let body = http_body_util::Limited::new(rsp.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(failed)?
            .to_bytes();
        Ok::<_, CertifyError>((status, body))
    }
    .await;
    conn.abort();
    let (status, body) = result?;
    if !status.is_success() {
        let message = serde_json::from_slice::<IdentityErrorBody>(&body)
            .map(|b| b.error)
            .unwrap_or_else(|_| String::from_utf8_lossy(&body).trim().to_string());
        return Err(CertifyError::Refused { status, message });
    }
    let answer: CertifyResponse =
        serde_json::from_slice(&body).map_err(|e| failed(format!("certify answer: {e}")))?;
    if !answer.trust_anchors_pem.trim().is_empty() {
        tls.set_anchors("certify answer trustAnchorsPem", &answer.trust_anchors_pem)
            .map_err(failed)?;
    }
    let chain = parse_certs(
        "certify answer certificateChainPem",
        &answer.certificate_chain_pem,
    )
    .map_err(failed)?;
    tls.set_certificate(chain, generated.key)
        .map_err(|e| failed(format!("certify answer: {e}")))?;
    Ok(Issued {
        expires: unix(answer.expires_unix),
        renew_after: unix(answer.renew_after_unix),
    })
}
