//! Who a config stream subscriber (or certify caller) is: its projected
//! ServiceAccount token, checked with a TokenReview for Meshlet's audience;
//! successful reviews are remembered for a few seconds, so a proxy that
//! certifies and subscribes right after costs one review.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use kube::api::PostParams;
use kube::{Api, Client};
use meshlet_crds::contract::identity::TOKEN_AUDIENCE;

use crate::{Error, Result};

/// The TokenReview `extra` key naming the pod a bound token was issued for.
const POD_NAME_EXTRA: &str = "authentication.kubernetes.io/pod-name";

/// An authenticated subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The ServiceAccount's namespace.
    pub namespace: String,
    /// The ServiceAccount.
    pub service_account: String,
    /// The pod the token is bound to, when it is a pod-bound token.
    pub pod: Option<String>,
}

/// How subscribers are authenticated.
#[derive(Clone)]
pub enum Authenticator {
    /// `Authorization: Bearer <token>`, reviewed by the API server for `audience`.
    TokenReview {
        /// Client for TokenReviews.
        client: Client,
        /// Audience the token must be issued for.
        audience: String,
        /// Recent successful reviews.
        cache: Arc<ReviewCache>,
    },
    /// No authentication: any caller may subscribe for any pod (tests and
    /// development only; the operator's flag says so).
    Disabled,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Authenticator::TokenReview { audience, .. } => {
                write!(f, "TokenReview(audience={audience})")
            }
            Authenticator::Disabled => f.write_str("Disabled"),
        }
    }
}

impl Authenticator {
    /// TokenReview with Meshlet's audience.
    pub fn token_review(client: Client) -> Authenticator {
        Authenticator::TokenReview {
            client,
            audience: TOKEN_AUDIENCE.into(),
            cache: Arc::default(),
        }
    }

    /// Authenticates the `Authorization` header value; `None` when disabled.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Option<Caller>> {
        let Authenticator::TokenReview {
            client,
            audience,
            cache,
        } = self
        else {
            return Ok(None);
        };
        let token = authorization
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Error::Unauthenticated(
                    "Authorization header: expected \"Bearer <ServiceAccount token>\"".into(),
                )
            })?;
        if let Some(caller) = cache.get(token) {
            return Ok(Some(caller));
        }
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.into()),
                audiences: Some(vec![audience.clone()]),
            },
            ..Default::default()
        };
        let status = Api::<TokenReview>::all(client.clone())
            .create(&PostParams::default(), &review)
            .await?
            .status
            .unwrap_or_default();
        if status.authenticated != Some(true) {
            let why = status
                .error
                .unwrap_or_else(|| "token not authenticated".into());
            return Err(Error::Unauthenticated(why));
        }
        if !status.audiences.iter().flatten().any(|a| a == audience) {
            return Err(Error::Unauthenticated(format!(
                "token is not issued for audience {audience:?}"
            )));
        }
        let user = status.user.unwrap_or_default();
        let username = user.username.unwrap_or_default();
        let (namespace, service_account) =
            parse_service_account_user(&username).ok_or_else(|| {
                Error::Unauthenticated(format!("{username:?} is not a ServiceAccount"))
            })?;
        let pod = user
            .extra
            .and_then(|mut e| e.remove(POD_NAME_EXTRA))
            .and_then(|v| v.into_iter().next());
        let caller = Caller {
            namespace,
            service_account,
            pod,
        };
        cache.put(token, caller.clone());
        Ok(Some(caller))
    }
}

/// How long a successful TokenReview is trusted without asking again: short,
/// so a deleted pod's or ServiceAccount's token stops working quickly.
pub const REVIEW_TTL: Duration = Duration::from_secs(10);

/// At most this many reviews are remembered.
const REVIEW_CACHE_MAX: usize = 10_000;

/// Successful TokenReviews by token, for [`REVIEW_TTL`].
#[derive(Default)]
pub struct ReviewCache(Mutex<HashMap<String, (Caller, Instant)>>);

impl ReviewCache {
    fn get(&self, token: &str) -> Option<Caller> {
        let map = self.0.lock().expect("not poisoned");
        map.get(token)
            .filter(|(_, at)| at.elapsed() < REVIEW_TTL)
            .map(|(caller, _)| caller.clone())
    }

    fn put(&self, token: &str, caller: Caller) {
        let mut map = self.0.lock().expect("not poisoned");
        if map.len() >= REVIEW_CACHE_MAX {
            map.retain(|_, (_, at)| at.elapsed() < REVIEW_TTL);
            if map.len() >= REVIEW_CACHE_MAX {
                map.clear();
            }
        }
        map.insert(token.to_string(), (caller, Instant::now()));
    }
}

/// `system:serviceaccount:<ns>:<name>` → (ns, name).
pub fn parse_service_account_user(username: &str) -> Option<(String, String)> {
    let rest = username.strip_prefix("system:serviceaccount:")?;
    let (namespace, name) = rest.split_once(':')?;
    (!namespace.is_empty() && !name.is_empty() && !name.contains(':'))
        .then(|| (namespace.to_string(), name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_account_usernames() {
        assert_eq!(
            parse_service_account_user("system:serviceaccount:shop:web"),
            Some(("shop".into(), "web".into()))
        );
        for bad in [
            "admin",
            "system:serviceaccount:shop",
            "system:serviceaccount::web",
            "system:serviceaccount:a:b:c",
        ] {
            assert_eq!(parse_service_account_user(bad), None, "{bad}");
        }
    }
}
