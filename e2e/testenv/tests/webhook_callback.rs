//! kube-apiserver calls an admission webhook served by the test on
//! https://127.0.0.1:<port>, trusting it through the webhook's caBundle.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Result;
use k8s_openapi::api::admissionregistration::v1::{
    RuleWithOperations, ValidatingWebhook, ValidatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::ByteString;
use kube::api::{ObjectMeta, PostParams};
use kube::Api;

use meshlet_testenv::json_server::JsonServer;

#[tokio::test]
async fn validating_webhook_on_loopback_is_called() -> Result<()> {
    let env = meshlet_testenv::shared().await?;
    let ns = env.create_namespace("webhook").await?;
    let client = env.client();

    // Denies everything it is asked about.
    let server = JsonServer::start(|review| {
        serde_json::json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": {
                "uid": review["request"]["uid"],
                "allowed": false,
                "status": {"code": 403, "message": "denied by the testenv webhook"}
            }
        })
    })
    .await?;

    // Only ConfigMaps labelled deny=yes in this test's namespace are sent.
    let webhook = ValidatingWebhookConfiguration {
        metadata: ObjectMeta {
            name: Some(format!("{ns}-deny")),
            ..Default::default()
        },
        webhooks: Some(vec![ValidatingWebhook {
            name: "deny.testenv.meshlet.dev".into(),
            admission_review_versions: vec!["v1".into()],
            side_effects: "None".into(),
            failure_policy: Some("Fail".into()),
            timeout_seconds: Some(5),
            client_config: WebhookClientConfig {
                url: Some(format!("{}/validate", server.url)),
                ca_bundle: Some(ByteString(server.ca_pem.clone().into_bytes())),
                ..Default::default()
            },
            rules: Some(vec![RuleWithOperations {
                api_groups: Some(vec!["".into()]),
                api_versions: Some(vec!["v1".into()]),
                resources: Some(vec!["configmaps".into()]),
                operations: Some(vec!["CREATE".into()]),
                scope: Some("Namespaced".into()),
            }]),
            namespace_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([(
                    "kubernetes.io/metadata.name".to_string(),
                    ns.clone(),
                )])),
                ..Default::default()
            }),
            object_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([("deny".to_string(), "yes".to_string())])),
                ..Default::default()
            }),
            ..Default::default()
        }]),
    };
    let configs: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    configs.create(&PostParams::default(), &webhook).await?;

    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let labelled = |name: &str| ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(BTreeMap::from([("deny".to_string(), "yes".to_string())])),
            ..Default::default()
        },
        ..Default::default()
    };
    // The API server picks up new webhook configurations asynchronously.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut attempt = 0;
    let err = loop {
        attempt += 1;
        match cms
            .create(
                &PostParams::default(),
                &labelled(&format!("denied-{attempt}")),
            )
            .await
        {
            Err(e) => break e,
            Ok(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Ok(_) => anyhow::bail!("the webhook was never called"),
        }
    };
    assert!(
        err.to_string().contains("denied by the testenv webhook"),
        "{err}"
    );
    assert!(server.calls() >= 1);

    // Unlabelled objects are not sent to the webhook and are admitted.
    let before = server.calls();
    cms.create(
        &PostParams::default(),
        &ConfigMap {
            metadata: ObjectMeta {
                name: Some("allowed".into()),
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(server.calls(), before);

    configs
        .delete(&format!("{ns}-deny"), &Default::default())
        .await?;
    Ok(())
}
