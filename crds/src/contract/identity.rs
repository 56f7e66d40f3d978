//! Workload identity: the SPIFFE ID a proxy's certificate carries,
//! `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`, its
//! parser, the projected ServiceAccount token a proxy uses to prove it, and
//! the wire types of the operator's certify endpoint.
//!
//! ## How a proxy gets its certificate
//! 1. The proxy generates its key pair in memory (the key never leaves the
//!    pod) and a CSR whose only SAN is its SPIFFE ID (URI) plus the
//!    identity's [`SpiffeId::tls_server_name`] (DNS).
//! 2. It POSTs a [`CertifyRequest`] to [`CERTIFY_PATH`] on the operator's
//!    TLS port ([`crate::contract::ports::OPERATOR_CONFIG_PORT`], the same
//!    listener as the config stream) with `Authorization: Bearer <token>`,
//!    the projected token of audience [`TOKEN_AUDIENCE`]. It verifies the
//!    operator's serving certificate against its trust anchors
//!    ([`crate::contract::proxy_env::TRUST_ANCHORS`]) and the name
//!    [`OPERATOR_SERVER_NAME`].
//! 3. The operator checks the token with a TokenReview (audience
//!    [`TOKEN_AUDIENCE`]), checks that the CSR asks for exactly the token's
//!    ServiceAccount identity, and answers a [`CertifyResponse`] (200), or an
//!    [`IdentityErrorBody`] with 400 (bad CSR), 401 (bad token) or 403 (CSR
//!    for another identity).
//! 4. The proxy renews at `renewAfterUnix` (about 70 % of the lifetime).
//!
//! ## Trust anchors and rotation
//! The issuer (certificate + key) lives in the Secret [`ISSUER_SECRET`]
//! (`tls.crt`, `tls.key`, and `ca.crt`: the anchor it chains to). The
//! operator generates a self-signed anchor-issuer there on first start
//! unless the user supplied one. The trusted anchors are the PEM bundle in
//! the ConfigMap [`TRUST_ANCHORS_CONFIGMAP`] key [`TRUST_ANCHORS_KEY`]; the
//! operator creates it from `ca.crt` when missing and otherwise never
//! rewrites it. Proxies get the bundle at injection (env) and every update
//! on the config stream ([`crate::contract::config::ProxyConfig::identity`]),
//! so rotation is: add the new anchor to the bundle, replace the issuer
//! Secret, wait one certificate lifetime, remove the old anchor.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Trust domain used when the install does not choose one.
pub const DEFAULT_TRUST_DOMAIN: &str = "cluster.local";

/// Audience of the projected ServiceAccount token a proxy sends to the
/// operator's identity service; the operator checks it with a TokenReview
/// for exactly this audience, so tokens minted for other uses are refused.
pub const TOKEN_AUDIENCE: &str = "meshlet.dev/identity";

/// Where the injector mounts that token in the proxy container.
pub const TOKEN_PATH: &str = "/var/run/secrets/meshlet.dev/identity/token";

/// Lifetime the injector asks for on that token, in seconds (Kubernetes
/// rotates it before expiry; 600 s is the minimum Kubernetes accepts).
pub const TOKEN_EXPIRATION_SECONDS: i64 = 3600;

/// Path of the certify endpoint on the operator's TLS port.
pub const CERTIFY_PATH: &str = "/v1/certify";

/// Default lifetime of a proxy certificate, in seconds (24 h).
pub const DEFAULT_CERT_LIFETIME_SECS: u64 = 24 * 3600;

/// Fraction of a certificate's lifetime after which the proxy renews it.
pub const RENEW_AT_FRACTION: f64 = 0.7;

/// Secret in the install namespace holding the issuer: `tls.crt`,
/// `tls.key` and `ca.crt` (the trust anchor the issuer chains to).
pub const ISSUER_SECRET: &str = "meshlet-identity-issuer";

/// ConfigMap in the install namespace holding the trusted anchors bundle.
pub const TRUST_ANCHORS_CONFIGMAP: &str = "meshlet-trust-anchors";

