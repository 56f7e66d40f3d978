//! `meshlet inject` golden tests.
//!
//! 1. Same semantics as the webhook: every webhook golden case
//!    (`webhook/tests/golden/<case>.input.yaml` → `<case>.patch.json`) run
//!    through the CLI gives exactly the webhook's golden patch applied to
//!    the pod, or the same skip reason.
//! 2. Workload goldens (`tests/golden/<case>.input.yaml` →
//!    `<case>.output.yaml`): Deployments, StatefulSets, CronJobs, Lists,
//!    multi-document files with other objects. `UPDATE_GOLDEN=1` rewrites
//!    the outputs; review the diff.
//! 3. Idempotency: injecting an output again changes nothing.
//! 4. A Deployment's template is injected as the webhook injects the pods
//!    its ReplicaSet creates (the proxy learns the Deployment's name).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Pod;
use meshlet_cli::inject::{inject_template, inject_yaml};
use meshlet_webhook::inject::{self as webhook, Decision, InjectorSettings, NamespaceInfo};
use serde::Deserialize;
use serde_json::{json, Value};

fn settings(native: bool) -> InjectorSettings {
    InjectorSettings {
        proxy_image: "meshlet/proxy:golden".into(),
        proxy_version: "0.0.0-golden".into(),
        native_sidecar: native,
        ..InjectorSettings::default()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WebhookCase {
    native_sidecar: bool,
    namespace: NamespaceInput,
    pod: Value,
}

#[derive(Deserialize)]
struct NamespaceInput {
    name: String,
}

fn cases(dir: &Path, suffix: &str) -> Vec<(String, PathBuf)> {
    let mut cases: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let path = e.unwrap().path();
            let name = path
                .file_name()?
                .to_str()?
                .strip_suffix(suffix)?
                .to_string();
            Some((name, path))
        })
        .collect();
    cases.sort();
    cases
}

#[test]
fn every_webhook_golden_case_gives_the_webhooks_result() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../webhook/tests/golden");
    let cases = cases(&dir, ".input.yaml");
    assert!(
        cases.len() >= 8,
        "webhook goldens not found in {}",
        dir.display()
    );
    for (case, path) in cases {
        let input: WebhookCase =
            serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let golden: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(format!("{case}.patch.json"))).unwrap(),
        )
        .unwrap();
        let mut template: serde_yaml::Value = serde_yaml::to_value(&input.pod).unwrap();
        let outcome = inject_template(
            &mut template,
            &settings(input.native_sidecar),
            &input.namespace.name,
            None,
        )
        .unwrap_or_else(|e| panic!("{case}: {e:#}"));
        let got = serde_json::to_value(&template).unwrap();
        match golden.get("skip").and_then(Value::as_str) {
            Some(reason) => {
                assert_eq!(outcome, format!("skipped ({reason})"), "{case}");
                assert_eq!(got, input.pod, "{case}: a skipped pod is left as it was");
            }
            None => {
                let patch: json_patch::Patch = serde_json::from_value(golden).unwrap();
                let mut want = input.pod.clone();
                json_patch::patch(&mut want, &patch).unwrap();
                assert_eq!(outcome, "injected", "{case}");
                assert_eq!(got, want, "{case}: differs from the webhook's golden patch");
            }
        }
    }
}

#[test]
fn workload_goldens() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let cases = cases(&dir, ".input.yaml");
    assert!(cases.len() >= 5, "goldens not found in {}", dir.display());
    for (case, path) in cases {
        let input = std::fs::read_to_string(&path).unwrap();
        let native = !case.ends_with("-legacy");
        let (output, reports) = inject_yaml(&input, &settings(native), "default")
            .unwrap_or_else(|e| panic!("{case}: {e:#}"));
        let summary: String = reports
            .iter()
            .map(|r| format!("# {} {}\n", r.object, r.outcome))
            .collect();
        let output = format!("{summary}{output}");
        let golden = dir.join(format!("{case}.output.yaml"));
        if update {
            std::fs::write(&golden, &output).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&golden).unwrap_or_else(|_| {
            panic!("{case}: no {}; run with UPDATE_GOLDEN=1", golden.display())
        });
        assert_eq!(
            output,
            want,
            "{case}: output differs from {}",
            golden.display()
        );

        // Idempotent: the output injected again is the same objects.
        let (again, reports) = inject_yaml(&output, &settings(native), "default").unwrap();
        let parse = |text: &str| -> Vec<serde_yaml::Value> {
            serde_yaml::Deserializer::from_str(text)
                .map(|d| serde_yaml::Value::deserialize(d).unwrap())
                .filter(|v| !v.is_null())
                .collect()
        };
        assert_eq!(parse(&again), parse(&output), "{case}: not idempotent");
        assert!(
            reports.iter().all(|r| r.outcome.starts_with("skipped")),
            "{case}: {reports:?}"
        );
    }
}

