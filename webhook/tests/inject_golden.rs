//! Golden JSONPatch files for representative pods (`tests/golden/`): each
//! `<case>.input.yaml` (namespace, pod, native sidecars or not) gives
//! `<case>.patch.json`, the exact patch or the reason the pod is skipped.
//! `UPDATE_GOLDEN=1 cargo test -p meshlet-webhook --test inject_golden`
//! rewrites the files; review the diff.
//!
//! Each patch is also applied to its pod, and the result must be a valid
//! Pod with the containers in the documented places.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Pod;
use meshlet_webhook::inject::{self, Decision, InjectorSettings, NamespaceInfo};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Input {
    native_sidecar: bool,
    namespace: NamespaceInput,
    pod: Value,
}

#[derive(Deserialize)]
struct NamespaceInput {
    name: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn settings(native: bool) -> InjectorSettings {
    InjectorSettings {
        proxy_image: "meshlet/proxy:golden".into(),
        proxy_version: "0.0.0-golden".into(),
        native_sidecar: native,
        ..InjectorSettings::default()
    }
}

fn names(list: Option<&Value>) -> Vec<String> {
    list.and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| c["name"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Checks the patched pod: valid, proxy and init step where documented,
/// the app's own containers unchanged and in order.
fn check_applied(case: &str, input: &Input, patch: &json_patch::Patch) {
    let mut doc = input.pod.clone();
    json_patch::patch(&mut doc, patch)
        .unwrap_or_else(|e| panic!("{case}: patch does not apply: {e}"));
    let pod: Pod =
        serde_json::from_value(doc.clone()).unwrap_or_else(|e| panic!("{case}: not a Pod: {e}"));
    assert!(
        inject::is_injected(&pod),
        "{case}: not recognised as injected"
    );

    let before_init = names(input.pod.pointer("/spec/initContainers"));
    let before_containers = names(input.pod.pointer("/spec/containers"));
    let init = names(doc.pointer("/spec/initContainers"));
    let containers = names(doc.pointer("/spec/containers"));
    if input.native_sidecar {
        let mut want = vec!["meshlet-init".to_string(), "meshlet-proxy".to_string()];
        want.extend(before_init);
        assert_eq!(init, want, "{case}: init containers");
        assert_eq!(containers, before_containers, "{case}: containers");
        assert_eq!(
            doc.pointer("/spec/initContainers/1/restartPolicy"),
            Some(&json!("Always"))
        );
    } else {
        let mut want = before_init;
        want.push("meshlet-init".into());
        assert_eq!(init, want, "{case}: init containers");
        let mut want = vec!["meshlet-proxy".to_string()];
        want.extend(before_containers);
        assert_eq!(containers, want, "{case}: containers");
    }
    // The app's containers are byte-for-byte what they were (probes included).
    for c in input
        .pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let after = doc["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == c["name"])
            .unwrap();
        assert_eq!(after, c, "{case}: app container changed");
    }
    // Only additions.
    for op in &patch.0 {
        assert!(
            matches!(op, json_patch::PatchOperation::Add(_)),
            "{case}: {op:?}"
        );
    }
    // Re-running the injector on the result is a no-op (idempotent).
    let namespace = NamespaceInfo {
        name: input.namespace.name.clone(),
        labels: input.namespace.labels.clone(),
        annotations: input.namespace.annotations.clone(),
    };
    assert_eq!(
        inject::decide(&pod, &namespace, &settings(input.native_sidecar)).unwrap(),
        Decision::Skip(inject::SkipReason::AlreadyInjected),
        "{case}: second injection"
    );
}

#[test]
fn golden_patches() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".input.yaml"))
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 6,
        "expected the golden inputs, found {cases:?}"
    );
    let mut mismatched = Vec::new();
    for path in cases {
        let case = path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .trim_end_matches(".input.yaml")
            .to_string();
        let input: Input = serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        let pod: Pod = serde_json::from_value(input.pod.clone()).unwrap();
        let namespace = NamespaceInfo {
            name: input.namespace.name.clone(),
            labels: input.namespace.labels.clone(),
            annotations: input.namespace.annotations.clone(),
        };
        let decision = inject::decide(&pod, &namespace, &settings(input.native_sidecar))
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        let got = match &decision {
            Decision::Skip(reason) => json!({"skip": reason.as_str()}),
            Decision::Inject(patch) => {
                check_applied(&case, &input, patch);
                serde_json::to_value(patch).unwrap()
            }
        };
        let text = format!("{}\n", serde_json::to_string_pretty(&got).unwrap());
        let golden = golden_dir().join(format!("{case}.patch.json"));
        if update {
            std::fs::write(&golden, &text).unwrap();
        } else {
            let want = std::fs::read_to_string(&golden).unwrap_or_default();
            if want != text {
                mismatched.push(format!(
                    "{case}:\n--- want ({})\n{want}\n+++ got\n{text}",
                    golden.display()
                ));
            }
        }
    }
    assert!(
        mismatched.is_empty(),
        "golden mismatch (UPDATE_GOLDEN=1 to accept):\n{}",
        mismatched.join("\n")
    );
}

