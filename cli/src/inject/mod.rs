//! `meshlet inject`: adds the proxy to the pod templates in YAML through the
//! admission webhook's own pure functions (`meshlet_webhook::inject::decide`),
//! so a workload injected here is exactly what the webhook would make of its
//! pods — and the webhook, seeing `meshlet.dev/injected`, leaves it alone.
//!
//! Semantics, as the webhook's with one difference: running `meshlet inject`
//! is the request to inject, so the namespace counts as enabled. The pod
//! template's own `meshlet.dev/inject: disabled` still wins, and host-network
//! pods, already injected pods and Meshlet's own namespace are still skipped.
//!
//! A Deployment's pods are admitted with a ReplicaSet owner and a
//! `pod-template-hash` label, from which the webhook learns the Deployment
//! (the proxy's `deployment` metric label). The template has neither, so the
//! pod handed to `decide` gets both, the way the ReplicaSet controller will
//! add them; only the patch is kept, applied to the template.

pub mod workload;
pub mod yaml_patch;

use std::collections::BTreeMap;
use std::io::Read as _;

use anyhow::Context as _;
use k8s_openapi::api::core::v1::Pod;
use meshlet_crds::contract::annotations as keys;
use meshlet_webhook::inject::{self as webhook, Decision, InjectorSettings, NamespaceInfo};
use serde::Deserialize as _;
use serde_yaml::Value;

use crate::cli::InjectArgs;
use crate::kubeargs::KubeArgs;

/// What happened to one object, for the summary on standard error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// `deployment/web`.
    pub object: String,
    /// `injected`, or `skipped (<reason>)`.
    pub outcome: String,
}

/// The injector settings from the command's flags, the webhook's defaults
/// for the rest.
pub fn settings(args: &InjectArgs) -> InjectorSettings {
    let mut settings = InjectorSettings {
        proxy_version: crate::VERSION.into(),
        native_sidecar: args.native_sidecar,
        ..InjectorSettings::default()
    };
    if let Some(image) = &args.proxy_image {
        settings.proxy_image = image.clone();
    }
    if let Some(version) = &args.proxy_version {
        settings.proxy_version = version.clone();
    }
    if let Some(policy) = &args.image_pull_policy {
        settings.image_pull_policy = Some(policy.clone());
    }
    if let Some(addr) = &args.operator_addr {
        settings.operator_addr = addr.clone();
    }
    if let Some(level) = &args.proxy_log_level {
        settings.log_level = level.clone();
    }
    settings
}

/// Runs `meshlet inject`.
pub fn run(kube: &KubeArgs, args: &InjectArgs) -> anyhow::Result<()> {
    let settings = settings(args);
    let namespace = kube.namespace.clone().unwrap_or_else(|| "default".into());
    let mut input = String::new();
    for file in &args.files {
        let text = if file.as_os_str() == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading standard input")?;
            text
        } else {
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?
        };
        input.push_str("\n---\n");
        input.push_str(&text);
    }
    let (output, reports) = inject_yaml(&input, &settings, &namespace)?;
    print!("{output}");
    for report in reports {
        eprintln!("{} {}", report.object, report.outcome);
    }
    Ok(())
}

/// Injects every injectable object of the multi-document YAML `input`;
/// other documents are written back as they were (re-serialized). Objects
/// without a namespace are taken to be in `default_namespace`.
pub fn inject_yaml(
    input: &str,
    settings: &InjectorSettings,
    default_namespace: &str,
) -> anyhow::Result<(String, Vec<Report>)> {
    let mut documents = Vec::new();
    let mut reports = Vec::new();
    for (index, document) in serde_yaml::Deserializer::from_str(input).enumerate() {
        let mut value = Value::deserialize(document)
            .with_context(|| format!("document {}: not valid YAML", index + 1))?;
        if value.is_null() {
            continue;
        }
        inject_object(&mut value, settings, default_namespace, &mut reports)
            .with_context(|| format!("document {}", index + 1))?;
        documents.push(serde_yaml::to_string(&value)?);
    }
    Ok((documents.join("---\n"), reports))
}

fn inject_object(
    object: &mut Value,
    settings: &InjectorSettings,
    default_namespace: &str,
    reports: &mut Vec<Report>,
) -> anyhow::Result<()> {
    if workload::is_list(object) {
        let namespace = workload::metadata_str(object, "namespace")
            .unwrap_or(default_namespace)
            .to_string();
        if let Some(Value::Sequence(items)) = object.get_mut("items") {
            for item in items {
                inject_object(item, settings, &namespace, reports)?;
            }
        }
        return Ok(());
    }
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
    let Some(path) = workload::template_path(api_version, kind) else {
        return Ok(());
    };
    let name = workload::metadata_str(object, "name")
        .or_else(|| workload::metadata_str(object, "generateName"))
        .unwrap_or("<unnamed>")
        .to_string();
    let label = format!("{}/{name}", kind.to_lowercase());
    let namespace = workload::metadata_str(object, "namespace")
        .unwrap_or(default_namespace)
        .to_string();
    let deployment = (kind == "Deployment").then(|| name.clone());
    let template = workload::get_mut(object, path)
        .with_context(|| format!("{label}: no pod template at .{}", path.join(".")))?;
    let outcome = inject_template(template, settings, &namespace, deployment.as_deref())
        .with_context(|| label.clone())?;
    reports.push(Report {
        object: label,
        outcome,
    });
    Ok(())
}

/// The pod the webhook will be asked about, for a template of `deployment`.
fn admitted_pod(
    template: &Value,
    namespace: &str,
    deployment: Option<&str>,
) -> anyhow::Result<Pod> {
    let mut pod = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": serde_json::to_value(template.get("metadata").unwrap_or(&Value::Null))?,
        "spec": serde_json::to_value(template.get("spec").unwrap_or(&Value::Null))?,
    });
    if pod["metadata"].is_null() {
        pod["metadata"] = serde_json::json!({});
    }
    pod["metadata"]["namespace"] = namespace.into();
    if let Some(deployment) = deployment {
        // What the ReplicaSet controller adds; see the module docs.
        const HASH: &str = "meshletcli";
        let labels = &mut pod["metadata"]["labels"];
        if labels.is_null() {
            *labels = serde_json::json!({});
        }
        labels["pod-template-hash"] = HASH.into();
        pod["metadata"]["ownerReferences"] = serde_json::json!([{
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("{deployment}-{HASH}"),
            "uid": "00000000-0000-0000-0000-000000000000", "controller": true,
        }]);
    }
    serde_path_to_error::deserialize(pod).map_err(|e| {
        anyhow::anyhow!(
            "the pod template is not a valid Pod at {}: {}",
            e.path(),
            e.inner()
        )
    })
}

/// Injects one pod template (or Pod) in place; returns what happened.
pub fn inject_template(
    template: &mut Value,
    settings: &InjectorSettings,
    namespace: &str,
    deployment: Option<&str>,
) -> anyhow::Result<String> {
    let pod = admitted_pod(template, namespace, deployment)?;
    let namespace_info = NamespaceInfo {
        name: namespace.to_string(),
        labels: BTreeMap::from([(keys::INJECT.to_string(), keys::INJECT_ENABLED.to_string())]),
        annotations: BTreeMap::new(),
    };
    match webhook::decide(&pod, &namespace_info, settings)? {
        Decision::Skip(reason) => Ok(format!("skipped ({})", reason.as_str())),
        Decision::Inject(patch) => {
            yaml_patch::apply(template, &patch)?;
            Ok("injected".into())
        }
    }
}