#[test]
fn a_deployment_template_is_injected_as_its_pods_would_be() {
    let template = json!({
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": "web:1"}]}
    });
    let mut yaml = serde_yaml::to_value(&template).unwrap();
    assert_eq!(
        inject_template(&mut yaml, &settings(true), "shop", Some("web")).unwrap(),
        "injected"
    );
    let got = serde_json::to_value(&yaml).unwrap();

    // The pod the ReplicaSet `web-5d8f` creates from that template, as the
    // webhook sees it at admission.
    let mut pod = template.clone();
    pod["metadata"]["labels"]["pod-template-hash"] = "5d8f".into();
    pod["metadata"]["ownerReferences"] =
        json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d8f", "uid": "u"}]);
    let namespace = NamespaceInfo {
        name: "shop".into(),
        labels: BTreeMap::from([("meshlet.dev/inject".into(), "enabled".into())]),
        annotations: BTreeMap::new(),
    };
    let Decision::Inject(patch) = webhook::decide(
        &serde_json::from_value::<Pod>(pod.clone()).unwrap(),
        &namespace,
        &settings(true),
    )
    .unwrap() else {
        panic!("the webhook does not inject");
    };
    let mut admitted = pod;
    json_patch::patch(&mut admitted, &patch).unwrap();
    // Same containers, volumes, annotations; the template has no owner or hash.
    assert_eq!(got["spec"], admitted["spec"]);
    assert_eq!(
        got["metadata"]["annotations"],
        admitted["metadata"]["annotations"]
    );
    assert_eq!(
        got["metadata"]["labels"],
        json!({"app": "web", "meshlet.dev/meshed": "true"})
    );
    assert!(got["metadata"].get("ownerReferences").is_none());
    let env = &got["spec"]["initContainers"][1]["env"];
    assert!(
        env.as_array()
            .unwrap()
            .iter()
            .any(|e| e["value"] == "web" && e["name"].as_str().unwrap().contains("DEPLOYMENT")),
        "{env}"
    );
}

#[test]
fn bad_annotations_and_bad_templates_are_errors_naming_the_object() {
    let input = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    metadata:\n      annotations: {meshlet.dev/proxy-cpu-request: lots}\n    spec: {containers: [{name: web, image: web}]}\n";
    let err = format!(
        "{:#}",
        inject_yaml(input, &settings(true), "default").unwrap_err()
    );
    assert!(
        err.contains("deployment/web") && err.contains("meshlet.dev/proxy-cpu-request"),
        "{err}"
    );
    let input = "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  template:\n    spec: {containers: 3}\n";
    let err = format!(
        "{:#}",
        inject_yaml(input, &settings(true), "default").unwrap_err()
    );
    assert!(
        err.contains("job/j") && err.contains("spec.containers"),
        "{err}"
    );
    let err = format!(
        "{:#}",
        inject_yaml("a: [", &settings(true), "default").unwrap_err()
    );
    assert!(err.contains("document 1"), "{err}");
}

/// The injected goldens are valid objects for a real kube-apiserver
/// (server-side dry run: schema, defaulting and validation of the pod
/// templates, including native sidecars).
#[tokio::test]
async fn injected_workloads_pass_api_server_validation() {
    use kube::api::{DynamicObject, PostParams};
    let env = meshlet_testenv::shared().await.unwrap();
    let client = env.client();
    let namespace = env.create_namespace("inject").await.unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut checked = 0;
    for (case, path) in cases(&dir, ".output.yaml") {
        let text = std::fs::read_to_string(&path).unwrap();
        let mut objects = Vec::new();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value = serde_yaml::Value::deserialize(doc).unwrap();
            match value.get("kind").and_then(|k| k.as_str()) {
                Some("List") => {
                    objects.extend(value["items"].as_sequence().unwrap().iter().cloned())
                }
                Some(_) => objects.push(value),
                None => {}
            }
        }
        for object in objects {
            let mut object: DynamicObject = serde_yaml::from_value(object).unwrap();
            object.metadata.namespace = Some(namespace.clone());
            let types = object.types.clone().unwrap();
            let (group, version) = types
                .api_version
                .rsplit_once('/')
                .unwrap_or(("", &types.api_version));
            let gvk = kube::core::GroupVersionKind::gvk(group, version, &types.kind);
            let (resource, _) = kube::discovery::pinned_kind(&client, &gvk).await.unwrap();
            let api: kube::Api<DynamicObject> =
                kube::Api::namespaced_with(client.clone(), &namespace, &resource);
            let params = PostParams {
                dry_run: true,
                ..Default::default()
            };
            api.create(&params, &object).await.unwrap_or_else(|e| {
                panic!(
                    "{case}: {} {:?} refused by the API server: {e}",
                    types.kind, object.metadata.name
                )
            });
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} objects checked");
}
