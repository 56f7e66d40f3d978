//! `meshlet install`: the install manifests for `| kubectl apply -f -`.
//!
//! One source of truth: the chart's default render, `deploy/meshlet.yaml`
//! (checked in, kept fresh by `make deploy-check`), is embedded; each flag
//! is a structured edit of the parsed objects that gives what `helm
//! template --set <value>` gives (a test compares them with helm). Options
//! that add or remove objects (metricsApi.enabled, replicas and
//! PodDisruptionBudgets, a TLS Secret) are the chart's: use helm for those.

use anyhow::Context as _;
use clap::Args;
use serde::Deserialize as _;
use serde_yaml::Value;

/// The chart's default render.
pub const DEFAULT_MANIFESTS: &str = include_str!("../../deploy/meshlet.yaml");

/// The chart's options that are edits of the default render, as flags
/// (chart value in brackets).
#[derive(Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct InstallValues {
    /// Registry of the Meshlet images [image.registry].
    #[arg(long, value_name = "REGISTRY")]
    pub image_registry: Option<String>,
    /// Tag of the Meshlet images [image.tag].
    #[arg(long, value_name = "TAG")]
    pub image_tag: Option<String>,
    /// imagePullPolicy of the control plane and injected containers [image.pullPolicy].
    #[arg(long, value_parser = ["Always", "IfNotPresent", "Never"])]
    pub image_pull_policy: Option<String>,
    /// Log filter of the operator and webhook [logLevel].
    #[arg(long, value_name = "FILTER")]
    pub log_level: Option<String>,
    /// Log level of injected proxies [proxy.logLevel].
    #[arg(long, value_parser = ["error", "warn", "info", "debug", "trace"])]
    pub proxy_log_level: Option<String>,
    /// Inject proxies as native sidecars [proxy.nativeSidecar].
    #[arg(long, value_parser = ["auto", "true", "false"])]
    pub native_sidecar: Option<String>,
    /// Allow traffic no TrafficTarget allows, for adopting the mesh step by step [permissive].
    #[arg(long)]
    pub permissive: bool,
    /// SPIFFE trust domain of workload identities [trustDomain].
    #[arg(long, value_name = "DOMAIN")]
    pub trust_domain: Option<String>,
    /// failurePolicy of the injection webhook [webhook.injectFailurePolicy].
    #[arg(long, value_parser = ["Ignore", "Fail"])]
    pub inject_failure_policy: Option<String>,
    /// failurePolicy of SMI validation [webhook.validateFailurePolicy].
    #[arg(long, value_parser = ["Ignore", "Fail"])]
    pub validate_failure_policy: Option<String>,
}

impl InstallValues {
    /// The same options as `helm --set` arguments (for the comparison test
    /// and for people moving to helm).
    pub fn helm_set(&self) -> Vec<String> {
        let mut set = Vec::new();
        let mut push = |key: &str, value: &Option<String>| {
            if let Some(v) = value {
                set.push(format!("{key}={v}"));
            }
        };
        push("image.registry", &self.image_registry);
        push("image.tag", &self.image_tag);
        push("image.pullPolicy", &self.image_pull_policy);
        push("logLevel", &self.log_level);
        push("proxy.logLevel", &self.proxy_log_level);
        push("proxy.nativeSidecar", &self.native_sidecar);
        push("trustDomain", &self.trust_domain);
        push("webhook.injectFailurePolicy", &self.inject_failure_policy);
        push(
            "webhook.validateFailurePolicy",
            &self.validate_failure_policy,
        );
        if self.permissive {
            set.push("permissive=true".into());
        }
        set
    }
}

/// The default render's objects.
pub fn default_objects() -> anyhow::Result<Vec<Value>> {
    parse_documents(DEFAULT_MANIFESTS)
}

/// Every non-empty document of a multi-document YAML text.
pub fn parse_documents(text: &str) -> anyhow::Result<Vec<Value>> {
    let mut objects = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let value = Value::deserialize(doc).with_context(|| format!("document {}", i + 1))?;
        if !value.is_null() {
            objects.push(value);
        }
    }
    Ok(objects)
}

/// `registry/name:tag` with a new registry and/or tag.
fn retag(image: &str, registry: Option<&str>, tag: Option<&str>) -> String {
    let (path, old_tag) = image.rsplit_once(':').unwrap_or((image, ""));
    let (old_registry, name) = path.rsplit_once('/').unwrap_or(("", path));
    let registry = registry.unwrap_or(old_registry);
    let tag = tag.unwrap_or(old_tag);
    let path = if registry.is_empty() {
        name.to_string()
    } else {
        format!("{registry}/{name}")
    };
    if tag.is_empty() {
        path
    } else {
        format!("{path}:{tag}")
    }
}

fn kind(object: &Value) -> &str {
    object.get("kind").and_then(Value::as_str).unwrap_or("")
}

