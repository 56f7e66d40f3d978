//! Uninstall scenario (`make e2e` runs it last, alone; feature
//! `kind-uninstall`): `make uninstall` (e2e/kind/uninstall.sh) leaves
//! nothing of Meshlet behind but the SMI CRDs: no namespace, no cluster-wide
//! RBAC, no webhook configurations, no APIService; and the cluster keeps
//! working: a pod in a namespace still labelled for injection starts
//! without a proxy, and SMI objects (stored version) can still be written.

use anyhow::{ensure, Context};
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::{Api, Client};
use meshlet_crds::contract::install;
use meshlet_e2e::mesh::{self, ClientPod};
use meshlet_e2e::scenario;
use serde_json::json;
use std::time::{Duration, Instant};

const SELECTOR: &str = "app.kubernetes.io/part-of=meshlet";

#[tokio::test]
async fn uninstall_leaves_only_the_crds() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/kind/uninstall.sh");
    let t0 = Instant::now();
    let status = tokio::process::Command::new(script)
        .status()
        .await
        .expect("running e2e/kind/uninstall.sh");
    assert!(status.success(), "{script} failed: {status}");
    println!("[uninstall] make uninstall took {:.1?}", t0.elapsed());
    scenario::run("after-uninstall", true, |client, ns| async move {
        check(&client, &ns).await
    })
    .await;
}

async fn check(client: &Client, ns: &str) -> anyhow::Result<()> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    ensure!(
        namespaces.get_opt(install::NAMESPACE).await?.is_none(),
        "namespace {} still exists",
        install::NAMESPACE
    );
    let lp = ListParams::default().labels(SELECTOR);
    let mut left = Vec::new();
    macro_rules! none_left {
        ($kind:ty, $api:expr) => {
            let api: Api<$kind> = $api;
            for o in api.list(&lp).await? {
                left.push(format!(
                    "{} {}",
                    stringify!($kind),
                    o.metadata.name.unwrap_or_default()
                ));
            }
        };
    }
    none_left!(ClusterRole, Api::all(client.clone()));
    none_left!(ClusterRoleBinding, Api::all(client.clone()));
    none_left!(MutatingWebhookConfiguration, Api::all(client.clone()));
    none_left!(ValidatingWebhookConfiguration, Api::all(client.clone()));
    none_left!(RoleBinding, Api::all(client.clone()));
    let apiservices: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource::from_gvk(&GroupVersionKind::gvk(
            "apiregistration.k8s.io",
            "v1",
            "APIService",
        )),
    );
    for o in apiservices.list(&ListParams::default()).await? {
        let name = o.metadata.name.unwrap_or_default();
        if name.ends_with("metrics.smi-spec.io") {
            left.push(format!("APIService {name}"));
        }
    }
    ensure!(left.is_empty(), "left behind after uninstall: {left:?}");

    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let smi: Vec<_> = crds
        .list(&ListParams::default())
        .await?
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .filter(|n| n.ends_with(".smi-spec.io"))
        .collect();
    println!("SMI CRDs kept: {smi:?}");
    ensure!(
        smi.len() == 5,
        "expected the 5 SMI CRDs to stay, found {smi:?}"
    );

    // The cluster works without Meshlet: no webhook intercepts pods or SMI
    // writes (the stored version needs no conversion).
    let pod = mesh::start_client(client, ns, &ClientPod::new("plain", &["--version"])).await?;
    let (init, containers) = mesh::container_names(&pod);
    ensure!(
        init.is_empty() && containers == ["client"],
        "injected after uninstall: {init:?} {containers:?}"
    );
    let (phase, logs) = mesh::finish(client, ns, "plain", Duration::from_secs(120)).await?;
    ensure!(phase == "Succeeded", "plain pod {phase}: {logs}");
    mesh::create_smi(
        client,
        ns,
        json!({"apiVersion": "split.smi-spec.io/v1alpha4", "kind": "TrafficSplit",
               "metadata": {"name": "kept"},
               "spec": {"service": "web", "backends": [{"service": "web-v1", "weight": 1}]}}),
    )
    .await
    .context("writing a TrafficSplit v1alpha4 without Meshlet")?;
    Ok(())
}
