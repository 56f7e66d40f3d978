//! The webhook configurations (MutatingWebhookConfiguration for pods,
//! ValidatingWebhookConfiguration for SMI objects) and keeping their
//! `caBundle`, and the SMI CRDs' conversion `caBundle`, current.
//!
//! Two modes. Installed by manifests (the default): the configurations and
//! CRDs exist, and the webhook only writes the caBundle into them. With
//! `--register`, the webhook also creates or updates the configurations
//! itself (server-side apply), pointing at a Service or at a URL — the
//! latter is what tests against a bare API server use
//! (`https://127.0.0.1:<port>`), and then it also points the CRDs'
//! conversion webhook at that URL.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhook, MutatingWebhookConfiguration, RuleWithOperations, ValidatingWebhook,
    ValidatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use k8s_openapi::ByteString;
use kube::api::{ObjectMeta, Patch, PatchParams};
use kube::{Api, Client};
use meshlet_crds::contract::{annotations as keys, install};
use meshlet_crds::manifests::{self, CrdRender};
use serde_json::json;

/// Field manager for everything the webhook writes.
pub const FIELD_MANAGER: &str = "meshlet-webhook";
/// Name of the pod injection webhook inside its configuration.
pub const INJECT_WEBHOOK_NAME: &str = "inject.meshlet.dev";
/// Name of the SMI validation webhook inside its configuration.
pub const VALIDATE_WEBHOOK_NAME: &str = "validate.meshlet.dev";

/// Where the API server reaches the webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A Service (namespace, name, port): the in-cluster install.
    Service {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// Its port.
        port: i32,
    },
    /// A base URL, `https://host:port` (tests, out-of-cluster development).
    Url(String),
}

impl Endpoint {
    fn admission_config(&self, path: &str, ca_pem: &str) -> WebhookClientConfig {
        let ca_bundle = Some(ByteString(ca_pem.as_bytes().to_vec()));
        match self {
            Endpoint::Service {
                namespace,
                name,
                port,
            } => WebhookClientConfig {
                service: Some(
                    k8s_openapi::api::admissionregistration::v1::ServiceReference {
                        namespace: namespace.clone(),
                        name: name.clone(),
                        path: Some(path.into()),
                        port: Some(*port),
                    },
                ),
                ca_bundle,
                url: None,
            },
            Endpoint::Url(base) => WebhookClientConfig {
                url: Some(format!("{}{path}", base.trim_end_matches('/'))),
                ca_bundle,
                service: None,
            },
        }
    }
}

/// Options of the registered configurations.
#[derive(Debug, Clone)]
pub struct Registration {
    /// Where the API server calls.
    pub endpoint: Endpoint,
    /// Meshlet's namespace (its pods are never sent for injection).
    pub mesh_namespace: String,
    /// failurePolicy of the injection webhook (`Ignore` by default: pods
    /// still start when the webhook is down).
    pub inject_failure_policy: String,
    /// failurePolicy of the validation webhook (`Fail` by default).
    pub validate_failure_policy: String,
    /// Seconds the API server waits for an answer.
    pub timeout_seconds: i32,
    /// Name suffix for the configurations (tests sharing one API server).
    pub name_suffix: String,
}

fn labels() -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            keys::PART_OF_LABEL.to_string(),
            keys::PART_OF_VALUE.to_string(),
        ),
        (keys::COMPONENT_LABEL.to_string(), "webhook".to_string()),
    ])
}

impl Registration {
    /// The MutatingWebhookConfiguration for proxy injection.
    pub fn mutating(&self, ca_pem: &str) -> MutatingWebhookConfiguration {
        MutatingWebhookConfiguration {
            metadata: ObjectMeta {
                name: Some(format!(
                    "{}{}",
                    install::INJECT_WEBHOOK_CONFIGURATION,
                    self.name_suffix
                )),
                labels: Some(labels()),
                ..Default::default()
            },
            webhooks: Some(vec![MutatingWebhook {
                name: INJECT_WEBHOOK_NAME.into(),
                admission_review_versions: vec!["v1".into()],
                client_config: self.endpoint.admission_config(install::INJECT_PATH, ca_pem),
                failure_policy: Some(self.inject_failure_policy.clone()),
                match_policy: Some("Equivalent".into()),
                // The injector decides (pod annotation OR namespace label);
                // only Meshlet's own namespace is never sent.
                namespace_selector: Some(LabelSelector {
                    match_expressions: Some(vec![LabelSelectorRequirement {
                        key: "kubernetes.io/metadata.name".into(),
                        operator: "NotIn".into(),
                        values: Some(vec![self.mesh_namespace.clone()]),
                    }]),
                    ..Default::default()
                }),
                // A later mutating webhook adding containers re-invokes us;
                // the injected annotation makes that a no-op.
                reinvocation_policy: Some("IfNeeded".into()),
                rules: Some(vec![RuleWithOperations {
                    api_groups: Some(vec!["".into()]),
                    api_versions: Some(vec!["v1".into()]),
                    operations: Some(vec!["CREATE".into()]),
                    resources: Some(vec!["pods".into()]),
                    scope: Some("Namespaced".into()),
                }]),
                side_effects: "None".into(),
                timeout_seconds: Some(self.timeout_seconds),
                ..Default::default()
            }]),
        }
    }