fn name(object: &Value) -> &str {
    object
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn containers(object: &mut Value) -> impl Iterator<Item = &mut Value> {
    object
        .get_mut("spec")
        .and_then(|s| s.get_mut("template"))
        .and_then(|t| t.get_mut("spec"))
        .and_then(|s| s.get_mut("containers"))
        .and_then(Value::as_sequence_mut)
        .into_iter()
        .flatten()
}

/// Sets `--flag=value` in a container's args (where the chart has it).
fn set_arg(container: &mut Value, flag: &str, value: &str) {
    let prefix = format!("{flag}=");
    if let Some(args) = container.get_mut("args").and_then(Value::as_sequence_mut) {
        for arg in args.iter_mut() {
            if arg.as_str().is_some_and(|a| a.starts_with(&prefix)) {
                *arg = Value::String(format!("{prefix}{value}"));
            }
        }
    }
}

fn map_arg(container: &mut Value, flag: &str, f: impl Fn(&str) -> String) {
    let prefix = format!("{flag}=");
    if let Some(args) = container.get_mut("args").and_then(Value::as_sequence_mut) {
        for arg in args.iter_mut() {
            if let Some(old) = arg.as_str().and_then(|a| a.strip_prefix(&prefix)) {
                *arg = Value::String(format!("{prefix}{}", f(old)));
            }
        }
    }
}

/// Applies the flags to the default objects.
pub fn edit(objects: &mut [Value], values: &InstallValues) {
    let v = values;
    for object in objects.iter_mut() {
        match (kind(object), name(object)) {
            ("Deployment", deployment) => {
                let deployment = deployment.to_string();
                for container in containers(object) {
                    if v.image_registry.is_some() || v.image_tag.is_some() {
                        if let Some(image) = container.get("image").and_then(Value::as_str) {
                            let image =
                                retag(image, v.image_registry.as_deref(), v.image_tag.as_deref());
                            container["image"] = Value::String(image);
                        }
                        for flag in ["--proxy-image", "--init-image"] {
                            map_arg(container, flag, |old| {
                                retag(old, v.image_registry.as_deref(), v.image_tag.as_deref())
                            });
                        }
                    }
                    if let Some(policy) = &v.image_pull_policy {
                        container["imagePullPolicy"] = Value::String(policy.clone());
                        set_arg(container, "--image-pull-policy", policy);
                    }
                    if let Some(level) = &v.log_level {
                        set_arg(container, "--log", level);
                    }
                    if let Some(level) = &v.proxy_log_level {
                        set_arg(container, "--proxy-log-level", level);
                    }
                    if let Some(mode) = &v.native_sidecar {
                        set_arg(container, "--native-sidecar", mode);
                    }
                    if let Some(domain) = &v.trust_domain {
                        set_arg(container, "--trust-domain", domain);
                        if let Some(env) = container.get_mut("env").and_then(Value::as_sequence_mut)
                        {
                            for var in env.iter_mut() {
                                if var.get("name").and_then(Value::as_str)
                                    == Some("MESHLET_TRUST_DOMAIN")
                                {
                                    var["value"] = Value::String(domain.clone());
                                }
                            }
                        }
                    }
                    if v.permissive
                        && deployment == meshlet_crds::contract::install::OPERATOR_SERVICE
                    {
                        if let Some(args) =
                            container.get_mut("args").and_then(Value::as_sequence_mut)
                        {
                            // Where the chart puts it: right after --log=.
                            let at = args
                                .iter()
                                .position(|a| a.as_str().is_some_and(|a| a.starts_with("--log=")))
                                .map_or(args.len(), |i| i + 1);
                            args.insert(at, Value::String("--permissive".into()));
                        }
                    }
                }
            }
            (
                webhook_kind @ ("MutatingWebhookConfiguration" | "ValidatingWebhookConfiguration"),
                _,
            ) => {
                let policy = if webhook_kind.starts_with("Mutating") {
                    &v.inject_failure_policy
                } else {
                    &v.validate_failure_policy
                };
                if let Some(policy) = policy {
                    if let Some(hooks) = object.get_mut("webhooks").and_then(Value::as_sequence_mut)
                    {
                        for hook in hooks {
                            hook["failurePolicy"] = Value::String(policy.clone());
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

/// The manifests with the flags applied, as multi-document YAML.
pub fn render(values: &InstallValues) -> anyhow::Result<String> {
    let mut objects = default_objects()?;
    edit(&mut objects, values);
    let mut out = String::from(
        "# Meshlet install manifests, from `meshlet install` (deploy/meshlet.yaml with the flags applied).\n",
    );
    for object in &objects {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(object)?);
    }
    Ok(out)
}

/// Runs `meshlet install`.
pub fn run(args: &crate::cli::InstallArgs) -> anyhow::Result<()> {
    print!("{}", render(&args.values)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retagging() {
        assert_eq!(
            retag("meshlet/proxy:dev", Some("reg.local:5000/m"), None),
            "reg.local:5000/m/proxy:dev"
        );
        assert_eq!(
            retag("meshlet/proxy:dev", None, Some("0.1.0")),
            "meshlet/proxy:0.1.0"
        );
        assert_eq!(retag("proxy", Some("r"), Some("1")), "r/proxy:1");
    }

    #[test]
    fn defaults_are_the_checked_in_render() {
        let objects = default_objects().unwrap();
        let mut edited = objects.clone();
        edit(&mut edited, &InstallValues::default());
        assert_eq!(edited, objects);
        assert!(objects
            .iter()
            .any(|o| kind(o) == "MutatingWebhookConfiguration"));
        assert_eq!(
            parse_documents(&render(&InstallValues::default()).unwrap()).unwrap(),
            objects
        );
    }
}
