//! What the Flagger scenario deploys into its namespace: Prometheus
//! (Debian's binary, scraping every meshed pod's proxy, see
//! [`prometheus_config`]), Flagger (`-mesh-provider=linkerd`, watching only this
//! namespace), the target Deployment `podinfo` (the test server) and a
//! load-generating client. Prometheus and Flagger opt out of injection; the
//! app and the client are meshed.

use anyhow::Context;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource};
use meshlet_crds::contract::{annotations, ports};
use meshlet_e2e::mesh::{self, from_json, ClientPod, FIELD_MANAGER, TESTSERVER_IMAGE};
use meshlet_e2e::wait;
use serde_json::{json, Value};
use std::time::Duration;

/// Images built and loaded by e2e/kind/flagger.sh (which exports these
/// variables; the defaults are its tags).
pub fn flagger_image() -> String {
    std::env::var("FLAGGER_IMAGE").unwrap_or_else(|_| "meshlet-e2e/flagger:v1.36.1".into())
}
pub fn prometheus_image() -> String {
    std::env::var("PROMETHEUS_IMAGE").unwrap_or_else(|_| "meshlet-e2e/prometheus:2.42.0".into())
}

/// Prometheus's scrape job for the proxies. Debian's prometheus 2.42.0+ds
/// is built without `kubernetes_sd_configs` (promtool: "field
/// kubernetes_sd_configs not found in type config.ScrapeConfig"), so the
/// shipped deploy/observability/prometheus-scrape.yaml cannot be loaded by
/// it as is. This job is that file's `meshlet-proxy` job with DNS discovery
/// instead: the headless Service `meshlet-proxies` selects the same pods
/// (label meshlet.dev/meshed=true) and names the same port (meshlet-admin,
/// 4191); `honor_labels` and the path are the file's, and the proxy labels
/// its series with namespace/deployment/pod itself, as there.
pub const SCRAPE_INTERVAL_S: u64 = 5;
pub const PROXIES_SERVICE: &str = "meshlet-proxies";

pub fn prometheus_config(ns: &str) -> String {
    format!(
        "global:
  scrape_interval: {SCRAPE_INTERVAL_S}s
  evaluation_interval: {SCRAPE_INTERVAL_S}s
scrape_configs:
  - job_name: meshlet-proxy
    honor_labels: true
    metrics_path: /metrics
    dns_sd_configs:
      - names: [{PROXIES_SERVICE}.{ns}.svc.cluster.local]
        type: A
        port: {port}
        refresh_interval: {SCRAPE_INTERVAL_S}s
",
        port = ports::PROXY_ADMIN_PORT
    )
}

/// The shipped scrape configuration, to check that the job above still
/// says what it says.
pub const SHIPPED_SCRAPE_CONFIGS: &str =
    include_str!("../../../deploy/observability/prometheus-scrape.yaml");

/// The app: Deployment `podinfo`, pods labelled `app=podinfo` (Flagger's
/// selector label), ServiceAccount `podinfo`.
pub const TARGET: &str = "podinfo";
/// The load generator's pod and ServiceAccount.
pub const LOADGEN: &str = "loadgen";

async fn create<K>(client: &Client, ns: &str, manifest: Value) -> anyhow::Result<()>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let name = manifest["metadata"]["name"].to_string();
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    api.create(&PostParams::default(), &from_json(manifest)?)
        .await
        .with_context(|| format!("creating {} {name}", std::any::type_name::<K>()))?;
    Ok(())
}

fn unmeshed() -> Value {
    json!({ annotations::INJECT: annotations::INJECT_DISABLED })
}