    /// The ValidatingWebhookConfiguration for every SMI kind and version.
    pub fn validating(&self, ca_pem: &str) -> ValidatingWebhookConfiguration {
        ValidatingWebhookConfiguration {
            metadata: ObjectMeta {
                name: Some(format!(
                    "{}{}",
                    install::VALIDATE_WEBHOOK_CONFIGURATION,
                    self.name_suffix
                )),
                labels: Some(labels()),
                ..Default::default()
            },
            webhooks: Some(vec![ValidatingWebhook {
                name: VALIDATE_WEBHOOK_NAME.into(),
                admission_review_versions: vec!["v1".into()],
                client_config: self
                    .endpoint
                    .admission_config(install::VALIDATE_PATH, ca_pem),
                failure_policy: Some(self.validate_failure_policy.clone()),
                // Every version is listed, so objects arrive as written and
                // messages name the fields the user wrote.
                match_policy: Some("Equivalent".into()),
                rules: Some(vec![RuleWithOperations {
                    api_groups: Some(vec![
                        meshlet_crds::split::GROUP.into(),
                        meshlet_crds::access::GROUP.into(),
                        meshlet_crds::specs::GROUP.into(),
                    ]),
                    api_versions: Some(vec!["*".into()]),
                    operations: Some(vec!["CREATE".into(), "UPDATE".into()]),
                    resources: Some(vec![
                        "trafficsplits".into(),
                        "traffictargets".into(),
                        "httproutegroups".into(),
                        "tcproutes".into(),
                        "udproutes".into(),
                    ]),
                    scope: Some("Namespaced".into()),
                }]),
                side_effects: "None".into(),
                timeout_seconds: Some(self.timeout_seconds),
                ..Default::default()
            }]),
        }
    }

    /// Creates or updates both configurations.
    pub async fn apply(&self, client: &Client, ca_pem: &str) -> Result<()> {
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let mutating = self.mutating(ca_pem);
        let name = mutating.metadata.name.clone().unwrap_or_default();
        Api::<MutatingWebhookConfiguration>::all(client.clone())
            .patch(&name, &params, &Patch::Apply(&mutating))
            .await
            .with_context(|| format!("applying MutatingWebhookConfiguration {name}"))?;
        let validating = self.validating(ca_pem);
        let name = validating.metadata.name.clone().unwrap_or_default();
        Api::<ValidatingWebhookConfiguration>::all(client.clone())
            .patch(&name, &params, &Patch::Apply(&validating))
            .await
            .with_context(|| format!("applying ValidatingWebhookConfiguration {name}"))?;
        Ok(())
    }
}

/// Names of the SMI CRDs that convert through the webhook.
pub fn converting_crds() -> Vec<String> {
    manifests::all(CrdRender::Full)
        .into_iter()
        .filter(|crd| {
            crd.spec
                .conversion
                .as_ref()
                .is_some_and(|c| c.strategy == "Webhook")
        })
        .filter_map(|crd| crd.metadata.name)
        .collect()
}

/// Writes `ca_pem` as the caBundle of the named webhook configurations
/// (those that exist) and of the SMI CRDs' conversion webhooks (those
/// installed with webhook conversion). With `endpoint` = a URL, also points
/// the CRDs' conversion at `<url>/convert`. Returns how many objects it
/// updated.
pub async fn patch_ca_bundles(
    client: &Client,
    ca_pem: &str,
    mutating: &str,
    validating: &str,
    conversion_url: Option<&str>,
) -> Result<usize> {
    let bundle = ByteString(ca_pem.as_bytes().to_vec());
    let mut updated = 0;

    let api = Api::<MutatingWebhookConfiguration>::all(client.clone());
    if let Some(mut config) = api.get_opt(mutating).await? {
        let mut changed = false;
        for w in config.webhooks.iter_mut().flatten() {
            if w.client_config.ca_bundle.as_ref() != Some(&bundle) {
                w.client_config.ca_bundle = Some(bundle.clone());
                changed = true;
            }
        }
        if changed {
            api.replace(mutating, &Default::default(), &config).await?;
            updated += 1;
        }
    }
    let api = Api::<ValidatingWebhookConfiguration>::all(client.clone());
    if let Some(mut config) = api.get_opt(validating).await? {
        let mut changed = false;
        for w in config.webhooks.iter_mut().flatten() {
            if w.client_config.ca_bundle.as_ref() != Some(&bundle) {
                w.client_config.ca_bundle = Some(bundle.clone());
                changed = true;
            }
        }
        if changed {
            api.replace(validating, &Default::default(), &config)
                .await?;
            updated += 1;
        }
    }

    let crds = Api::<CustomResourceDefinition>::all(client.clone());
    for name in converting_crds() {
        let Some(crd) = crds.get_opt(&name).await? else {
            continue;
        };
        let Some(webhook) = crd
            .spec
            .conversion
            .as_ref()
            .filter(|c| c.strategy == "Webhook")
            .and_then(|c| c.webhook.as_ref())
        else {
            continue;
        };
        let current = webhook.client_config.as_ref();
        let same_bundle = current.and_then(|c| c.ca_bundle.as_ref()) == Some(&bundle);
        let same_url =
            conversion_url.is_none_or(|u| current.and_then(|c| c.url.as_deref()) == Some(u));
        if same_bundle && same_url {
            continue;
        }
        let client_config = match conversion_url {
            Some(url) => json!({"url": url, "service": null, "caBundle": bundle}),
            None => json!({"caBundle": bundle}),
        };
        let patch = json!({"spec": {"conversion": {"webhook": {"clientConfig": client_config}}}});
        crds.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .with_context(|| format!("patching the conversion caBundle of CRD {name}"))?;
        updated += 1;
    }
    Ok(updated)
}
