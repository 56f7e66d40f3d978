//! `meshlet check` against a real kube-apiserver: first on a bare cluster
//! (every post-install piece missing: fail lines with hints), then with the
//! pieces an installation creates made by hand — CRDs with every version
//! served and a conversion caBundle, webhook configurations, Services with
//! ready EndpointSlices, Deployments with ready status, trust anchors,
//! meshed pods — and finally with things broken one at a time.
//!
//! One test function: the objects are cluster-scoped or live in
//! meshlet-system, shared by everything in this binary.

mod common;

use std::time::Duration;

use anyhow::Result;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use meshlet_cli::check::apiservices::METRICS_VERSIONS;
use meshlet_cli::check::{post, pre, render_text, Check};
use meshlet_cli::metrics_api::{APISERVICE, APISERVICE_V1ALPHA2};
use meshlet_crds::contract::{annotations as keys, identity, install};
use meshlet_crds::manifests::{self, CrdRender};
use serde_json::{json, Value};

fn cert_pem(days: i64) -> String {
    let mut params =
        rcgen::CertificateParams::new(vec!["meshlet-webhook.meshlet-system.svc".into()]).unwrap();
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(days);
    params
        .self_signed(&rcgen::KeyPair::generate().unwrap())
        .unwrap()
        .pem()
}

fn b64(pem: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(pem)
}

async fn apply(client: &Client, value: Value) -> Result<()> {
    let object: kube::core::DynamicObject = serde_json::from_value(value.clone())?;
    let api_version = value["apiVersion"].as_str().unwrap();
    let kind = value["kind"].as_str().unwrap();
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let gvk = kube::core::GroupVersionKind::gvk(group, version, kind);
    let (resource, caps) = kube::discovery::pinned_kind(client, &gvk).await?;
    let name = object.metadata.name.clone().unwrap();
    let api: Api<kube::core::DynamicObject> = match (&object.metadata.namespace, caps.scope) {
        (Some(ns), kube::discovery::Scope::Namespaced) => {
            Api::namespaced_with(client.clone(), ns, &resource)
        }
        _ => Api::all_with(client.clone(), &resource),
    };
    api.patch(
        &name,
        &PatchParams::apply("test").force(),
        &Patch::Apply(&object),
    )
    .await?;
    Ok(())
}

fn find<'a>(checks: &'a [Check], prefix: &str) -> &'a Check {
    checks
        .iter()
        .find(|c| c.name.starts_with(prefix))
        .unwrap_or_else(|| panic!("no check {prefix:?} in\n{}", render_text(checks)))
}

fn options() -> post::Options {
    post::Options {
        expiry_margin: Duration::from_secs(30 * 86400),
        proxy_version: "0.1.0".into(),
    }
}

async fn ready_deployment(client: &Client, name: &str) -> Result<()> {
    apply(client, json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": install::NAMESPACE},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "c", "image": format!("meshlet/{name}:0.1.0")}]}}}
    })).await?;
    let api: Api<Deployment> = Api::namespaced(client.clone(), install::NAMESPACE);
    let generation = api.get(name).await?.metadata.generation.unwrap_or(1);
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(json!({
        "status": {"replicas": 1, "readyReplicas": 1, "updatedReplicas": 1, "availableReplicas": 1,
                   "observedGeneration": generation}
    }))).await?;
    Ok(())
}

async fn service_with_endpoint(client: &Client, name: &str, ready: bool) -> Result<()> {
    apply(
        client,
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": install::NAMESPACE},
            "spec": {"ports": [{"port": 443, "targetPort": 8443}], "selector": {"app": name}}
        }),
    )
    .await?;
    apply(
        client,
        json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": format!("{name}-1"), "namespace": install::NAMESPACE,
                         "labels": {"kubernetes.io/service-name": name}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.244.0.7"], "conditions": {"ready": ready}}],
            "ports": [{"port": 8443, "protocol": "TCP"}]
        }),
    )
    .await
}

