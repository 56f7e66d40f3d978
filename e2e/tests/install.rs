//! Install scenario (`make e2e`, after `make install`): every part of
//! Meshlet is up and wired: both Deployments available with Ready pods that
//! run locked down (non-root, read-only root filesystem, no capabilities),
//! the webhook trusted by the API server (caBundle in both webhook
//! configurations and in every SMI CRD's conversion), every SMI CRD
//! Established with all its versions served, PodDisruptionBudgets in place,
//! the identity CA's issuer Secret and trust anchors ConfigMap created,
//! and Meshlet's own pods not meshed.

use anyhow::{ensure, Context};
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::ListParams;
use kube::{Api, Client};
use meshlet_crds::contract::{identity, install};
use meshlet_e2e::{cluster, mesh, wait};
use std::time::{Duration, Instant};

const CRDS: &[&str] = &[
    "trafficsplits.split.smi-spec.io",
    "traffictargets.access.smi-spec.io",
    "httproutegroups.specs.smi-spec.io",
    "tcproutes.specs.smi-spec.io",
    "udproutes.specs.smi-spec.io",
];

#[tokio::test]
async fn every_component_is_ready_and_locked_down() {
    let client = cluster::client().await.expect("cluster");
    let t0 = Instant::now();
    if let Err(e) = check(&client).await {
        meshlet_e2e::diagnose::dump_namespace(&client, install::NAMESPACE).await;
        panic!("install check failed: {e:#}");
    }
    println!("[install] passed in {:.1?}", t0.elapsed());
}

async fn check(client: &Client) -> anyhow::Result<()> {
    let ns = install::NAMESPACE;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    for name in ["meshlet-operator", "meshlet-webhook"] {
        let available = wait::until(
            &format!("Deployment {name} available"),
            Duration::from_secs(120),
            Duration::from_secs(1),
            || async {
                let d = deployments.get(name).await?;
                let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                let st = d.status.unwrap_or_default();
                let ok = st.available_replicas.unwrap_or(0) >= want
                    && st.updated_replicas.unwrap_or(0) >= want
                    && st.observed_generation >= d.metadata.generation;
                Ok(ok.then_some(want))
            },
        )
        .await?;
        println!("Deployment {name}: {available} replica(s) available");
    }

    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let list = pods.list(&ListParams::default()).await?;
    ensure!(!list.items.is_empty(), "no pods in {ns}");
    for pod in &list.items {
        let name = pod.metadata.name.clone().unwrap_or_default();
        if pod.metadata.deletion_timestamp.is_some() {
            continue; // an old replica on its way out
        }
        let ready = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        ensure!(ready, "pod {name} is not Ready");
        let (init, containers) = mesh::container_names(pod);
        ensure!(
            !init
                .iter()
                .chain(&containers)
                .any(|c| c.starts_with("meshlet-")),
            "Meshlet's own pod {name} was injected: {init:?} {containers:?}"
        );
        let spec = pod.spec.as_ref().context("pod without spec")?;
        let pod_sc = spec.security_context.clone().unwrap_or_default();
        ensure!(
            pod_sc.run_as_non_root == Some(true),
            "pod {name}: runAsNonRoot is not true"
        );
        for c in &spec.containers {
            let sc = c.security_context.clone().unwrap_or_default();
            ensure!(
                sc.read_only_root_filesystem == Some(true)
                    && sc.allow_privilege_escalation == Some(false)
                    && sc
                        .capabilities
                        .and_then(|c| c.drop)
                        .is_some_and(|d| d.iter().any(|x| x == "ALL")),
                "pod {name} container {}: not read-only / no-escalation / drop ALL",
                c.name
            );
            ensure!(
                c.resources
                    .as_ref()
                    .and_then(|r| r.requests.as_ref())
                    .is_some(),
                "pod {name} container {}: no resource requests",
                c.name
            );
        }
        println!("pod {name}: Ready, non-root, read-only root filesystem, no capabilities");
    }

    // The identity CA: the issuer Secret and the trust anchors proxies and
    // the webhook read, created by the operator on first start.
    let issuer = Api::<Secret>::namespaced(client.clone(), ns)
        .get(identity::ISSUER_SECRET)
        .await
        .with_context(|| format!("Secret {}", identity::ISSUER_SECRET))?;
    for key in ["tls.crt", "tls.key", "ca.crt"] {
        ensure!(
            issuer.data.as_ref().is_some_and(|d| d.contains_key(key)),
            "Secret {} lacks {key}",
            identity::ISSUER_SECRET
        );
    }
    let anchors = Api::<ConfigMap>::namespaced(client.clone(), ns)
        .get(identity::TRUST_ANCHORS_CONFIGMAP)
        .await
        .with_context(|| format!("ConfigMap {}", identity::TRUST_ANCHORS_CONFIGMAP))?;
    let bundle = anchors
        .data
        .as_ref()
        .and_then(|d| d.get(identity::TRUST_ANCHORS_KEY))
        .cloned()
        .unwrap_or_default();
    ensure!(
        bundle.contains("BEGIN CERTIFICATE"),
        "ConfigMap {} has no PEM bundle under {}",
        identity::TRUST_ANCHORS_CONFIGMAP,
        identity::TRUST_ANCHORS_KEY
    );
    println!("identity: issuer Secret and trust anchors ConfigMap present");

    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), ns);
    for name in ["meshlet-operator", "meshlet-webhook"] {
        pdbs.get(name)
            .await
            .with_context(|| format!("PodDisruptionBudget {name}"))?;
    }

    // The API server trusts the webhook: the webhook wrote its CA everywhere.
    let mutating = Api::<MutatingWebhookConfiguration>::all(client.clone())
        .get(install::INJECT_WEBHOOK_CONFIGURATION)
        .await?;
    ensure!(
        mutating.webhooks.iter().flatten().all(|w| w
            .client_config
            .ca_bundle
            .as_ref()
            .is_some_and(|b| !b.0.is_empty())),
        "{} has no caBundle",
        install::INJECT_WEBHOOK_CONFIGURATION
    );
    let validating = Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .get(install::VALIDATE_WEBHOOK_CONFIGURATION)
        .await?;
    ensure!(
        validating.webhooks.iter().flatten().all(|w| w
            .client_config
            .ca_bundle
            .as_ref()
            .is_some_and(|b| !b.0.is_empty())),
        "{} has no caBundle",
        install::VALIDATE_WEBHOOK_CONFIGURATION
    );
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for name in CRDS {
        let crd = crds
            .get(name)
            .await
            .with_context(|| format!("CRD {name}"))?;
        let established = crd
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            });
        ensure!(established, "CRD {name} is not Established");
        let versions: Vec<_> = crd
            .spec
            .versions
            .iter()
            .filter(|v| v.served)
            .map(|v| v.name.clone())
            .collect();
        ensure!(
            versions.len() == crd.spec.versions.len(),
            "CRD {name}: not every version is served"
        );
        let bundle = crd
            .spec
            .conversion
            .as_ref()
            .and_then(|c| c.webhook.as_ref())
            .and_then(|w| w.client_config.as_ref())
            .and_then(|c| c.ca_bundle.as_ref());
        if versions.len() > 1 {
            ensure!(
                bundle.is_some_and(|b| !b.0.is_empty()),
                "CRD {name}: conversion webhook has no caBundle"
            );
        }
        println!("CRD {name}: Established, served {versions:?}");
    }
    Ok(())
}
