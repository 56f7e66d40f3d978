//! Building blocks of the meshed scenarios: namespaces labelled for
//! injection, test-server Deployments and Services, one-shot client pods,
//! and SMI objects in any version (dynamic API, so each test writes the
//! version it means).

use crate::wait;
use anyhow::{bail, Context};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service, ServiceAccount};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams, LogParams};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{json, Value};
use std::time::Duration;

/// The test server/client image (`make images`, loaded by `make install`).
pub const TESTSERVER_IMAGE: &str = "meshlet/testserver:dev";
/// Field manager of everything the suite applies.
pub const FIELD_MANAGER: &str = "meshlet-e2e";

/// Parse `value` as a Kubernetes type, naming the type on failure.
pub fn from_json<T: serde::de::DeserializeOwned>(value: Value) -> anyhow::Result<T> {
    serde_json::from_value(value).with_context(|| {
        format!(
            "manifest does not match the Kubernetes type {}",
            std::any::type_name::<T>()
        )
    })
}

/// The API resource of an SMI kind in `group/version` (e.g.
/// `split.smi-spec.io/v1alpha1`, `TrafficSplit`): plural is the lowercased
/// kind + "s", as in every SMI CRD.
pub fn smi_resource(api_version: &str, kind: &str) -> ApiResource {
    let (group, version) = api_version
        .split_once('/')
        .expect("SMI apiVersion is group/version");
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(group, version, kind),
        &format!("{}s", kind.to_lowercase()),
    )
}

/// A dynamic API for the object's own `apiVersion` and `kind`.
pub fn dynamic_api(
    client: &Client,
    ns: &str,
    object: &Value,
) -> anyhow::Result<Api<DynamicObject>> {
    let api_version = object["apiVersion"]
        .as_str()
        .context("object has no apiVersion")?;
    let kind = object["kind"].as_str().context("object has no kind")?;
    Ok(Api::namespaced_with(
        client.clone(),
        ns,
        &smi_resource(api_version, kind),
    ))
}

/// Create an SMI object (JSON with apiVersion, kind, metadata.name) in `ns`.
/// The API server's error (e.g. the validating webhook's message) is kept.
pub async fn create_smi(
    client: &Client,
    ns: &str,
    object: Value,
) -> Result<DynamicObject, kube::Error> {
    let api = dynamic_api(client, ns, &object).expect("SMI object with apiVersion and kind");
    let obj: DynamicObject = serde_json::from_value(object).expect("SMI object is a DynamicObject");
    api.create(&PostParams::default(), &obj).await
}

/// Server-side apply of an SMI object (create or update).
pub async fn apply_smi(client: &Client, ns: &str, object: Value) -> anyhow::Result<DynamicObject> {
    let api = dynamic_api(client, ns, &object)?;
    let name = object["metadata"]["name"]
        .as_str()
        .context("object has no metadata.name")?
        .to_string();
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&object),
    )
    .await
    .with_context(|| format!("applying {} {name}", object["kind"]))
}

/// Read an SMI object back in `api_version` (converted by the webhook).
pub async fn get_smi(
    client: &Client,
    ns: &str,
    api_version: &str,
    kind: &str,
    name: &str,
) -> anyhow::Result<Value> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), ns, &smi_resource(api_version, kind));
    let obj = api
        .get(name)
        .await
        .with_context(|| format!("reading {kind} {name} as {api_version}"))?;
    Ok(serde_json::to_value(obj)?)
}

/// A ServiceAccount `name` in `ns` (workload identities for TrafficTargets).
pub async fn service_account(client: &Client, ns: &str, name: &str) -> anyhow::Result<()> {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    api.create(
        &PostParams::default(),
        &from_json(json!({"metadata": {"name": name}}))?,
    )
    .await
    .with_context(|| format!("creating ServiceAccount {name}"))?;
    Ok(())
}

