//! The review handlers, bytes in and bytes out, as the API server calls
//! them: the uid is echoed, patches are JSONPatch, refusals carry the
//! message, conversions keep order, garbage gets an answer.

use std::collections::BTreeMap;

use meshlet_webhook::inject::{InjectorSettings, NamespaceInfo};
use meshlet_webhook::namespaces::Namespaces;
use meshlet_webhook::review;
use serde_json::{json, Value};

fn namespaces() -> Namespaces {
    Namespaces::Fixed(BTreeMap::from([(
        "shop".to_string(),
        NamespaceInfo {
            name: "shop".into(),
            labels: BTreeMap::from([("meshlet.dev/inject".into(), "enabled".into())]),
            ..Default::default()
        },
    )]))
}

fn admission(
    operation: &str,
    group: &str,
    version: &str,
    kind: &str,
    resource: &str,
    object: Value,
) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "0b1f3e9a-1111-4000-8000-000000000001",
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": resource},
            "namespace": "shop",
            "name": object["metadata"]["name"],
            "operation": operation,
            "userInfo": {"username": "admin"},
            "object": object,
            "dryRun": false
        }
    }))
    .unwrap()
}

fn pod(annotations: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "shop", "annotations": annotations},
        "spec": {"containers": [{"name": "web", "image": "web"}]}
    })
}

fn response(bytes: &[u8]) -> Value {
    let review: Value = serde_json::from_slice(bytes).unwrap();
    assert_eq!(
        review["apiVersion"],
        json!("admission.k8s.io/v1"),
        "{review}"
    );
    assert_eq!(review["kind"], json!("AdmissionReview"));
    review["response"].clone()
}

/// The patch bytes (serialized by kube as a byte array or base64).
fn patch_of(response: &Value) -> Value {
    let bytes: Vec<u8> = match &response["patch"] {
        Value::Array(items) => items.iter().map(|b| b.as_u64().unwrap() as u8).collect(),
        Value::String(s) => {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.decode(s).unwrap()
        }
        other => panic!("no patch: {other}"),
    };
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn inject_answers_with_a_json_patch_and_echoes_the_uid() {
    let body = admission("CREATE", "", "v1", "Pod", "pods", pod(json!({})));
    let r = response(
        &review::inject(&body, &InjectorSettings::default(), Ok(None), &namespaces()).await,
    );
    assert_eq!(r["uid"], json!("0b1f3e9a-1111-4000-8000-000000000001"));
    assert_eq!(r["allowed"], json!(true));
    assert_eq!(r["patchType"], json!("JSONPatch"));
    let patch = patch_of(&r);
    let paths: Vec<&str> = patch
        .as_array()
        .unwrap()
        .iter()
        .map(|op| op["path"].as_str().unwrap())
        .collect();
    assert!(paths.contains(&"/spec/initContainers"), "{paths:?}");
    let mut doc = pod(json!({}));
    json_patch::patch(
        &mut doc,
        &serde_json::from_value::<json_patch::Patch>(patch).unwrap(),
    )
    .unwrap();
    assert_eq!(
        doc["spec"]["initContainers"][1]["name"],
        json!("meshlet-proxy")
    );
}

#[tokio::test]
async fn inject_leaves_opted_out_pods_and_other_operations_alone() {
    let settings = InjectorSettings::default();
    let body = admission(
        "CREATE",
        "",
        "v1",
        "Pod",
        "pods",
        pod(json!({"meshlet.dev/inject": "disabled"})),
    );
    let r = response(&review::inject(&body, &settings, Ok(None), &namespaces()).await);
    assert_eq!(r["allowed"], json!(true));
    assert!(r.get("patch").is_none(), "{r}");
    let body = admission("UPDATE", "", "v1", "Pod", "pods", pod(json!({})));
    let r = response(&review::inject(&body, &settings, Ok(None), &namespaces()).await);
    assert_eq!(r["allowed"], json!(true));
    assert!(r.get("patch").is_none(), "{r}");
}

#[tokio::test]
async fn inject_refuses_a_bad_override_naming_it() {
    let body = admission(
        "CREATE",
        "",
        "v1",
        "Pod",
        "pods",
        pod(json!({"meshlet.dev/skip-inbound-ports": "http"})),
    );
    let r = response(
        &review::inject(&body, &InjectorSettings::default(), Ok(None), &namespaces()).await,
    );
    assert_eq!(r["allowed"], json!(false));
    let message = r["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("meshlet.dev/skip-inbound-ports"),
        "{message}"
    );
}

#[tokio::test]
async fn garbage_gets_an_answer() {
    let r = response(
        &review::inject(
            b"{not json",
            &InjectorSettings::default(),
            Ok(None),
            &namespaces(),
        )
        .await,
    );
    assert_eq!(r["allowed"], json!(false));
    let r = response(&review::validate(b"[]"));
    assert_eq!(r["allowed"], json!(false));
    let c: Value = serde_json::from_slice(&review::convert(b"nope")).unwrap();
    assert_eq!(c["response"]["result"]["status"], json!("Failure"), "{c}");
}

#[test]
fn validate_refuses_with_the_field_and_admits_good_objects() {
    let split = |weight: Value| {
        json!({
            "apiVersion": "split.smi-spec.io/v1alpha2", "kind": "TrafficSplit",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"service": "web", "backends": [{"service": "a", "weight": 1}, {"service": "b", "weight": weight}]}
        })
    };
    let r = response(&review::validate(&admission(
        "CREATE",
        "split.smi-spec.io",
        "v1alpha2",
        "TrafficSplit",
        "trafficsplits",
        split(json!(-1)),
    )));
    assert_eq!(r["allowed"], json!(false));
    assert_eq!(r["status"]["code"], json!(422));
    let message = r["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("spec.backends[1].weight: must be ≥ 0; set it to 0 to drain this backend"),
        "{message}"
    );
    assert!(
        message.starts_with("TrafficSplit \"web\" is invalid"),
        "{message}"
    );
    let r = response(&review::validate(&admission(
        "UPDATE",
        "split.smi-spec.io",
        "v1alpha2",
        "TrafficSplit",
        "trafficsplits",
        split(json!(3)),
    )));
    assert_eq!(r["allowed"], json!(true), "{r}");
}