/// Key of the PEM bundle in [`TRUST_ANCHORS_CONFIGMAP`].
pub const TRUST_ANCHORS_KEY: &str = "ca-bundle.crt";

/// DNS name the operator's serving certificate carries and proxies verify:
/// the operator Service in the install namespace.
pub const OPERATOR_SERVER_NAME: &str = "meshlet-operator.meshlet-system.svc";

/// ALPN protocol between proxies for HTTP/2 inside mTLS.
pub const ALPN_H2: &[u8] = b"h2";
/// ALPN protocol between proxies for HTTP/1.1 inside mTLS.
pub const ALPN_HTTP1: &[u8] = b"http/1.1";
/// ALPN protocol between proxies for opaque TCP inside mTLS.
pub const ALPN_OPAQUE: &[u8] = b"meshlet.dev/opaque";

/// Body of a certify request (JSON, camelCase).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct CertifyRequest {
    /// PEM PKCS#10 CSR for the proxy's own identity.
    pub csr_pem: String,
}

/// Answer to a successful certify request.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct CertifyResponse {
    /// PEM: the leaf certificate first, then any intermediates (not the anchor).
    pub certificate_chain_pem: String,
    /// PEM bundle of the currently trusted anchors.
    pub trust_anchors_pem: String,
    /// When the leaf expires (seconds since the Unix epoch).
    pub expires_unix: u64,
    /// When the proxy should request a new one (seconds since the Unix epoch).
    pub renew_after_unix: u64,
}

/// Error body of the certify endpoint (and of the config stream).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct IdentityErrorBody {
    /// One line: what is wrong and how to fix it.
    pub error: String,
}

const SCHEME: &str = "spiffe://";

/// A workload identity: a ServiceAccount in a namespace, in a trust domain.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpiffeId {
    trust_domain: String,
    namespace: String,
    service_account: String,
}

/// Why a SPIFFE ID or one of its parts is not valid; names the part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// It does not start with `spiffe://`.
    #[error("{0:?}: a Meshlet identity starts with \"spiffe://\"")]
    Scheme(String),
    /// The path is not `/ns/<namespace>/sa/<service-account>`.
    #[error("{0:?}: expected spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>")]
    Path(String),
    /// The trust domain is not valid.
    #[error(
        "trust domain {0:?}: use lowercase letters, digits, '.', '-' and '_' (1-255 characters)"
    )]
    TrustDomain(String),
    /// The namespace is not a DNS-1123 label.
    #[error("namespace {0:?}: not a DNS-1123 label (lowercase letters, digits and '-', 1-63 characters, starting and ending with a letter or digit)")]
    Namespace(String),
    /// The service account is not a DNS-1123 subdomain.
    #[error("service account {0:?}: not a DNS-1123 subdomain (lowercase letters, digits, '-' and '.', 1-253 characters)")]
    ServiceAccount(String),
}

fn valid_trust_domain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_')
        })
}

fn valid_label(s: &str) -> bool {
    let bytes = s.as_bytes();
    !s.is_empty()
        && s.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
}

fn valid_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(valid_label)
}

impl SpiffeId {
    /// Builds an identity, checking each part.
    pub fn new(
        trust_domain: &str,
        namespace: &str,
        service_account: &str,
    ) -> Result<Self, IdentityError> {
        if !valid_trust_domain(trust_domain) {
            return Err(IdentityError::TrustDomain(trust_domain.into()));
        }
        if !valid_label(namespace) {
            return Err(IdentityError::Namespace(namespace.into()));
        }
        if !valid_subdomain(service_account) {
            return Err(IdentityError::ServiceAccount(service_account.into()));
        }
        Ok(SpiffeId {
            trust_domain: trust_domain.into(),
            namespace: namespace.into(),
            service_account: service_account.into(),
        })
    }

    /// The trust domain (`cluster.local`).
    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The ServiceAccount name.
    pub fn service_account(&self) -> &str {
        &self.service_account
    }