/// SMI access (the mesh denies by default): ServiceAccount `from` may call
/// every HTTP route of ServiceAccount `to`'s pods (HTTPRouteGroup
/// `everything` + TrafficTarget `<from>-to-<to>`).
pub async fn allow_all_routes(
    client: &Client,
    ns: &str,
    from: &str,
    to: &str,
) -> anyhow::Result<()> {
    apply_smi(
        client,
        ns,
        json!({
            "apiVersion": "specs.smi-spec.io/v1alpha4", "kind": "HTTPRouteGroup",
            "metadata": { "name": "everything" },
            "spec": { "matches": [{ "name": "all", "pathRegex": ".*", "methods": ["*"] }] }
        }),
    )
    .await?;
    apply_smi(
        client,
        ns,
        json!({
            "apiVersion": "access.smi-spec.io/v1alpha3", "kind": "TrafficTarget",
            "metadata": { "name": format!("{from}-to-{to}") },
            "spec": {
                "destination": { "kind": "ServiceAccount", "name": to, "namespace": ns },
                "sources": [{ "kind": "ServiceAccount", "name": from, "namespace": ns }],
                "rules": [{ "kind": "HTTPRouteGroup", "name": "everything", "matches": ["all"] }]
            }
        }),
    )
    .await?;
    Ok(())
}

/// What a test-server Deployment looks like.
pub struct Server<'a> {
    /// Deployment name; pods get labels `app=<app>` and `version=<version>`.
    pub name: &'a str,
    pub app: &'a str,
    pub version: &'a str,
    pub replicas: i32,
    pub service_account: &'a str,
}

/// A Deployment of the test server answering `{pod, version, ...}` on 8080.
pub async fn deploy_server(client: &Client, ns: &str, s: &Server<'_>) -> anyhow::Result<()> {
    let labels = json!({ "app": s.app, "version": s.version });
    let deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": s.name },
        "spec": {
            "replicas": s.replicas,
            "selector": { "matchLabels": labels },
            "template": {
                "metadata": { "labels": labels },
                "spec": {
                    "serviceAccountName": s.service_account,
                    "terminationGracePeriodSeconds": 2,
                    "containers": [{
                        "name": "server",
                        "image": TESTSERVER_IMAGE,
                        "imagePullPolicy": "IfNotPresent",
                        "args": ["serve", "--port", "8080"],
                        "env": [
                            { "name": "VERSION", "value": s.version },
                            { "name": "POD_NAME", "valueFrom": { "fieldRef": { "fieldPath": "metadata.name" } } }
                        ],
                        "ports": [{ "containerPort": 8080, "name": "http" }],
                        "readinessProbe": {
                            "httpGet": { "path": "/ready", "port": 8080 },
                            "periodSeconds": 1
                        }
                    }]
                }
            }
        }
    });
    Api::<Deployment>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &from_json(deployment)?)
        .await
        .with_context(|| format!("creating Deployment {}", s.name))?;
    Ok(())
}

/// A Service `name` on port 80 → `http` (8080) of the pods matching `selector`.
pub async fn service(client: &Client, ns: &str, name: &str, selector: Value) -> anyhow::Result<()> {
    let svc = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": { "name": name },
        "spec": {
            "selector": selector,
            "ports": [{ "name": "http", "port": 80, "targetPort": "http" }]
        }
    });
    Api::<Service>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &from_json(svc)?)
        .await
        .with_context(|| format!("creating Service {name}"))?;
    Ok(())
}

/// Wait until the Service's EndpointSlices list `want` ready endpoints.
pub async fn wait_endpoints(
    client: &Client,
    ns: &str,
    service: &str,
    want: usize,
) -> anyhow::Result<()> {
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), ns);
    let selector = format!("kubernetes.io/service-name={service}");
    wait::until(
        &format!("{want} ready endpoints of Service {service}"),
        Duration::from_secs(180),
        Duration::from_secs(1),
        || async {
            let list = slices
                .list(&ListParams::default().labels(&selector))
                .await?;
            let ready = list
                .items
                .iter()
                .flat_map(|s| s.endpoints.iter())
                .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
                .count();
            Ok((ready >= want).then_some(()))
        },
    )
    .await
}

/// A one-shot pod running the test-server image with `args`.
pub struct ClientPod<'a> {
    pub name: &'a str,
    pub args: Vec<String>,
    pub service_account: &'a str,
    /// Pod annotations (e.g. `meshlet.dev/inject: disabled`).
    pub annotations: Value,
}

impl<'a> ClientPod<'a> {
    pub fn new(name: &'a str, args: &[&str]) -> Self {
        Self {
            name,
            args: args.iter().map(|a| a.to_string()).collect(),
            service_account: "default",
            annotations: json!({}),
        }
    }
}

/// Name of the client container in [`ClientPod`]s.
pub const CLIENT_CONTAINER: &str = "client";