async fn webhook_configurations(client: &Client, ca: &str) -> Result<()> {
    // Never called: no namespace carries the selector's label.
    let webhook = |name: &str, path: &str, rules: Value| {
        json!({
            "name": name, "admissionReviewVersions": ["v1"], "sideEffects": "None",
            "failurePolicy": "Ignore", "timeoutSeconds": 1,
            "namespaceSelector": {"matchLabels": {"meshlet-cli-test/never": "true"}},
            "clientConfig": {"caBundle": b64(ca), "service": {"name": install::WEBHOOK_SERVICE,
                "namespace": install::NAMESPACE, "path": path, "port": 443}},
            "rules": [rules],
        })
    };
    apply(client, json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": install::INJECT_WEBHOOK_CONFIGURATION},
        "webhooks": [webhook("inject.meshlet.dev", install::INJECT_PATH, json!({
            "apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}))]
    })).await?;
    apply(client, json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": install::VALIDATE_WEBHOOK_CONFIGURATION},
        "webhooks": [webhook("validate.meshlet.dev", install::VALIDATE_PATH, json!({
            "apiGroups": ["split.smi-spec.io"], "apiVersions": ["*"], "operations": ["CREATE", "UPDATE"],
            "resources": ["trafficsplits"]}))]
    })).await
}

async fn crd_ca_bundles(client: &Client, ca: &str) -> Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in manifests::all(CrdRender::Full) {
        let webhook = crd
            .spec
            .conversion
            .as_ref()
            .is_some_and(|c| c.strategy == "Webhook");
        if !webhook {
            continue;
        }
        let name = crd.metadata.name.unwrap();
        api.patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({
                "spec": {"conversion": {"webhook": {"clientConfig": {"caBundle": b64(ca)}}}}
            })),
        )
        .await?;
    }
    Ok(())
}

async fn meshed_pod(client: &Client, namespace: &str, name: &str, version: &str) -> Result<()> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {keys::MESHED_LABEL: keys::MESHED_TRUE},
                     "annotations": {keys::PROXY_VERSION: version}},
        "spec": {"automountServiceAccountToken": false, "containers": [{"name": "app", "image": "app"}]}
    }))?;
    api.create(&PostParams::default(), &pod).await?;
    Ok(())
}

/// An APIService with no Service: the aggregator serves it locally and
/// marks it Available (reason Local).
async fn local_apiservice(client: &Client, name: &str) -> Result<()> {
    let (version, group) = name.split_once('.').unwrap();
    apply(client, json!({
        "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
        "metadata": {"name": name},
        "spec": {"group": group, "version": version, "groupPriorityMinimum": 100, "versionPriority": 100}
    }))
    .await
}

