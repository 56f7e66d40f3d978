//! Post-install checks: SMI CRDs serving every version, the webhook
//! configurations with a valid caBundle and a ready Service, the control
//! plane Deployments ready, every TrafficMetrics APIService Available, the
//! trust anchors valid, and meshed pods running this version's proxy.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::ListParams;
use kube::Api;
use meshlet_crds::contract::{annotations as keys, identity, install};
use meshlet_crds::manifests::{self, CrdRender};

use super::certs::check_bundle;
use super::Check;

/// What the post-install checks compare against.
#[derive(Debug, Clone)]
pub struct Options {
    /// Certificates expiring sooner fail.
    pub expiry_margin: Duration,
    /// The proxy version meshed pods should run.
    pub proxy_version: String,
}

const INSTALL_HINT: &str = "install Meshlet: meshlet install | kubectl apply --server-side -f -";

/// Runs every post-install check, in order.
pub async fn checks(client: &kube::Client, options: &Options) -> Vec<Check> {
    let mut checks = Vec::new();
    if let Err(e) = client.apiserver_version().await {
        checks.push(Check::fail(
            "the Kubernetes API server is reachable",
            e.to_string(),
            "check --kubeconfig/--context and that the cluster is up (kubectl cluster-info)",
        ));
        return checks;
    }
    checks.push(Check::pass("the Kubernetes API server is reachable", None));
    checks.extend(crds(client, options).await);
    checks.extend(webhook_configurations(client, options).await);
    for deployment in [install::OPERATOR_SERVICE, install::WEBHOOK_SERVICE] {
        checks.push(deployment_ready(client, deployment).await);
    }
    checks.extend(super::apiservices::checks(client).await);
    checks.push(trust_anchors(client, options).await);
    checks.push(proxy_versions(client, &options.proxy_version).await);
    checks
}

/// Every SMI CRD exists, is Established, serves every published version and
/// stores the newest; a conversion webhook's caBundle is valid.
pub async fn crds(client: &kube::Client, options: &Options) -> Vec<Check> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut checks = Vec::new();
    for expected in manifests::all(CrdRender::Full) {
        let name = expected.metadata.name.clone().unwrap_or_default();
        let mut want: Vec<String> = expected
            .spec
            .versions
            .iter()
            .map(|v| v.name.clone())
            .collect();
        want.sort();
        let title = format!("CRD {name} serves {}", want.join(", "));
        let found = match api.get_opt(&name).await {
            Ok(Some(crd)) => crd,
            Ok(None) => {
                checks.push(Check::fail(title, "not found", INSTALL_HINT));
                continue;
            }
            Err(e) => {
                checks.push(Check::fail(
                    title,
                    e.to_string(),
                    "check your permissions to read CRDs",
                ));
                continue;
            }
        };
        checks.push(crd_check(&title, &expected, &found, options));
    }
    checks
}

/// Compares one installed CRD with the expected one.
pub fn crd_check(
    title: &str,
    expected: &CustomResourceDefinition,
    found: &CustomResourceDefinition,
    options: &Options,
) -> Check {
    let served: BTreeSet<&str> = found
        .spec
        .versions
        .iter()
        .filter(|v| v.served)
        .map(|v| v.name.as_str())
        .collect();
    let mut missing: Vec<&str> = expected
        .spec
        .versions
        .iter()
        .map(|v| v.name.as_str())
        .filter(|v| !served.contains(v))
        .collect();
    missing.sort();
    let upgrade = "re-apply the install manifests of this version (meshlet install | kubectl apply --server-side -f -)";
    if !missing.is_empty() {
        return Check::fail(
            title,
            format!("not served: {}", missing.join(", ")),
            upgrade,
        );
    }
    let storage = |crd: &CustomResourceDefinition| {
        crd.spec
            .versions
            .iter()
            .find(|v| v.storage)
            .map(|v| v.name.clone())
            .unwrap_or_default()
    };
    if storage(found) != storage(expected) {
        return Check::fail(
            title,
            format!("stores {}, expected {}", storage(found), storage(expected)),
            upgrade,
        );
    }
    let established = found
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
        });
    if !established {
        return Check::fail(
            title,
            "not Established yet",
            "wait a few seconds; kubectl describe crd shows why",
        );
    }
    let webhook = found
        .spec
        .conversion
        .as_ref()
        .filter(|c| c.strategy == "Webhook")
        .and_then(|c| c.webhook.as_ref());
    if let Some(webhook) = webhook {
        let bundle = webhook
            .client_config
            .as_ref()
            .and_then(|c| c.ca_bundle.as_ref())
            .map(|b| b.0.clone())
            .unwrap_or_default();
        if let Err(e) = check_bundle(&bundle, options.expiry_margin, SystemTime::now()) {
            return Check::fail(
                title,
                format!("conversion webhook caBundle: {e}"),
                "meshlet-webhook writes it at start; check its logs (kubectl -n meshlet-system logs deploy/meshlet-webhook)",
            );
        }
    } else if expected.spec.versions.len() > 1 {
        return Check::fail(
            title,
            "no conversion webhook: old versions cannot be converted",
            upgrade,
        );
    }
    Check::pass(title, None)
}