/// Prometheus: Debian's binary, the shipped scrape jobs, TSDB in an emptyDir.
pub async fn deploy_prometheus(client: &Client, ns: &str) -> anyhow::Result<()> {
    mesh::service_account(client, ns, "prometheus").await?;
    // Every meshed pod's admin port, ready or not (a canary pod is scraped
    // from its start, as kubernetes_sd_configs would).
    create::<Service>(
        client,
        ns,
        json!({
            "metadata": { "name": PROXIES_SERVICE },
            "spec": {
                "clusterIP": "None",
                "publishNotReadyAddresses": true,
                "selector": { annotations::MESHED_LABEL: annotations::MESHED_TRUE },
                "ports": [{ "name": "meshlet-admin", "port": ports::PROXY_ADMIN_PORT, "targetPort": ports::PROXY_ADMIN_PORT }]
            }
        }),
    )
    .await?;
    let config = prometheus_config(ns);
    create::<ConfigMap>(
        client,
        ns,
        json!({ "metadata": { "name": "prometheus" }, "data": { "prometheus.yml": config } }),
    )
    .await?;
    let labels = json!({ "app": "prometheus" });
    create::<Deployment>(
        client,
        ns,
        json!({
            "metadata": { "name": "prometheus" },
            "spec": {
                "replicas": 1,
                "selector": { "matchLabels": labels },
                "template": {
                    "metadata": { "labels": labels, "annotations": unmeshed() },
                    "spec": {
                        "serviceAccountName": "prometheus",
                        "terminationGracePeriodSeconds": 2,
                        "securityContext": { "runAsUser": 65534, "runAsGroup": 65534, "fsGroup": 65534 },
                        "automountServiceAccountToken": false,
                        "containers": [{
                            "name": "prometheus",
                            "image": prometheus_image(),
                            "imagePullPolicy": "Never",
                            "args": [
                                "--config.file=/etc/prometheus/prometheus.yml",
                                "--storage.tsdb.path=/prometheus",
                                "--storage.tsdb.retention.time=2h",
                                "--web.listen-address=:9090"
                            ],
                            "ports": [{ "containerPort": 9090, "name": "http" }],
                            "readinessProbe": { "httpGet": { "path": "/-/ready", "port": 9090 }, "periodSeconds": 2 },
                            "volumeMounts": [
                                { "name": "config", "mountPath": "/etc/prometheus" },
                                { "name": "data", "mountPath": "/prometheus" }
                            ]
                        }],
                        "volumes": [
                            { "name": "config", "configMap": { "name": "prometheus" } },
                            { "name": "data", "emptyDir": {} }
                        ]
                    }
                }
            }
        }),
    )
    .await?;
    create::<Service>(
        client,
        ns,
        json!({
            "metadata": { "name": "prometheus" },
            "spec": { "selector": labels, "ports": [{ "name": "http", "port": 9090, "targetPort": 9090 }] }
        }),
    )
    .await
}

/// Flagger with the Linkerd provider and this namespace's Prometheus, bound
/// (RoleBinding) to the ClusterRole `flagger` that flagger.sh applied from
/// the module's artifacts/flagger/account.yaml.
pub async fn deploy_flagger(client: &Client, ns: &str) -> anyhow::Result<()> {
    mesh::service_account(client, ns, "flagger").await?;
    create::<RoleBinding>(
        client,
        ns,
        json!({
            "metadata": { "name": "flagger" },
            "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "flagger" },
            "subjects": [{ "kind": "ServiceAccount", "name": "flagger", "namespace": ns }]
        }),
    )
    .await?;
    let labels = json!({ "app": "flagger" });
    create::<Deployment>(
        client,
        ns,
        json!({
            "metadata": { "name": "flagger" },
            "spec": {
                "replicas": 1,
                "strategy": { "type": "Recreate" },
                "selector": { "matchLabels": labels },
                "template": {
                    "metadata": { "labels": labels, "annotations": unmeshed() },
                    "spec": {
                        "serviceAccountName": "flagger",
                        "terminationGracePeriodSeconds": 2,
                        "containers": [{
                            "name": "flagger",
                            "image": flagger_image(),
                            "imagePullPolicy": "Never",
                            "args": [
                                "-log-level=info",
                                "-zap-encoding=console",
                                "-mesh-provider=linkerd",
                                format!("-metrics-server=http://prometheus.{ns}:9090"),
                                format!("-namespace={ns}")
                            ],
                            "ports": [{ "containerPort": 8080, "name": "http" }],
                            "readinessProbe": { "httpGet": { "path": "/healthz", "port": 8080 }, "periodSeconds": 2 },
                            "securityContext": { "readOnlyRootFilesystem": true, "runAsUser": 10001 }
                        }]
                    }
                }
            }
        }),
    )
    .await
}

/// The test server's container as Deployment `podinfo` runs it: `version`
/// in every reply, listening on `port` (a release that listens on the wrong
/// port is the failing canary: its proxy cannot reach the app and answers
/// 5xx, while its readiness probe, on the port it does listen on, passes).
pub fn server_container(version: &str, port: u16) -> Value {
    json!({
        "name": "server",
        "image": TESTSERVER_IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "args": ["serve", "--port", port.to_string()],
        "env": [
            { "name": "VERSION", "value": version },
            { "name": "POD_NAME", "valueFrom": { "fieldRef": { "fieldPath": "metadata.name" } } }
        ],
        "ports": [{ "containerPort": port, "name": "http" }],
        "readinessProbe": { "httpGet": { "path": "/ready", "port": port }, "periodSeconds": 2 }
    })
}

