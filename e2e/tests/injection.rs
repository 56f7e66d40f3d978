//! Injection scenario (`make e2e`): in a namespace labelled
//! `meshlet.dev/inject=enabled` a Deployment's pod gets the redirect step
//! and the proxy as a native sidecar and becomes Ready (so the proxy got
//! its config from the operator); a pod annotated `meshlet.dev/inject:
//! disabled` and a hostNetwork pod are left alone; a Job whose meshed pod
//! calls the server completes (the native sidecar does not keep it alive).

use anyhow::{ensure, Context};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};
use meshlet_crds::contract::annotations;
use meshlet_e2e::mesh::{self, ClientPod, Server};
use meshlet_e2e::{scenario, wait};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn labelled_namespace_gets_proxies_opt_outs_and_host_network_do_not() {
    scenario::run("injection", true, |client, ns| async move {
        body(&client, &ns).await
    })
    .await;
}

async fn body(client: &Client, ns: &str) -> anyhow::Result<()> {
    mesh::service_account(client, ns, "web").await?;
    mesh::service_account(client, ns, "client").await?;
    mesh::allow_all_routes(client, ns, "client", "web").await?;
    mesh::deploy_server(
        client,
        ns,
        &Server {
            name: "web",
            app: "web",
            version: "v1",
            replicas: 1,
            service_account: "web",
        },
    )
    .await?;
    mesh::service(client, ns, "web", json!({"app": "web"})).await?;
    // Ready endpoint = app ready and proxy ready (it has the operator's config).
    mesh::wait_endpoints(client, ns, "web", 1).await?;

    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let server = pods
        .list(&ListParams::default().labels("app=web"))
        .await?
        .items
        .into_iter()
        .next()
        .context("no web pod")?;
    let (init, containers) = mesh::container_names(&server);
    println!("meshed pod: init containers {init:?}, containers {containers:?}");
    ensure!(
        init.first().map(String::as_str) == Some("meshlet-init")
            && init.get(1).map(String::as_str) == Some("meshlet-proxy"),
        "expected init containers [meshlet-init, meshlet-proxy, ...], got {init:?}"
    );
    ensure!(
        containers == ["server"],
        "the app's containers changed: {containers:?}"
    );
    let spec = server.spec.as_ref().context("pod spec")?;
    let proxy = &spec.init_containers.as_ref().context("init containers")?[1];
    ensure!(
        proxy.restart_policy.as_deref() == Some("Always"),
        "meshlet-proxy is not a native sidecar (restartPolicy {:?})",
        proxy.restart_policy
    );
    let meta = &server.metadata;
    ensure!(
        meta.annotations
            .as_ref()
            .and_then(|a| a.get(annotations::INJECTED))
            .map(String::as_str)
            == Some(annotations::INJECTED_TRUE),
        "no {} annotation",
        annotations::INJECTED
    );
    ensure!(
        meta.labels
            .as_ref()
            .and_then(|l| l.get(annotations::MESHED_LABEL))
            .map(String::as_str)
            == Some(annotations::MESHED_TRUE),
        "no {} label",
        annotations::MESHED_LABEL
    );

    // Opted out by annotation, and a hostNetwork pod: never injected.
    let mut opted_out = ClientPod::new("opted-out", &["--version"]);
    opted_out.annotations = json!({ annotations::INJECT: annotations::INJECT_DISABLED });
    let pod = mesh::start_client(client, ns, &opted_out).await?;
    let (init, containers) = mesh::container_names(&pod);
    ensure!(
        init.is_empty() && containers == ["client"],
        "opted-out pod was injected: {init:?} {containers:?}"
    );
    let host = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": "host-network" },
        "spec": {
            "hostNetwork": true, "restartPolicy": "Never",
            "containers": [{ "name": "client", "image": mesh::TESTSERVER_IMAGE,
                             "imagePullPolicy": "IfNotPresent", "args": ["--version"] }]
        }
    });
    let pod = pods
        .create(&PostParams::default(), &mesh::from_json(host)?)
        .await
        .context("creating the hostNetwork pod")?;
    let (init, containers) = mesh::container_names(&pod);
    ensure!(
        init.is_empty() && containers == ["client"],
        "hostNetwork pod was injected: {init:?} {containers:?}"
    );
    for name in ["opted-out", "host-network"] {
        let (phase, logs) = mesh::finish(client, ns, name, Duration::from_secs(120)).await?;
        ensure!(phase == "Succeeded", "pod {name} ended {phase}: {logs}");
    }
    println!("opted-out and hostNetwork pods: not injected, Succeeded");

    // A Job's meshed pod calls the server and completes.
    let job = json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": { "name": "call-web" },
        "spec": {
            "backoffLimit": 0,
            "template": { "spec": {
                "restartPolicy": "Never",
                "serviceAccountName": "client",
                "containers": [{
                    "name": "client", "image": mesh::TESTSERVER_IMAGE, "imagePullPolicy": "IfNotPresent",
                    "args": ["get", "--wait-proxy", "60", "--wait-ready", "60", "--count", "5",
                             &format!("http://web.{ns}.svc.cluster.local/job")]
                }]
            }}
        }
    });
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
    jobs.create(&PostParams::default(), &mesh::from_json(job)?)
        .await
        .context("creating the Job")?;
    let t0 = std::time::Instant::now();
    let outcome = wait::until(
        "Job call-web to finish",
        Duration::from_secs(180),
        Duration::from_secs(1),
        || async {
            let st = jobs.get("call-web").await?.status.unwrap_or_default();
            Ok(if st.succeeded.unwrap_or(0) > 0 {
                Some("Succeeded")
            } else if st.failed.unwrap_or(0) > 0 {
                Some("Failed")
            } else {
                None
            })
        },
    )
    .await?;
    let job_pod = pods
        .list(&ListParams::default().labels("job-name=call-web"))
        .await?
        .items
        .into_iter()
        .next()
        .context("no pod of Job call-web")?;
    let pod_name = job_pod.metadata.name.clone().unwrap_or_default();
    let logs = mesh::container_logs(client, ns, &pod_name, "client").await?;
    println!(
        "Job call-web: {outcome} after {:.1?}; client output:\n{logs}",
        t0.elapsed()
    );
    ensure!(outcome == "Succeeded", "Job call-web {outcome}:\n{logs}");
    let (init, _) = mesh::container_names(&job_pod);
    ensure!(
        init.iter().any(|c| c == "meshlet-proxy"),
        "the Job's pod was not injected: {init:?}"
    );
    Ok(())
}