fn conversion(desired: &str, objects: Vec<Value>) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "ConversionReview",
        "request": {"uid": "c0ffee00-0000-4000-8000-000000000001", "desiredAPIVersion": desired, "objects": objects}
    }))
    .unwrap()
}

#[test]
fn convert_converts_every_object_in_order() {
    let v1 = |name: &str, w: &str| {
        json!({
            "apiVersion": "split.smi-spec.io/v1alpha1", "kind": "TrafficSplit",
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {"service": "web", "backends": [{"service": "a", "weight": w}]}
        })
    };
    let out: Value = serde_json::from_slice(&review::convert(&conversion(
        "split.smi-spec.io/v1alpha4",
        vec![v1("one", "1"), v1("two", "250m")],
    )))
    .unwrap();
    assert_eq!(out["kind"], json!("ConversionReview"));
    let r = &out["response"];
    assert_eq!(r["uid"], json!("c0ffee00-0000-4000-8000-000000000001"));
    assert_eq!(r["result"]["status"], json!("Success"), "{r}");
    let objects = r["convertedObjects"].as_array().unwrap();
    assert_eq!(objects.len(), 2);
    assert_eq!(objects[0]["metadata"]["name"], json!("one"));
    assert_eq!(objects[0]["spec"]["backends"][0]["weight"], json!(1000));
    assert_eq!(objects[1]["spec"]["backends"][0]["weight"], json!(250));
    assert_eq!(
        objects[1]["apiVersion"],
        json!("split.smi-spec.io/v1alpha4")
    );
}

#[test]
fn convert_failure_names_the_object() {
    let bad = json!({
        "apiVersion": "split.smi-spec.io/v1alpha2", "kind": "TrafficSplit",
        "metadata": {"name": "broken", "namespace": "shop"},
        "spec": {"service": "web", "backends": [{"service": "a", "weight": "x"}]}
    });
    let out: Value = serde_json::from_slice(&review::convert(&conversion(
        "split.smi-spec.io/v1alpha4",
        vec![bad],
    )))
    .unwrap();
    let r = &out["response"];
    assert_eq!(r["result"]["status"], json!("Failure"));
    let message = r["result"]["message"].as_str().unwrap();
    assert!(
        message.contains("\"broken\"") && message.contains("spec.backends[0].weight"),
        "{message}"
    );
}

#[tokio::test]
async fn a_pod_to_inject_is_refused_while_the_trust_anchors_are_missing() {
    let body = admission("CREATE", "", "v1", "Pod", "pods", pod(json!({})));
    let why =
        "meshlet: no trust anchors: ConfigMap meshlet-system/meshlet-trust-anchors".to_string();
    let r = response(
        &review::inject(
            &body,
            &InjectorSettings::default(),
            Err(why.clone()),
            &namespaces(),
        )
        .await,
    );
    assert_eq!(r["allowed"], json!(false));
    assert_eq!(r["status"]["message"], json!(why));

    // With a bundle, the proxy carries it.
    let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    let r = response(
        &review::inject(
            &body,
            &InjectorSettings::default(),
            Ok(Some(pem.into())),
            &namespaces(),
        )
        .await,
    );
    assert_eq!(r["allowed"], json!(true));
    assert!(patch_of(&r).to_string().contains("MESHLET_TRUST_ANCHORS"));
}