/// The target Deployment (meshed): version v1 on port 8080.
pub async fn deploy_target(client: &Client, ns: &str) -> anyhow::Result<()> {
    mesh::service_account(client, ns, TARGET).await?;
    let labels = json!({ "app": TARGET });
    create::<Deployment>(
        client,
        ns,
        json!({
            "metadata": { "name": TARGET, "labels": labels },
            "spec": {
                "replicas": 1,
                "selector": { "matchLabels": labels },
                "template": {
                    "metadata": { "labels": labels },
                    "spec": {
                        "serviceAccountName": TARGET,
                        "terminationGracePeriodSeconds": 2,
                        "containers": [server_container("v1", 8080)]
                    }
                }
            }
        }),
    )
    .await
}

/// A new release of the target: replace its container (a pod template
/// change, which is what Flagger watches for).
pub async fn release(client: &Client, ns: &str, version: &str, port: u16) -> anyhow::Result<()> {
    Api::<Deployment>::namespaced(client.clone(), ns)
        .patch(
            TARGET,
            &PatchParams::default(),
            &Patch::Merge(json!({
                "spec": { "template": { "spec": { "containers": [server_container(version, port)] } } }
            })),
        )
        .await
        .with_context(|| format!("releasing {TARGET} {version}"))?;
    Ok(())
}

/// The Canary: 10 s steps of 25 % up to 50 %, two failed checks roll back,
/// Flagger's built-in Linkerd metrics over 30 s windows.
pub fn canary() -> Value {
    json!({
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": { "name": TARGET },
        "spec": {
            "targetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": TARGET },
            "progressDeadlineSeconds": 120,
            "service": { "port": 80, "targetPort": 8080, "portName": "http" },
            "analysis": {
                "interval": "10s",
                "threshold": 2,
                "maxWeight": 50,
                "stepWeight": 25,
                "metrics": [
                    { "name": "request-success-rate", "thresholdRange": { "min": 99 }, "interval": "30s" },
                    { "name": "request-duration", "thresholdRange": { "max": 500 }, "interval": "30s" }
                ]
            }
        }
    })
}

/// Server-side apply of a Canary.
pub async fn apply_canary(client: &Client, ns: &str, canary: Value) -> anyhow::Result<()> {
    let api = crate::observe::canary_api(client, ns);
    api.patch(
        TARGET,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&canary),
    )
    .await
    .context("applying the Canary")?;
    Ok(())
}

/// The load generator: a meshed client calling the apex Service `podinfo`
/// (whose TrafficSplit Flagger drives) every 25 ms, for longer than the test.
pub async fn start_load(client: &Client, ns: &str) -> anyhow::Result<()> {
    mesh::service_account(client, ns, LOADGEN).await?;
    mesh::allow_all_routes(client, ns, LOADGEN, TARGET).await?;
    let url = format!("http://{TARGET}.{ns}.svc.cluster.local/flagger");
    let mut pod = ClientPod::new(
        LOADGEN,
        &[
            "get",
            "--wait-proxy",
            "60",
            "--wait-ready",
            "60",
            "--timeout",
            "2",
            "--interval-ms",
            "25",
            "--count",
            "1000000",
            &url,
        ],
    );
    pod.service_account = LOADGEN;
    mesh::start_client(client, ns, &pod).await?;
    wait::until(
        "the load generator to start",
        Duration::from_secs(120),
        Duration::from_millis(500),
        || async {
            let logs = mesh::container_logs(client, ns, LOADGEN, mesh::CLIENT_CONTAINER)
                .await
                .unwrap_or_default();
            Ok(logs.contains("START ").then_some(()))
        },
    )
    .await
}

/// Wait until Deployment `name` has all its replicas updated and ready.
pub async fn wait_deployment(client: &Client, ns: &str, name: &str) -> anyhow::Result<()> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
    wait::until(
        &format!("Deployment {name} ready"),
        Duration::from_secs(180),
        Duration::from_secs(1),
        || async {
            let d = api.get(name).await?;
            let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            let st = d.status.unwrap_or_default();
            let done = st.observed_generation == d.metadata.generation
                && st.updated_replicas.unwrap_or(0) == want
                && st.ready_replicas.unwrap_or(0) == want;
            Ok(done.then_some(()))
        },
    )
    .await
}