/// Create the client pod (does not wait).
pub async fn start_client(client: &Client, ns: &str, c: &ClientPod<'_>) -> anyhow::Result<Pod> {
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "name": c.name, "annotations": c.annotations },
        "spec": {
            "restartPolicy": "Never",
            "serviceAccountName": c.service_account,
            "terminationGracePeriodSeconds": 2,
            "containers": [{
                "name": CLIENT_CONTAINER,
                "image": TESTSERVER_IMAGE,
                "imagePullPolicy": "IfNotPresent",
                "args": c.args
            }]
        }
    });
    Api::<Pod>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &from_json(pod)?)
        .await
        .with_context(|| format!("creating pod {}", c.name))
}

/// Wait for pod `name` to end; its phase and the client container's output.
pub async fn finish(
    client: &Client,
    ns: &str,
    name: &str,
    timeout: Duration,
) -> anyhow::Result<(String, String)> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let phase = wait::until(
        &format!("pod {name} to finish"),
        timeout,
        Duration::from_millis(500),
        || async {
            let phase = pods.get(name).await?.status.and_then(|s| s.phase);
            Ok(phase.filter(|p| p == "Succeeded" || p == "Failed"))
        },
    )
    .await?;
    let logs = container_logs(client, ns, name, CLIENT_CONTAINER).await?;
    Ok((phase, logs))
}

/// The output of one container of a pod.
pub async fn container_logs(
    client: &Client,
    ns: &str,
    pod: &str,
    container: &str,
) -> anyhow::Result<String> {
    Api::<Pod>::namespaced(client.clone(), ns)
        .logs(
            pod,
            &LogParams {
                container: Some(container.into()),
                ..Default::default()
            },
        )
        .await
        .with_context(|| format!("reading the logs of {pod}/{container}"))
}

/// Run a client pod to the end; fail unless it Succeeded. Returns its output.
pub async fn run_client(client: &Client, ns: &str, c: &ClientPod<'_>) -> anyhow::Result<String> {
    start_client(client, ns, c).await?;
    let (phase, logs) = finish(client, ns, c.name, Duration::from_secs(240)).await?;
    if phase != "Succeeded" {
        bail!("client pod {} ended {phase}; its output:\n{logs}", c.name);
    }
    Ok(logs)
}

/// Counts from the client's `<label>: k=v k=v` summary line (`version`,
/// `status`, `pod`), summed over every such line in `logs`.
pub fn tally(logs: &str, label: &str) -> std::collections::BTreeMap<String, usize> {
    let prefix = format!("{label}: ");
    let mut out = std::collections::BTreeMap::new();
    for line in logs.lines().filter_map(|l| l.strip_prefix(&prefix)) {
        for (k, v) in line.split_whitespace().filter_map(|kv| kv.split_once('=')) {
            *out.entry(k.to_string()).or_default() += v.parse::<usize>().unwrap_or(0);
        }
    }
    out
}

/// Names of the init containers and containers of a pod.
pub fn container_names(pod: &Pod) -> (Vec<String>, Vec<String>) {
    let spec = pod.spec.as_ref();
    let names = |cs: Option<&Vec<k8s_openapi::api::core::v1::Container>>| {
        cs.map(|cs| cs.iter().map(|c| c.name.clone()).collect())
            .unwrap_or_default()
    };
    (
        names(spec.and_then(|s| s.init_containers.as_ref())),
        names(spec.map(|s| &s.containers)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally_sums_summary_lines() {
        let logs = "GET a x3\nstatus: 200=3\nversion: v1=2 v2=1\nGET b x2\nstatus: 200=1 503=1\nversion: v2=2\n";
        let v = tally(logs, "version");
        assert_eq!((v["v1"], v["v2"]), (2, 3));
        let s = tally(logs, "status");
        assert_eq!((s["200"], s["503"]), (4, 1));
    }

    #[test]
    fn smi_plurals() {
        let r = smi_resource("split.smi-spec.io/v1alpha1", "TrafficSplit");
        assert_eq!(
            (r.plural.as_str(), r.version.as_str()),
            ("trafficsplits", "v1alpha1")
        );
        assert_eq!(
            smi_resource("specs.smi-spec.io/v1alpha4", "HTTPRouteGroup").plural,
            "httproutegroups"
        );
    }
}