#[test]
fn skip_reasons_and_errors() {
    let pod = |annotations: Value| -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "annotations": annotations},
            "spec": {"containers": [{"name": "app", "image": "app"}]}
        }))
        .unwrap()
    };
    let plain = NamespaceInfo {
        name: "plain".into(),
        ..Default::default()
    };
    let labelled = NamespaceInfo {
        name: "meshed".into(),
        labels: BTreeMap::from([("meshlet.dev/inject".into(), "enabled".into())]),
        ..Default::default()
    };
    let disabled_ns = NamespaceInfo {
        name: "off".into(),
        labels: BTreeMap::from([("meshlet.dev/inject".into(), "disabled".into())]),
        ..Default::default()
    };
    let s = settings(true);
    let decide = |p: &Pod, ns: &NamespaceInfo| inject::decide(p, ns, &s).unwrap();
    assert_eq!(
        decide(&pod(json!({})), &plain),
        Decision::Skip(inject::SkipReason::NotEnabled)
    );
    assert!(matches!(
        decide(&pod(json!({})), &labelled),
        Decision::Inject(_)
    ));
    assert!(matches!(
        decide(&pod(json!({"meshlet.dev/inject": "enabled"})), &plain),
        Decision::Inject(_)
    ));
    // The pod's annotation beats the namespace either way.
    assert!(matches!(
        decide(&pod(json!({"meshlet.dev/inject": "enabled"})), &disabled_ns),
        Decision::Inject(_)
    ));
    assert_eq!(
        decide(&pod(json!({"meshlet.dev/inject": "disabled"})), &labelled),
        Decision::Skip(inject::SkipReason::OptedOut)
    );
    assert_eq!(
        decide(&pod(json!({})), &disabled_ns),
        Decision::Skip(inject::SkipReason::NotEnabled)
    );
    // A bad value is refused with the annotation named.
    let err = inject::decide(&pod(json!({"meshlet.dev/inject": "yes"})), &labelled, &s)
        .unwrap_err()
        .to_string();
    assert!(err.contains("meshlet.dev/inject"), "{err}");
    let err = inject::decide(
        &pod(json!({"meshlet.dev/proxy-memory-limit": "lots"})),
        &labelled,
        &s,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("meshlet.dev/proxy-memory-limit"), "{err}");
}

#[test]
fn proxy_and_init_security() {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "app", "image": "app"}]}
    }))
    .unwrap();
    let ns = NamespaceInfo {
        name: "n".into(),
        labels: BTreeMap::from([("meshlet.dev/inject".into(), "enabled".into())]),
        ..Default::default()
    };
    let Decision::Inject(patch) = inject::decide(&pod, &ns, &settings(true)).unwrap() else {
        panic!("not injected")
    };
    let mut doc = serde_json::to_value(&pod).unwrap();
    json_patch::patch(&mut doc, &patch).unwrap();
    let init = &doc["spec"]["initContainers"][0];
    let proxy = &doc["spec"]["initContainers"][1];
    assert_eq!(init["args"], json!(["init"]));
    assert_eq!(init["securityContext"]["runAsUser"], json!(0));
    assert_eq!(init["securityContext"]["runAsNonRoot"], json!(false));
    assert_eq!(
        init["securityContext"]["capabilities"],
        json!({"add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"]})
    );
    let sc = &proxy["securityContext"];
    assert_eq!(
        sc["runAsUser"],
        json!(meshlet_crds::contract::ports::PROXY_UID)
    );
    assert_eq!(sc["runAsNonRoot"], json!(true));
    assert_eq!(sc["readOnlyRootFilesystem"], json!(true));
    assert_eq!(sc["allowPrivilegeEscalation"], json!(false));
    assert_eq!(sc["capabilities"], json!({"drop": ["ALL"]}));
    assert_eq!(proxy["readinessProbe"]["httpGet"]["path"], json!("/ready"));
    assert_eq!(proxy["livenessProbe"]["httpGet"]["path"], json!("/live"));
    let admin = proxy["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "meshlet-admin")
        .unwrap();
    assert_eq!(
        admin["containerPort"],
        json!(meshlet_crds::contract::ports::PROXY_ADMIN_PORT)
    );
    assert!(proxy["resources"]["limits"]["memory"].is_string());
    assert!(proxy["resources"]["requests"]["cpu"].is_string());
    let projection = &doc["spec"]["volumes"][0]["projected"]["sources"][0]["serviceAccountToken"];
    assert_eq!(
        projection["audience"],
        json!(meshlet_crds::contract::identity::TOKEN_AUDIENCE)
    );
    let env: Vec<&str> = proxy["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    for want in [
        "MESHLET_POD_NAME",
        "MESHLET_POD_NAMESPACE",
        "MESHLET_POD_IP",
        "MESHLET_SERVICE_ACCOUNT",
    ] {
        assert!(env.contains(&want), "{want} missing from {env:?}");
    }
}
