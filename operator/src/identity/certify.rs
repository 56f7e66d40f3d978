//! The certify endpoint, `POST /v1/certify` on the config port: the caller's
//! Bearer token is checked with a TokenReview (Meshlet's audience), its
//! ServiceAccount becomes the SPIFFE ID the CSR must ask for, and the
//! answer is a `CertifyResponse` or an `IdentityErrorBody` (400 bad body or
//! CSR, 401 bad token, 403 another identity, 503 the CA cannot sign now).
//! Every answer is counted by result and reason; refusals are logged.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use meshlet_crds::contract::identity::{CertifyRequest, IdentityErrorBody, SpiffeId, CERTIFY_PATH};
use serde::Serialize;

use super::ca::SignRefusal;
use super::csr::CsrRefusal;
use super::Ca;
use crate::http::Body;
use crate::metrics::Metrics;
use crate::stream::auth::Authenticator;
use crate::Error;

/// Largest request body accepted (a CSR is well under 2 KiB).
pub const MAX_BODY: usize = 64 * 1024;

/// Serves certify requests.
pub struct Certifier {
    /// The CA.
    pub ca: Arc<Ca>,
    /// TokenReview for Meshlet's audience (never disabled: a certificate
    /// is only ever issued for a proven identity).
    pub auth: Authenticator,
    /// Metrics.
    pub metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Certifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certifier").finish_non_exhaustive()
    }
}

/// A JSON response.
pub fn json(status: StatusCode, body: &impl Serialize) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::CACHE_CONTROL, "no-store")
        .body(
            Full::new(Bytes::from(
                serde_json::to_vec(body).expect("responses serialize"),
            ))
            .boxed(),
        )
        .expect("a valid response")
}

/// A refusal: status, metric reason, one-line message.
struct Refused(StatusCode, &'static str, String);

impl Certifier {
    /// Answers one request.
    pub async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        match self.certify(req).await {
            Ok((id, rsp)) => {
                self.metrics.certify("issued", "none");
                tracing::info!(%id, expires_unix = rsp.expires_unix, "certificate issued");
                json(StatusCode::OK, &rsp)
            }
            Err(Refused(status, reason, error)) => {
                self.metrics.certify("refused", reason);
                tracing::info!(reason, %error, "certificate refused");
                json(status, &IdentityErrorBody { error })
            }
        }
    }

    async fn certify(
        &self,
        req: Request<Incoming>,
    ) -> Result<(SpiffeId, meshlet_crds::contract::identity::CertifyResponse), Refused> {
        if req.method() != Method::POST {
            return Err(Refused(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("use POST {CERTIFY_PATH}"),
            ));
        }
        let authorization = req
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let caller = match self.auth.authenticate(authorization.as_deref()).await {
            Ok(Some(caller)) => caller,
            Ok(None) => {
                return Err(Refused(
                    StatusCode::UNAUTHORIZED,
                    "unauthenticated",
                    "certificates are only issued to callers with a ServiceAccount token".into(),
                ))
            }
            Err(Error::Unauthenticated(why)) => {
                return Err(Refused(StatusCode::UNAUTHORIZED, "unauthenticated", why))
            }
            Err(error) => {
                return Err(Refused(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "token_review_failed",
                    format!("checking the token: {error}"),
                ))
            }
        };
        let body = Limited::new(req.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| {
                Refused(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    format!("body: {e} (at most {MAX_BODY} bytes)"),
                )
            })?
            .to_bytes();
        let request: CertifyRequest = serde_json::from_slice(&body).map_err(|e| {
            Refused(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("body: expected JSON {{\"csrPem\": \"<PEM CSR>\"}}: {e}"),
            )
        })?;
        let id = SpiffeId::new(
            self.ca.trust_domain(),
            &caller.namespace,
            &caller.service_account,
        )
        .map_err(|e| Refused(StatusCode::FORBIDDEN, "wrong_identity", e.to_string()))?;
        match self.ca.certify(&request.csr_pem, &id) {
            Ok(rsp) => Ok((id, rsp)),
            Err(SignRefusal::Csr(refusal @ CsrRefusal::Malformed(_))) => Err(Refused(
                StatusCode::BAD_REQUEST,
                "bad_csr",
                refusal.to_string(),
            )),
            Err(SignRefusal::Csr(CsrRefusal::WrongIdentity(why))) => Err(Refused(
                StatusCode::FORBIDDEN,
                "wrong_identity",
                format!("token of {id}: {why}"),
            )),
            Err(SignRefusal::AnchorNotTrusted(why)) => Err(Refused(
                StatusCode::SERVICE_UNAVAILABLE,
                "anchor_not_trusted",
                why,
            )),
            Err(SignRefusal::Sign(why)) => Err(Refused(
                StatusCode::INTERNAL_SERVER_ERROR,
                "sign_failed",
                why,
            )),
        }
    }
}