    /// The DNS name standing for this identity in TLS: the SNI a client
    /// proxy sends and the DNS SAN the certificate carries next to the
    /// SPIFFE URI, so standard server-name verification checks identity.
    /// `<sa>.<ns>.serviceaccount.identity.meshlet.<trust-domain>`.
    pub fn tls_server_name(&self) -> String {
        format!(
            "{}.{}.serviceaccount.identity.meshlet.{}",
            self.service_account, self.namespace, self.trust_domain
        )
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{SCHEME}{}/ns/{}/sa/{}",
            self.trust_domain, self.namespace, self.service_account
        )
    }
}

impl FromStr for SpiffeId {
    type Err = IdentityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = s
            .strip_prefix(SCHEME)
            .ok_or_else(|| IdentityError::Scheme(s.into()))?;
        let (trust_domain, path) = rest
            .split_once('/')
            .ok_or_else(|| IdentityError::Path(s.into()))?;
        match path.split('/').collect::<Vec<_>>().as_slice() {
            ["ns", namespace, "sa", service_account] => {
                SpiffeId::new(trust_domain, namespace, service_account)
            }
            _ => Err(IdentityError::Path(s.into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn formats_and_parses() {
        let id = SpiffeId::new(DEFAULT_TRUST_DOMAIN, "shop", "web").unwrap();
        assert_eq!(id.to_string(), "spiffe://cluster.local/ns/shop/sa/web");
        assert_eq!("spiffe://cluster.local/ns/shop/sa/web".parse(), Ok(id));
    }

    #[test]
    fn errors_name_the_bad_part() {
        let cases = [
            ("http://cluster.local/ns/a/sa/b", "spiffe://"),
            ("spiffe://cluster.local", "expected spiffe://"),
            ("spiffe://cluster.local/ns/a/sa", "expected spiffe://"),
            ("spiffe://cluster.local/ns/a/sa/b/c", "expected spiffe://"),
            ("spiffe://cluster.local/sa/a/ns/b", "expected spiffe://"),
            ("spiffe://Cluster.Local/ns/a/sa/b", "trust domain"),
            ("spiffe:///ns/a/sa/b", "trust domain"),
            ("spiffe://cluster.local/ns/A/sa/b", "namespace"),
            ("spiffe://cluster.local/ns/-a/sa/b", "namespace"),
            ("spiffe://cluster.local/ns//sa/b", "namespace"),
            ("spiffe://cluster.local/ns/a/sa/b_c", "service account"),
            ("spiffe://cluster.local/ns/a/sa/", "service account"),
        ];
        for (text, want) in cases {
            let err = text.parse::<SpiffeId>().unwrap_err().to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn tls_server_name_is_a_dns_name_per_identity() {
        let id: SpiffeId = "spiffe://cluster.local/ns/shop/sa/web".parse().unwrap();
        assert_eq!(
            id.tls_server_name(),
            "web.shop.serviceaccount.identity.meshlet.cluster.local"
        );
    }

    #[test]
    fn certify_wire_format_is_camel_case() {
        let r = CertifyResponse {
            certificate_chain_pem: "c".into(),
            trust_anchors_pem: "a".into(),
            expires_unix: 2,
            renew_after_unix: 1,
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"certificateChainPem": "c", "trustAnchorsPem": "a",
                "expiresUnix": 2, "renewAfterUnix": 1})
        );
        let q: CertifyRequest = serde_json::from_str(r#"{"csrPem":"x"}"#).unwrap();
        assert_eq!(q.csr_pem, "x");
    }

    #[test]
    fn service_accounts_may_contain_dots() {
        let id: SpiffeId = "spiffe://example.org/ns/a/sa/b.c".parse().unwrap();
        assert_eq!(id.service_account(), "b.c");
        assert_eq!(id.trust_domain(), "example.org");
        assert_eq!(id.namespace(), "a");
    }

    proptest! {
        #[test]
        fn display_then_parse_is_identity(
            td in "[a-z0-9][a-z0-9._-]{0,20}",
            ns in "[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?",
            sa in "[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?(\\.[a-z0-9]{1,5})?",
        ) {
            let id = SpiffeId::new(&td, &ns, &sa).unwrap();
            prop_assert_eq!(id.to_string().parse::<SpiffeId>(), Ok(id));
        }
    }
}