type Webhooks = Option<Vec<(String, WebhookClientConfig)>>;

async fn webhook_configurations(client: &kube::Client, options: &Options) -> Vec<Check> {
    let mutating: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let validating: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let inject: Result<Webhooks, kube::Error> = mutating
        .get_opt(install::INJECT_WEBHOOK_CONFIGURATION)
        .await
        .map(|c| {
            c.map(|c| {
                let hooks = c.webhooks.unwrap_or_default().into_iter();
                hooks.map(|w| (w.name, w.client_config)).collect()
            })
        });
    let validate: Result<Webhooks, kube::Error> = validating
        .get_opt(install::VALIDATE_WEBHOOK_CONFIGURATION)
        .await
        .map(|c| {
            c.map(|c| {
                let hooks = c.webhooks.unwrap_or_default().into_iter();
                hooks.map(|w| (w.name, w.client_config)).collect()
            })
        });
    let mut checks = Vec::new();
    let mut services = BTreeSet::new();
    for (kind, name, found) in [
        (
            "MutatingWebhookConfiguration",
            install::INJECT_WEBHOOK_CONFIGURATION,
            inject,
        ),
        (
            "ValidatingWebhookConfiguration",
            install::VALIDATE_WEBHOOK_CONFIGURATION,
            validate,
        ),
    ] {
        match found {
            Ok(webhooks) => {
                let (found_checks, found_services) = webhook_checks(kind, name, webhooks, options);
                checks.extend(found_checks);
                services.extend(found_services);
            }
            Err(e) => checks.push(Check::fail(
                format!("{kind} {name} exists"),
                e.to_string(),
                "check your permissions to read webhook configurations",
            )),
        }
    }
    // One line per Service, however many webhooks call it.
    for (namespace, service) in services {
        checks.push(service_ready(client, &namespace, &service).await);
    }
    checks
}

/// The lines for one webhook configuration (it exists; every webhook's
/// caBundle is valid) and the Services its webhooks call.
pub fn webhook_checks(
    kind: &str,
    name: &str,
    webhooks: Webhooks,
    options: &Options,
) -> (Vec<Check>, BTreeSet<(String, String)>) {
    let exists = format!("{kind} {name} exists");
    let Some(webhooks) = webhooks.filter(|w| !w.is_empty()) else {
        let missing = Check::fail(exists, "not found (or has no webhooks)", INSTALL_HINT);
        return (vec![missing], BTreeSet::new());
    };
    let mut checks = vec![Check::pass(
        exists,
        Some(format!("{} webhook(s)", webhooks.len())),
    )];
    let bundle_title = format!("{kind} {name} has a valid caBundle");
    let mut bundle_check = None;
    for (webhook, config) in &webhooks {
        let bundle = config
            .ca_bundle
            .as_ref()
            .map(|b| b.0.clone())
            .unwrap_or_default();
        match check_bundle(&bundle, options.expiry_margin, SystemTime::now()) {
            Ok(summary) => {
                bundle_check.get_or_insert(Check::pass(bundle_title.clone(), Some(summary)));
            }
            Err(e) => {
                bundle_check = Some(Check::fail(
                    bundle_title.clone(),
                    format!("webhook {webhook}: {e}"),
                    "meshlet-webhook writes it at start and renews it; check its logs (kubectl -n meshlet-system logs deploy/meshlet-webhook)",
                ));
                break;
            }
        }
    }
    checks.extend(bundle_check);
    let services: BTreeSet<(String, String)> = webhooks
        .iter()
        .filter_map(|(_, c)| c.service.as_ref())
        .map(|s| (s.namespace.clone(), s.name.clone()))
        .collect();
    if services.is_empty() {
        checks.push(Check::pass(
            format!("{kind} {name} calls its webhooks by URL"),
            Some("no Service to check".to_string()),
        ));
    }
    (checks, services)
}

