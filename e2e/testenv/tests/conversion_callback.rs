//! kube-apiserver calls a CRD conversion webhook served by the test on
//! https://127.0.0.1:<port> (trusted through the CRD's caBundle).

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use base64::Engine;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, PostParams};
use kube::Api;

use meshlet_testenv::json_server::JsonServer;

/// v1 has `spec.size`; v2 moved it to `spec.dimensions.size`.
fn convert(object: &serde_json::Value, to: &str) -> serde_json::Value {
    let mut out = object.clone();
    let size = object["spec"]["size"]
        .as_i64()
        .or_else(|| object["spec"]["dimensions"]["size"].as_i64());
    out["apiVersion"] = to.into();
    out["spec"] = if to.ends_with("/v2") {
        serde_json::json!({"dimensions": {"size": size}})
    } else {
        serde_json::json!({"size": size})
    };
    out
}

fn crd(url: &str, ca_pem: &str) -> Result<CustomResourceDefinition> {
    let schema = |spec: serde_json::Value| serde_json::json!({"openAPIV3Schema": {"type": "object", "properties": {"spec": spec}}});
    let v1 = schema(serde_json::json!({
        "type": "object", "properties": {"size": {"type": "integer"}}
    }));
    let v2 = schema(serde_json::json!({
        "type": "object", "properties": {"dimensions": {
            "type": "object", "properties": {"size": {"type": "integer"}}
        }}
    }));
    Ok(serde_json::from_value(serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.conv.testenv.meshlet.dev"},
        "spec": {
            "group": "conv.testenv.meshlet.dev",
            "names": {"kind": "Gadget", "plural": "gadgets", "singular": "gadget"},
            "scope": "Namespaced",
            "versions": [
                {"name": "v1", "served": true, "storage": true, "schema": v1},
                {"name": "v2", "served": true, "storage": false, "schema": v2}
            ],
            "conversion": {
                "strategy": "Webhook",
                "webhook": {
                    "conversionReviewVersions": ["v1"],
                    "clientConfig": {
                        "url": format!("{url}/convert"),
                        "caBundle": base64::engine::general_purpose::STANDARD.encode(ca_pem)
                    }
                }
            }
        }
    }))?)
}

#[tokio::test]
async fn conversion_webhook_on_loopback_is_called() -> Result<()> {
    let env = meshlet_testenv::shared().await?;
    let client = env.client();
    let server = JsonServer::start(|review| {
        let request = &review["request"];
        let to = request["desiredAPIVersion"].as_str().unwrap_or_default();
        let converted: Vec<_> = request["objects"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|o| convert(o, to))
            .collect();
        serde_json::json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "ConversionReview",
            "response": {
                "uid": request["uid"],
                "convertedObjects": converted,
                "result": {"status": "Success"}
            }
        })
    })
    .await?;

    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), &crd(&server.url, &server.ca_pem)?)
        .await?;
    let ns = env.create_namespace("conversion").await?;
    let api = |version: &str| {
        let gvk = GroupVersionKind::gvk("conv.testenv.meshlet.dev", version, "Gadget");
        let resource = ApiResource::from_gvk_with_plural(&gvk, "gadgets");
        Api::<DynamicObject>::namespaced_with(client.clone(), &ns, &resource)
    };
    let (v1, v2) = (api("v1"), api("v2"));

    // Stored as v1; the endpoints appear shortly after the CRD is created.
    let gadget: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "conv.testenv.meshlet.dev/v1",
        "kind": "Gadget",
        "metadata": {"name": "g1"},
        "spec": {"size": 7}
    }))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match v1.create(&PostParams::default(), &gadget).await {
            Ok(_) => break,
            Err(kube::Error::Api(e)) if e.code == 404 && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(e) => bail!("creating the v1 Gadget: {e}"),
        }
    }

    // Reading as v2 needs the webhook.
    let as_v2 = v2.get("g1").await?;
    assert_eq!(as_v2.data["spec"]["dimensions"]["size"], 7, "{as_v2:?}");
    assert!(server.calls() >= 1);

    // And the other way: written as v2, stored (converted) as v1.
    let written: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "conv.testenv.meshlet.dev/v2",
        "kind": "Gadget",
        "metadata": {"name": "g2"},
        "spec": {"dimensions": {"size": 9}}
    }))?;
    v2.create(&PostParams::default(), &written).await?;
    assert_eq!(v1.get("g2").await?.data["spec"]["size"], 9);
    Ok(())
}
