//! With kube-controller-manager: ServiceAccounts get created and can get
//! tokens, tokens are reviewable, garbage collection runs.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use k8s_openapi::api::authentication::v1::{
    TokenRequest, TokenRequestSpec, TokenReview, TokenReviewSpec,
};
use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::Api;
use meshlet_testenv::shared_with_controller_manager;

async fn wait_for<F, Fut>(what: &str, mut done: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if done().await? {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("{what}: not within 60 s")
}

#[tokio::test]
async fn default_service_account_gets_a_reviewable_token() -> Result<()> {
    let env = shared_with_controller_manager().await?;
    assert!(env.has_controller_manager());
    eprintln!(
        "control plane + controller manager started in {:?}",
        env.startup_time()
    );
    let ns = env.create_namespace("sa").await?;
    let client = env.client();
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &ns);

    // Only the controller manager's serviceaccount controller makes this.
    let began = Instant::now();
    wait_for("the default ServiceAccount", || async {
        Ok(accounts.get_opt("default").await?.is_some())
    })
    .await?;
    eprintln!("default ServiceAccount after {:?}", began.elapsed());

    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec![],
            expiration_seconds: Some(600),
            ..Default::default()
        },
        ..Default::default()
    };
    let issued = accounts
        .create_token_request("default", &PostParams::default(), &request)
        .await?;
    let token = issued.status.expect("TokenRequest status").token;
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");

    let reviews: Api<TokenReview> = Api::all(client.clone());
    let review = TokenReview {
        spec: TokenReviewSpec {
            token: Some(token),
            audiences: None,
        },
        ..Default::default()
    };
    let status = reviews
        .create(&PostParams::default(), &review)
        .await?
        .status
        .expect("TokenReview status");
    assert_eq!(status.authenticated, Some(true), "{status:?}");
    let user = status.user.expect("reviewed user");
    assert_eq!(
        user.username.as_deref(),
        Some(format!("system:serviceaccount:{ns}:default").as_str())
    );

    // A forged token is rejected.
    let forged = TokenReview {
        spec: TokenReviewSpec {
            token: Some("eyJhbGciOiJSUzI1NiJ9.e30.c2ln".into()),
            audiences: None,
        },
        ..Default::default()
    };
    let status = reviews
        .create(&PostParams::default(), &forged)
        .await?
        .status
        .expect("TokenReview status");
    assert_ne!(status.authenticated, Some(true));
    Ok(())
}

#[tokio::test]
async fn garbage_collector_removes_dependents() -> Result<()> {
    let env = shared_with_controller_manager().await?;
    let ns = env.create_namespace("gc").await?;
    let cms: Api<ConfigMap> = Api::namespaced(env.client(), &ns);
    let owner = cms
        .create(
            &PostParams::default(),
            &ConfigMap {
                metadata: ObjectMeta {
                    name: Some("owner".into()),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await?;
    let dependent = ConfigMap {
        metadata: ObjectMeta {
            name: Some("dependent".into()),
            owner_references: Some(vec![OwnerReference {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                name: "owner".into(),
                uid: owner.metadata.uid.clone().expect("uid"),
                ..Default::default()
            }]),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("k".to_string(), "v".to_string())])),
        ..Default::default()
    };
    cms.create(&PostParams::default(), &dependent).await?;
    cms.delete("owner", &DeleteParams::background()).await?;
    wait_for("the dependent to be garbage collected", || async {
        Ok(cms.get_opt("dependent").await?.is_none())
    })
    .await
}