/// A Service has at least one ready endpoint (EndpointSlices).
pub async fn service_ready(client: &kube::Client, namespace: &str, service: &str) -> Check {
    let title = format!("Service {namespace}/{service} has ready endpoints");
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), namespace);
    let params = ListParams::default().labels(&format!("kubernetes.io/service-name={service}"));
    match slices.list(&params).await {
        Ok(list) => {
            let ready = list
                .items
                .iter()
                .flat_map(|s| s.endpoints.iter())
                .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) != Some(false))
                .map(|e| e.addresses.len())
                .sum::<usize>();
            if ready > 0 {
                Check::pass(title, Some(format!("{ready} ready")))
            } else {
                Check::fail(
                    title,
                    "no ready endpoint: the API server cannot call the webhook",
                    format!("kubectl -n {namespace} get pods; kubectl -n {namespace} describe deploy {service}"),
                )
            }
        }
        Err(e) => Check::fail(
            title,
            e.to_string(),
            "check your permissions to read EndpointSlices",
        ),
    }
}

/// A control-plane Deployment has every replica ready and up to date.
pub async fn deployment_ready(client: &kube::Client, name: &str) -> Check {
    let title = format!("Deployment {}/{name} is ready", install::NAMESPACE);
    let api: Api<Deployment> = Api::namespaced(client.clone(), install::NAMESPACE);
    match api.get_opt(name).await {
        Ok(Some(d)) => deployment_check(&title, &d),
        Ok(None) => Check::fail(title, "not found", INSTALL_HINT),
        Err(e) => Check::fail(
            title,
            e.to_string(),
            "check your permissions to read Deployments",
        ),
    }
}

/// Judges a Deployment's status.
pub fn deployment_check(title: &str, d: &Deployment) -> Check {
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let status = d.status.clone().unwrap_or_default();
    let ready = status.ready_replicas.unwrap_or(0);
    let updated = status.updated_replicas.unwrap_or(0);
    let current = status.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0);
    let name = d.metadata.name.as_deref().unwrap_or("");
    let hint = format!(
        "kubectl -n {} describe deploy {name}; kubectl -n {} logs deploy/{name}",
        install::NAMESPACE,
        install::NAMESPACE
    );
    if ready < want {
        return Check::fail(title, format!("{ready}/{want} replicas ready"), hint);
    }
    if !current || updated < want {
        return Check::fail(
            title,
            format!("rollout in progress ({updated}/{want} updated)"),
            hint,
        );
    }
    Check::pass(title, Some(format!("{ready}/{want} replicas ready")))
}

