//! `meshlet install` against the chart: with flags, the CLI's render must
//! be the same objects as `helm template --set ...` of charts/meshlet
//! (helm from e2e/kind/helm.sh, cached in .cache/bin).

use std::path::Path;
use std::process::Command;

use meshlet_cli::install::{default_objects, edit, parse_documents, InstallValues};

fn helm() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new("bash")
        .arg(root.join("e2e/kind/helm.sh"))
        .output()
        .expect("running e2e/kind/helm.sh");
    assert!(
        out.status.success(),
        "helm.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn helm_template(helm: &str, set: &[String]) -> Vec<serde_yaml::Value> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut cmd = Command::new(helm);
    cmd.args(["template", "meshlet"])
        .arg(root.join("charts/meshlet"))
        .args(["--namespace", "meshlet-system", "--include-crds"]);
    for s in set {
        cmd.args(["--set", s]);
    }
    let out = cmd.output().expect("running helm template");
    assert!(
        out.status.success(),
        "helm template {set:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse_documents(&String::from_utf8(out.stdout).unwrap()).unwrap()
}

#[test]
fn flags_render_what_helm_renders_for_the_same_values() {
    let helm = helm();
    let variants = [
        InstallValues::default(),
        InstallValues {
            image_registry: Some("registry.local:5000/meshlet".into()),
            image_tag: Some("0.1.0".into()),
            image_pull_policy: Some("Always".into()),
            log_level: Some("debug".into()),
            proxy_log_level: Some("trace".into()),
            native_sidecar: Some("false".into()),
            permissive: true,
            trust_domain: Some("example.org".into()),
            inject_failure_policy: Some("Fail".into()),
            validate_failure_policy: Some("Ignore".into()),
        },
        InstallValues {
            permissive: true,
            ..Default::default()
        },
        InstallValues {
            image_tag: Some("1.2.3".into()),
            ..Default::default()
        },
    ];
    for values in variants {
        let set = values.helm_set();
        let want = helm_template(&helm, &set);
        let mut got = default_objects().unwrap();
        edit(&mut got, &values);
        assert_eq!(got.len(), want.len(), "{set:?}: object count");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(
                g,
                w,
                "{set:?}: {} {} differs",
                g["kind"].as_str().unwrap_or(""),
                g["metadata"]["name"].as_str().unwrap_or("")
            );
        }
    }
}
