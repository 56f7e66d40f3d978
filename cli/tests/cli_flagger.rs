//! What Flagger's `linkerd` provider writes, against Meshlet on a real
//! kube-apiserver: a TrafficSplit `split.smi-spec.io/v1alpha1` exactly as
//! Flagger v1.36.1 builds it (pkg/router/smi.go: backends canary then
//! primary, weights `resource.NewQuantity(w, DecimalExponent)`, i.e. "0" and
//! "100", a controller owner reference to the Canary), created and then
//! updated (PUT) step by step as Flagger does, through the Full CRDs with
//! Meshlet's conversion and validating webhooks served on loopback by the
//! same functions meshlet-webhook serves. The stored v1alpha4 object must
//! carry the weights, Flagger's own reads must give back what it wrote, and
//! `meshlet canary`'s view of the split must agree.

mod common;

use std::time::Duration;

use anyhow::{Context, Result};
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, WebhookClientConfig,
};
use k8s_openapi::ByteString;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::Api;
use meshlet_crds::manifests::{self, CrdRender};
use meshlet_crds::split::v1alpha4::TrafficSplit;
use meshlet_testenv::json_server::JsonServer;
use serde_json::{json, Value};

fn v1alpha1_api(client: &kube::Client, ns: &str) -> Api<DynamicObject> {
    let resource = ApiResource {
        group: "split.smi-spec.io".into(),
        version: "v1alpha1".into(),
        api_version: "split.smi-spec.io/v1alpha1".into(),
        kind: "TrafficSplit".into(),
        plural: "trafficsplits".into(),
    };
    Api::namespaced_with(client.clone(), ns, &resource)
}

/// Flagger's spec for (primary, canary) weights.
fn flagger_spec(primary: i64, canary: i64) -> Value {
    json!({"service": "podinfo", "backends": [
        {"service": "podinfo-canary", "weight": canary.to_string()},
        {"service": "podinfo-primary", "weight": primary.to_string()},
    ]})
}

#[tokio::test]
async fn flaggers_v1alpha1_traffic_split_is_accepted_converted_and_read_back() -> Result<()> {
    let env = meshlet_testenv::shared().await?;
    let client = env.client();

    // meshlet-webhook's /convert and /validate, on loopback.
    let convert = JsonServer::start(|request| {
        match serde_json::from_value(request) {
            Ok(review) => serde_json::to_value(meshlet_crds::conversion::review(review)),
            Err(e) => Ok(json!({"error": e.to_string()})),
        }
        .unwrap_or_default()
    })
    .await?;
    let validate = JsonServer::start(|request| {
        let body = serde_json::to_vec(&request).unwrap_or_default();
        serde_json::from_slice(&meshlet_webhook::review::validate(&body)).unwrap_or_default()
    })
    .await?;

    let mut crds = manifests::all(CrdRender::Full);
    for crd in &mut crds {
        if let Some(webhook) = crd
            .spec
            .conversion
            .as_mut()
            .and_then(|c| c.webhook.as_mut())
        {
            webhook.client_config = Some(WebhookClientConfig {
                url: Some(format!("{}/convert", convert.url)),
                ca_bundle: Some(ByteString(convert.ca_pem.clone().into_bytes())),
                service: None,
            });
        }
    }
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in &crds {
        let name = crd.metadata.name.clone().unwrap();
        api.patch(
            &name,
            &PatchParams::apply("test").force(),
            &Patch::Apply(crd),
        )
        .await?;
    }
    common::wait_established(&client).await?;
    let namespace = env.create_namespace("flagger").await?;
    let vwc: ValidatingWebhookConfiguration = serde_json::from_value(json!({
        "metadata": {"name": "meshlet-validate-flagger-test"},
        "webhooks": [{
            "name": "validate.meshlet.dev", "admissionReviewVersions": ["v1"], "sideEffects": "None",
            "failurePolicy": "Fail", "timeoutSeconds": 5,
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
            "clientConfig": {"url": format!("{}/validate", validate.url),
                             "caBundle": base64_encode(&validate.ca_pem)},
            "rules": [{"apiGroups": ["split.smi-spec.io"], "apiVersions": ["*"],
                       "operations": ["CREATE", "UPDATE"], "resources": ["trafficsplits"]}]
        }]
    }))?;
    Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .patch(
            "meshlet-validate-flagger-test",
            &PatchParams::apply("test").force(),
            &Patch::Apply(&vwc),
        )
        .await?;

    // Created as Flagger creates it (Canary "podinfo" owns it).
    let splits = v1alpha1_api(&client, &namespace);
    let created: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "split.smi-spec.io/v1alpha1", "kind": "TrafficSplit",
        "metadata": {"name": "podinfo", "namespace": namespace, "ownerReferences": [{
            "apiVersion": "flagger.app/v1beta1", "kind": "Canary", "name": "podinfo",
            "uid": "7d5a0d2e-0000-4000-8000-000000000001", "controller": true, "blockOwnerDeletion": true}]},
        "spec": flagger_spec(100, 0),
    }))?;
    // The validating webhook may take a moment to be called (configuration
    // propagation); an invalid split must be refused by then.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let bad: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "split.smi-spec.io/v1alpha1", "kind": "TrafficSplit",
            "metadata": {"name": "bad", "namespace": namespace},
            "spec": {"service": "podinfo", "backends": [{"service": "podinfo", "weight": "1"}]},
        }))?;
        match splits.create(&PostParams::default(), &bad).await {
            Err(kube::Error::Api(e)) => {
                assert!(
                    e.message.contains("spec.backends[0].service"),
                    "{}",
                    e.message
                );
                break;
            }
            Ok(_) => {
                splits.delete("bad", &Default::default()).await?;
                anyhow::ensure!(
                    tokio::time::Instant::now() < deadline,
                    "the validating webhook is never called"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    splits
        .create(&PostParams::default(), &created)
        .await
        .context("Flagger's create")?;

    // Flagger's steps: get, replace the spec, update (PUT), in v1alpha1.
    let stored: Api<TrafficSplit> = Api::namespaced(client.clone(), &namespace);
    for (primary, canary) in [(90, 10), (80, 20), (50, 50), (0, 100), (100, 0)] {
        let mut current = splits.get("podinfo").await?;
        current.data["spec"] = flagger_spec(primary, canary);
        splits
            .replace("podinfo", &PostParams::default(), &current)
            .await
            .context("Flagger's update")?;

        // Stored in v1alpha4: quantity × 1000.
        let hub = stored.get("podinfo").await?;
        let weights: Vec<(String, u64)> = hub
            .spec
            .backends
            .iter()
            .map(|b| (b.service.clone(), b.weight))
            .collect();
        assert_eq!(
            weights,
            [
                ("podinfo-canary".to_string(), canary as u64 * 1000),
                ("podinfo-primary".to_string(), primary as u64 * 1000)
            ]
        );
        // Flagger reads back exactly what it wrote (it diffs specs to decide on updates).
        let back = splits.get("podinfo").await?;
        assert_eq!(back.data["spec"], flagger_spec(primary, canary));
        // And `meshlet canary` sees the same share.
        assert_eq!(
            meshlet_cli::canary::split::canary_percent(&hub, "podinfo-canary"),
            canary as u64
        );
    }
    Ok(())
}

fn base64_encode(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}