async fn trust_anchors(client: &kube::Client, options: &Options) -> Check {
    let title = format!(
        "trust anchors ({}/{}) are valid",
        install::NAMESPACE,
        identity::TRUST_ANCHORS_CONFIGMAP
    );
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), install::NAMESPACE);
    let hint = format!(
        "the operator publishes them; kubectl -n {} logs deploy/{}",
        install::NAMESPACE,
        install::OPERATOR_SERVICE
    );
    match api.get_opt(identity::TRUST_ANCHORS_CONFIGMAP).await {
        Ok(Some(cm)) => {
            let Some(pem) = cm
                .data
                .as_ref()
                .and_then(|d| d.get(identity::TRUST_ANCHORS_KEY))
            else {
                return Check::fail(
                    title,
                    format!("no key {}", identity::TRUST_ANCHORS_KEY),
                    hint,
                );
            };
            match check_bundle(pem.as_bytes(), options.expiry_margin, SystemTime::now()) {
                Ok(summary) => Check::pass(title, Some(summary)),
                Err(e) => Check::fail(
                    title,
                    e,
                    "rotate the trust anchors before they expire (docs/identity)",
                ),
            }
        }
        Ok(None) => Check::fail(title, "not found", hint),
        Err(e) => Check::fail(
            title,
            e.to_string(),
            "check your permissions to read ConfigMaps",
        ),
    }
}

/// Meshed pods whose `meshlet.dev/proxy-version` differs from `want`.
pub fn outdated_pods(pods: &[Pod], want: &str) -> Vec<String> {
    pods.iter()
        .filter_map(|p| {
            let version = p
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(keys::PROXY_VERSION))
                .map(String::as_str)
                .unwrap_or("unknown");
            (version != want).then(|| {
                format!(
                    "{}/{} ({version})",
                    p.metadata.namespace.as_deref().unwrap_or(""),
                    p.metadata.name.as_deref().unwrap_or("")
                )
            })
        })
        .collect()
}

async fn proxy_versions(client: &kube::Client, want: &str) -> Check {
    let title = format!("meshed pods run proxy version {want}");
    let api: Api<Pod> = Api::all(client.clone());
    let params =
        ListParams::default().labels(&format!("{}={}", keys::MESHED_LABEL, keys::MESHED_TRUE));
    match api.list(&params).await {
        Ok(list) => {
            let outdated = outdated_pods(&list.items, want);
            if outdated.is_empty() {
                return Check::pass(title, Some(format!("{} meshed pods", list.items.len())));
            }
            let shown: Vec<&str> = outdated.iter().take(5).map(String::as_str).collect();
            let more = outdated.len().saturating_sub(shown.len());
            Check::fail(
                title,
                format!(
                    "{} of {} differ: {}{}",
                    outdated.len(),
                    list.items.len(),
                    shown.join(", "),
                    if more > 0 { format!(" and {more} more") } else { String::new() }
                ),
                "restart their workloads to get the current proxy (kubectl rollout restart deploy -n <namespace> <name>)",
            )
        }
        Err(e) => Check::fail(title, e.to_string(), "check your permissions to list pods"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_status() {
        let d = |replicas: i32,
                 ready: i32,
                 updated: i32,
                 generation: i64,
                 observed: i64|
         -> Deployment {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "meshlet-operator", "generation": generation},
                "spec": {"replicas": replicas, "selector": {}, "template": {}},
                "status": {"readyReplicas": ready, "updatedReplicas": updated, "observedGeneration": observed}
            }))
            .unwrap()
        };
        assert!(deployment_check("t", &d(2, 2, 2, 3, 3)).ok);
        assert_eq!(
            deployment_check("t", &d(2, 1, 2, 3, 3)).detail.as_deref(),
            Some("1/2 replicas ready")
        );
        assert!(deployment_check("t", &d(1, 1, 1, 4, 3))
            .detail
            .unwrap()
            .contains("rollout"));
    }

    #[test]
    fn outdated_proxies() {
        let pod = |name: &str, version: Option<&str>| -> Pod {
            let mut annotations = serde_json::Map::new();
            if let Some(v) = version {
                annotations.insert(keys::PROXY_VERSION.into(), v.into());
            }
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": name, "namespace": "shop", "annotations": annotations}
            }))
            .unwrap()
        };
        let pods = [
            pod("a", Some("0.1.0")),
            pod("b", Some("0.0.9")),
            pod("c", None),
        ];
        assert_eq!(
            outdated_pods(&pods, "0.1.0"),
            ["shop/b (0.0.9)", "shop/c (unknown)"]
        );
    }
}