/// Post-install checks, re-run until `done` holds (the aggregator updates
/// APIService conditions asynchronously) or 20 s pass; the last run.
async fn wait_for_checks(client: &Client, done: impl Fn(&[Check]) -> bool) -> Vec<Check> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let checks = post::checks(client, &options()).await;
        if done(&checks) || tokio::time::Instant::now() > deadline {
            return checks;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn check_reports_each_piece_pass_and_fail() -> Result<()> {
    let env = meshlet_testenv::shared().await?;
    let client = env.client();

    // Pre-install: the test user is an administrator of a 1.34 API server.
    let pre = pre::checks(&client).await;
    println!("--- pre\n{}", render_text(&pre));
    assert!(pre.iter().all(|c| c.ok), "{}", render_text(&pre));
    assert!(find(&pre, "Kubernetes is 1.29")
        .detail
        .as_deref()
        .unwrap()
        .starts_with("v1."));
    assert!(pre
        .iter()
        .any(|c| c.name == "can create customresourcedefinitions.apiextensions.k8s.io"));

    // A bare cluster: everything after reachability fails, with a hint.
    let bare = post::checks(&client, &options()).await;
    println!("--- bare\n{}", render_text(&bare));
    assert!(bare[0].ok);
    let (last, middle) = bare[1..].split_last().unwrap();
    assert!(
        middle.iter().all(|c| !c.ok && c.hint.is_some()),
        "{}",
        render_text(&bare)
    );
    assert_eq!(
        (last.ok, last.detail.as_deref()),
        (true, Some("0 meshed pods"))
    );
    let crd = find(
        &bare,
        "CRD trafficsplits.split.smi-spec.io serves v1alpha1, v1alpha2, v1alpha3, v1alpha4",
    );
    assert_eq!(crd.detail.as_deref(), Some("not found"));
    assert!(
        find(&bare, "MutatingWebhookConfiguration meshlet-inject exists")
            .hint
            .as_deref()
            .unwrap()
            .contains("meshlet install")
    );

    // Storage-only CRDs: served, but old versions missing.
    common::apply_crds(&client, CrdRender::StorageOnly).await?;
    let partial = post::checks(&client, &options()).await;
    let crd = find(&partial, "CRD trafficsplits.split.smi-spec.io");
    assert_eq!(
        crd.detail.as_deref(),
        Some("not served: v1alpha1, v1alpha2, v1alpha3"),
        "{crd:?}"
    );

    // The full CRDs (every version, webhook conversion) without a caBundle.
    common::apply_crds(&client, CrdRender::Full).await?;
    let no_bundle = post::checks(&client, &options()).await;
    let crd = find(&no_bundle, "CRD trafficsplits.split.smi-spec.io");
    assert!(
        crd.detail
            .as_deref()
            .unwrap()
            .contains("conversion webhook caBundle: no PEM"),
        "{crd:?}"
    );

    // Everything an installation makes.
    let ca = cert_pem(365);
    crd_ca_bundles(&client, &ca).await?;
    apply(
        &client,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": install::NAMESPACE}}),
    )
    .await?;
    webhook_configurations(&client, &ca).await?;
    service_with_endpoint(&client, install::WEBHOOK_SERVICE, true).await?;
    ready_deployment(&client, install::OPERATOR_SERVICE).await?;
    ready_deployment(&client, install::WEBHOOK_SERVICE).await?;
    apply(&client, json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": identity::TRUST_ANCHORS_CONFIGMAP, "namespace": install::NAMESPACE},
        "data": {identity::TRUST_ANCHORS_KEY: cert_pem(3650)}
    })).await?;
    let apps = env.create_namespace("check-apps").await?;
    apply(&client, json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": apps}})).await?;
    meshed_pod(&client, &apps, "web-1", "0.1.0").await?;
    let installed = post::checks(&client, &options()).await;
    println!("--- installed\n{}", render_text(&installed));
    let failed: Vec<&Check> = installed.iter().filter(|c| !c.ok).collect();
    // The only pieces still missing: the TrafficMetrics APIServices, one
    // line per version the operator registers.
    let names: Vec<String> = METRICS_VERSIONS.iter().map(|v| v.apiservice()).collect();
    // Among them, the ones `meshlet stat` (v1alpha1) and `stat ts`/`canary`
    // (v1alpha2) read.
    for read in [APISERVICE, APISERVICE_V1ALPHA2] {
        assert!(names.iter().any(|n| n == read), "{read} not in {names:?}");
    }
    assert_eq!(
        failed.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        names
            .iter()
            .map(|n| format!("APIService {n} (TrafficMetrics) is Available"))
            .collect::<Vec<_>>(),
        "{}",
        render_text(&installed)
    );
    assert!(failed
        .iter()
        .all(|c| c.detail.as_deref() == Some("not registered")));
    assert!(
        find(&installed, &format!("APIService {APISERVICE_V1ALPHA2} "))
            .hint
            .as_deref()
            .unwrap()
            .contains("meshlet stat ts and meshlet canary"),
        "{}",
        render_text(&installed)
    );

    // Every APIService Available: all good. Local APIServices (no Service)
    // are the ones this API server's aggregator can make Available without
    // an operator; the check reads the same Available condition either way
    // (the operator-served path is covered by operator/tests/cli_stat_canary.rs).
    for name in &names {
        local_apiservice(&client, name).await?;
    }
    let all_good = wait_for_checks(&client, |checks| checks.iter().all(|c| c.ok)).await;
    println!("--- all good\n{}", render_text(&all_good));
    assert!(all_good.iter().all(|c| c.ok), "{}", render_text(&all_good));
    assert!(render_text(&all_good)
        .ends_with(&format!("Status: all {} checks passed\n", all_good.len())));
    for name in &names {
        assert!(find(&all_good, &format!("APIService {name} ")).ok);
    }

    // v1alpha2 missing while v1alpha1 is fine: check fails on its own line.
    let apiservices: Api<APIService> = Api::all(client.clone());
    apiservices
        .delete(APISERVICE_V1ALPHA2, &Default::default())
        .await?;
    let v1alpha2_line = format!("APIService {APISERVICE_V1ALPHA2} (TrafficMetrics) is Available");
    let missing = wait_for_checks(&client, |checks| {
        checks
            .iter()
            .any(|c| c.name == v1alpha2_line && c.detail.as_deref() == Some("not registered"))
    })
    .await;
    let text = render_text(&missing);
    println!("--- v1alpha2 missing\n{text}");
    let failed: Vec<&Check> = missing.iter().filter(|c| !c.ok).collect();
    assert_eq!(failed.len(), 1, "{text}");
    assert_eq!(failed[0].name, v1alpha2_line);
    assert!(
        text.contains(&format!(
        "✘ {v1alpha2_line}: not registered\n    hint: install with the TrafficMetrics API enabled"
    )),
        "{text}"
    );
    assert!(find(&missing, &format!("APIService {APISERVICE} ")).ok);

    // v1alpha2 registered but nothing serves it: not Available.
    apply(&client, json!({
        "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
        "metadata": {"name": APISERVICE_V1ALPHA2},
        "spec": {"group": "metrics.smi-spec.io", "version": "v1alpha2", "groupPriorityMinimum": 100,
                 "versionPriority": 200, "insecureSkipTLSVerify": true,
                 "service": {"name": install::OPERATOR_SERVICE, "namespace": install::NAMESPACE, "port": 443}}
    })).await?;
    let unavailable = wait_for_checks(&client, |checks| {
        checks.iter().any(|c| {
            c.name == v1alpha2_line
                && c.detail
                    .as_deref()
                    .is_some_and(|d| d.contains("is not Available ("))
        })
    })
    .await;
    let text = render_text(&unavailable);
    println!("--- v1alpha2 unavailable\n{text}");
    let failed: Vec<&Check> = unavailable.iter().filter(|c| !c.ok).collect();
    assert_eq!(failed.len(), 1, "{text}");
    assert_eq!(failed[0].name, v1alpha2_line);
    assert!(
        failed[0].detail.as_deref().unwrap().starts_with(&format!(
            "APIService {APISERVICE_V1ALPHA2} is not Available ("
        )),
        "{text}"
    );
    assert!(
        failed[0]
            .hint
            .as_deref()
            .unwrap()
            .starts_with("the operator serves it (needed by meshlet stat ts and meshlet canary)"),
        "{text}"
    );
    // Back to none registered, as the rest of the test expects.
    for name in &names {
        apiservices.delete(name, &Default::default()).await?;
    }
    assert_eq!(
        find(
            &installed,
            "Service meshlet-system/meshlet-webhook has ready endpoints"
        )
        .detail
        .as_deref(),
        Some("1 ready")
    );
    assert_eq!(
        find(&installed, "meshed pods run proxy version 0.1.0")
            .detail
            .as_deref(),
        Some("1 meshed pods")
    );
    assert!(find(&installed, "trust anchors")
        .detail
        .as_deref()
        .unwrap()
        .starts_with("1 certificate, valid for"));

    // Broken one at a time.
    meshed_pod(&client, &apps, "web-old", "0.0.9").await?;
    service_with_endpoint(&client, install::WEBHOOK_SERVICE, false).await?;
    apply(&client, json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": identity::TRUST_ANCHORS_CONFIGMAP, "namespace": install::NAMESPACE},
        "data": {identity::TRUST_ANCHORS_KEY: cert_pem(10)}
    })).await?;
    webhook_configurations(&client, &cert_pem(-1)).await?;
    Api::<Deployment>::namespaced(client.clone(), install::NAMESPACE)
        .patch_status(
            install::OPERATOR_SERVICE,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"readyReplicas": 0, "availableReplicas": 0}})),
        )
        .await?;
    let broken = post::checks(&client, &options()).await;
    println!("--- broken\n{}", render_text(&broken));
    let versions = find(&broken, "meshed pods run proxy version");
    assert_eq!(
        versions.detail.as_deref(),
        Some(format!("1 of 2 differ: {apps}/web-old (0.0.9)").as_str())
    );
    assert!(find(&broken, "Service meshlet-system/meshlet-webhook")
        .detail
        .as_deref()
        .unwrap()
        .starts_with("no ready endpoint"));
    assert!(find(&broken, "trust anchors")
        .detail
        .as_deref()
        .unwrap()
        .contains("expires in"));
    assert!(find(
        &broken,
        "MutatingWebhookConfiguration meshlet-inject has a valid caBundle"
    )
    .detail
    .as_deref()
    .unwrap()
    .contains("has expired"));
    assert_eq!(
        find(&broken, "Deployment meshlet-system/meshlet-operator")
            .detail
            .as_deref(),
        Some("0/1 replicas ready")
    );
    assert!(find(&broken, "Deployment meshlet-system/meshlet-webhook").ok);

    // The TrafficMetrics APIService registered but with nothing behind it.
    apply(&client, json!({
        "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
        "metadata": {"name": "v1alpha1.metrics.smi-spec.io"},
        "spec": {"group": "metrics.smi-spec.io", "version": "v1alpha1", "groupPriorityMinimum": 100,
                 "versionPriority": 100, "insecureSkipTLSVerify": true,
                 "service": {"name": install::OPERATOR_SERVICE, "namespace": install::NAMESPACE, "port": 443}}
    })).await?;
    let started = std::time::Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let apiservice = loop {
        let checks = post::checks(&client, &options()).await;
        let c = find(&checks, "APIService").clone();
        if c.detail
            .as_deref()
            .is_some_and(|d| d.contains("is not Available"))
            || tokio::time::Instant::now() > deadline
        {
            break c;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    println!("{apiservice:?} after {:?}", started.elapsed());
    assert!(!apiservice.ok);
    assert!(
        apiservice
            .detail
            .as_deref()
            .unwrap()
            .contains("is not Available ("),
        "{apiservice:?}"
    );

    // And the CLI's TrafficMetrics reader says the same instead of a bare 503.
    // Through a client made the way the CLI makes it (from the kubeconfig).
    let kube_args = meshlet_cli::kubeargs::KubeArgs {
        kubeconfig: Some(env.kubeconfig_path().to_path_buf()),
        ..Default::default()
    };
    let (cli_client, _) = kube_args.client().await?;
    let api = meshlet_cli::metrics_api::MetricsApi::new(cli_client);
    let started = std::time::Instant::now();
    let err = api
        .list("deployments", &apps)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("the TrafficMetrics API is not available: APIService v1alpha1.metrics.smi-spec.io is not Available"), "{err}");
    println!("unavailable answered in {:?}", started.elapsed());
    apiservices.delete(APISERVICE, &Default::default()).await?;
    let started = std::time::Instant::now();
    let err = api
        .list("deployments", &apps)
        .await
        .unwrap_err()
        .to_string();
    println!("missing answered in {:?}", started.elapsed());
    assert!(
        err.starts_with("the TrafficMetrics API is not installed: no APIService"),
        "{err}"
    );
    Ok(())
}
