//! The checked-in CRD YAML matches the Rust types, and every render has the
//! shape the API server needs: every version served, the newest stored,
//! webhook conversion (Full) or a single version (StorageOnly), and
//! structural schemas.

use std::collections::BTreeSet;
use std::path::Path;

use meshlet_crds::manifests::{self, CrdRender};
use serde_json::Value;

const KINDS: &[(&str, &str, &[&str])] = &[
    (
        "split.smi-spec.io",
        "TrafficSplit",
        &["v1alpha1", "v1alpha2", "v1alpha3", "v1alpha4"],
    ),
    (
        "access.smi-spec.io",
        "TrafficTarget",
        &["v1alpha1", "v1alpha2", "v1alpha3"],
    ),
    (
        "specs.smi-spec.io",
        "HTTPRouteGroup",
        &["v1alpha1", "v1alpha2", "v1alpha3", "v1alpha4"],
    ),
    (
        "specs.smi-spec.io",
        "TCPRoute",
        &["v1alpha1", "v1alpha2", "v1alpha3", "v1alpha4"],
    ),
    ("specs.smi-spec.io", "UDPRoute", &["v1alpha4"]),
];

#[test]
fn checked_in_yaml_is_fresh() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("yaml");
    let crds = manifests::all(CrdRender::Full);
    let mut expected = BTreeSet::new();
    for crd in &crds {
        let file = manifests::file_name(crd);
        let on_disk = std::fs::read_to_string(dir.join(&file))
            .unwrap_or_else(|e| panic!("crds/yaml/{file}: {e}; run make crds"));
        assert!(
            on_disk == manifests::to_yaml(crd),
            "crds/yaml/{file} is stale: run make crds"
        );
        expected.insert(file);
    }
    let present: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        present, expected,
        "crds/yaml/ has extra or missing files: run make crds"
    );
}

#[test]
fn full_render_serves_every_version_and_converts_by_webhook() {
    let crds = manifests::all(CrdRender::Full);
    assert_eq!(crds.len(), KINDS.len());
    for (group, kind, versions) in KINDS {
        let crd = crds
            .iter()
            .find(|c| c.spec.group == *group && c.spec.names.kind == *kind)
            .unwrap_or_else(|| panic!("missing {kind}"));
        let served: BTreeSet<&str> = crd
            .spec
            .versions
            .iter()
            .filter(|v| v.served)
            .map(|v| v.name.as_str())
            .collect();
        assert_eq!(served, versions.iter().copied().collect(), "{kind}");
        let stored: Vec<&str> = crd
            .spec
            .versions
            .iter()
            .filter(|v| v.storage)
            .map(|v| v.name.as_str())
            .collect();
        assert_eq!(
            stored,
            [*versions.last().unwrap()],
            "{kind}: newest is stored"
        );
        let conversion = serde_json::to_value(&crd.spec.conversion).unwrap();
        if versions.len() > 1 {
            assert_eq!(
                conversion,
                serde_json::json!({
                    "strategy": "Webhook",
                    "webhook": {
                        "clientConfig": {"service": {
                            "namespace": "meshlet-system", "name": "meshlet-webhook",
                            "path": "/convert", "port": 443
                        }},
                        "conversionReviewVersions": ["v1"]
                    }
                }),
                "{kind}"
            );
        } else {
            assert_eq!(
                conversion,
                Value::Null,
                "{kind}: one version needs no conversion"
            );
        }
        assert_eq!(crd.spec.scope, "Namespaced");
    }
}

#[test]
fn storage_only_render_has_the_newest_version_alone() {
    let crds = manifests::all(CrdRender::StorageOnly);
    assert_eq!(crds.len(), KINDS.len());
    for crd in &crds {
        let (_, kind, versions) = KINDS
            .iter()
            .find(|(_, k, _)| *k == crd.spec.names.kind)
            .unwrap();
        assert_eq!(crd.spec.versions.len(), 1, "{kind}");
        let v = &crd.spec.versions[0];
        assert!(v.served && v.storage);
        assert_eq!(v.name, *versions.last().unwrap());
        assert!(crd.spec.conversion.is_none(), "{kind}");
    }
    assert!(
        manifests::all_yaml(CrdRender::StorageOnly)
            .matches("kind: CustomResourceDefinition")
            .count()
            == KINDS.len()
    );
}

/// The rules of a Kubernetes structural schema that generated schemas could
/// break: every node says its type (unless int-or-string or
/// preserve-unknown-fields), no `$ref`, no `anyOf`/`oneOf`/`allOf` that
/// declare types, and `additionalProperties` never beside `properties`.
fn check_structural(path: &str, node: &Value, errors: &mut Vec<String>) {
    let map = node.as_object().unwrap();
    let int_or_string = map.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
    let preserve = map.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    if !map.contains_key("type") && !int_or_string && !preserve {
        errors.push(format!("{path}: no type"));
    }
    for bad in ["$ref", "definitions", "$defs", "oneOf", "allOf", "not"] {
        if map.contains_key(bad) {
            errors.push(format!("{path}: has {bad}"));
        }
    }
    if let Some(any_of) = map.get("anyOf") {
        for branch in any_of.as_array().unwrap() {
            if branch.get("type").is_some() && !int_or_string {
                errors.push(format!("{path}: anyOf declares a type"));
            }
        }
    }
    if map.contains_key("properties") && map.contains_key("additionalProperties") {
        errors.push(format!("{path}: properties and additionalProperties"));
    }
    if let Some(props) = map.get("properties").and_then(Value::as_object) {
        for (name, child) in props {
            check_structural(&format!("{path}.{name}"), child, errors);
        }
    }
    if let Some(items) = map.get("items") {
        check_structural(&format!("{path}[]"), items, errors);
    }
    if let Some(extra @ Value::Object(_)) = map.get("additionalProperties") {
        check_structural(&format!("{path}{{*}}"), extra, errors);
    }
}

#[test]
fn schemas_are_structural() {
    let mut errors = Vec::new();
    for crd in manifests::all(CrdRender::Full) {
        for v in &crd.spec.versions {
            let schema = serde_json::to_value(
                v.schema
                    .as_ref()
                    .unwrap()
                    .open_api_v3_schema
                    .as_ref()
                    .unwrap(),
            )
            .unwrap();
            let path = format!("{} {}", crd.spec.names.kind, v.name);
            check_structural(&path, &schema, &mut errors);
            assert_eq!(schema["type"], "object", "{path}");
        }
    }
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn structural_check_catches_a_missing_type() {
    let mut errors = Vec::new();
    let bad = serde_json::json!({"type": "object", "properties": {"a": {"description": "x"}}});
    check_structural("t", &bad, &mut errors);
    assert_eq!(errors, ["t.a: no type"]);
}
