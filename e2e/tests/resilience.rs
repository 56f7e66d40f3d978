//! Resilience scenario (`make e2e` runs it after the others, alone: it
//! takes the webhook down). One test, two steps in order:
//! 1. the operator pod is deleted while a meshed client sends a request
//!    every 5 ms through its proxy: not one request may fail (proxies keep
//!    their config and reconnect to the new operator);
//! 2. the webhook is scaled to zero: with failurePolicy Ignore a pod in an
//!    injected namespace still starts (unmeshed); the webhook comes back and
//!    injects again.

use anyhow::{ensure, Context};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use meshlet_crds::contract::install;
use meshlet_e2e::mesh::{self, ClientPod, Server};
use meshlet_e2e::{scenario, wait};
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test]
async fn operator_restart_under_traffic_and_webhook_outage() {
    scenario::run("resilience", true, |client, ns| async move {
        operator_restart(&client, &ns).await?;
        webhook_outage(&client, &ns).await
    })
    .await;
}

async fn operator_restart(client: &Client, ns: &str) -> anyhow::Result<()> {
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
            replicas: 2,
            service_account: "web",
        },
    )
    .await?;
    mesh::service(client, ns, "web", json!({"app": "web"})).await?;
    mesh::wait_endpoints(client, ns, "web", 2).await?;
    let url = format!("http://web.{ns}.svc.cluster.local/steady");
    let mut pod = ClientPod::new(
        "steady",
        &[
            "get",
            "--wait-proxy",
            "60",
            "--wait-ready",
            "60",
            "--count",
            "3000",
            "--interval-ms",
            "5",
            &url,
        ],
    );
    pod.service_account = "client";
    mesh::start_client(client, ns, &pod).await?;
    wait::until(
        "the client to start counting",
        Duration::from_secs(120),
        Duration::from_millis(200),
        || async {
            let logs = mesh::container_logs(client, ns, "steady", mesh::CLIENT_CONTAINER)
                .await
                .unwrap_or_default();
            Ok(logs.contains("START ").then_some(()))
        },
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let system: Api<Pod> = Api::namespaced(client.clone(), install::NAMESPACE);
    let selector = "meshlet.dev/component=operator";
    let before: Vec<String> = system
        .list(&ListParams::default().labels(selector))
        .await?
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    let t0 = Instant::now();
    let deleted_at = unix_ms();
    for name in &before {
        system.delete(name, &DeleteParams::default()).await?;
    }
    println!("deleted operator pod(s) {before:?} while traffic flows");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), install::NAMESPACE);
    wait::until(
        "a new operator pod Ready",
        Duration::from_secs(120),
        Duration::from_millis(500),
        || async {
            let st = deployments
                .get("meshlet-operator")
                .await?
                .status
                .unwrap_or_default();
            let pods = system.list(&ListParams::default().labels(selector)).await?;
            let fresh = pods
                .iter()
                .any(|p| !before.contains(p.metadata.name.as_ref().unwrap_or(&String::new())));
            Ok((fresh && st.ready_replicas.unwrap_or(0) >= 1).then_some(()))
        },
    )
    .await?;
    println!("new operator Ready {:.1?} after the deletion", t0.elapsed());

    let (phase, logs) = mesh::finish(client, ns, "steady", Duration::from_secs(240)).await?;
    let statuses = mesh::tally(&logs, "status");
    println!("client through the operator restart: {phase}, statuses {statuses:?}");
    ensure!(
        phase == "Succeeded" && !logs.contains("error ("),
        "requests failed while the operator restarted:\n{logs}"
    );
    let end: u128 = logs
        .lines()
        .find_map(|l| {
            l.strip_prefix("END ")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .context("no END line")?;
    ensure!(
        end >= deleted_at + 2000,
        "the client stopped {} ms after the operator was deleted: too early to tell",
        end.saturating_sub(deleted_at)
    );
    println!(
        "no request failed; traffic continued {} ms past the deletion",
        end - deleted_at
    );
    Ok(())
}

fn unix_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

async fn scale_webhook(client: &Client, replicas: i32) -> anyhow::Result<()> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), install::NAMESPACE);
    deployments
        .patch(
            "meshlet-webhook",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": replicas}})),
        )
        .await
        .context("scaling meshlet-webhook")?;
    let system: Api<Pod> = Api::namespaced(client.clone(), install::NAMESPACE);
    wait::until(
        &format!("meshlet-webhook at {replicas} ready pod(s)"),
        Duration::from_secs(120),
        Duration::from_millis(500),
        || async {
            let pods = system
                .list(&ListParams::default().labels("meshlet.dev/component=webhook"))
                .await?;
            let ready = deployments
                .get("meshlet-webhook")
                .await?
                .status
                .unwrap_or_default()
                .ready_replicas
                .unwrap_or(0);
            Ok((pods.items.len() as i32 == replicas && ready == replicas).then_some(()))
        },
    )
    .await
}

async fn webhook_outage(client: &Client, ns: &str) -> anyhow::Result<()> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    scale_webhook(client, 0).await?;
    let result = async {
        let pod = mesh::start_client(client, ns, &ClientPod::new("during-outage", &["--version"]))
            .await?;
        let (init, containers) = mesh::container_names(&pod);
        ensure!(
            init.is_empty() && containers == ["client"],
            "a pod was injected while the webhook was down? {init:?} {containers:?}"
        );
        let (phase, logs) =
            mesh::finish(client, ns, "during-outage", Duration::from_secs(120)).await?;
        ensure!(
            phase == "Succeeded",
            "pod created during the outage {phase}: {logs}"
        );
        println!("webhook down, failurePolicy Ignore: the pod started (unmeshed) and Succeeded");
        Ok(())
    }
    .await;
    scale_webhook(client, 1).await?;
    result?;
    // Back: the new webhook pod writes its (new) CA and injects again.
    let t0 = Instant::now();
    wait::until(
        "injection to work again",
        Duration::from_secs(120),
        Duration::from_secs(1),
        || async {
            let probe: Pod = mesh::from_json(json!({
                "metadata": {"name": "probe"},
                "spec": {"containers": [{"name": "c", "image": mesh::TESTSERVER_IMAGE}]}
            }))?;
            let created = pods
                .create(
                    &PostParams {
                        dry_run: true,
                        ..Default::default()
                    },
                    &probe,
                )
                .await?;
            let (init, _) = mesh::container_names(&created);
            Ok(init.iter().any(|c| c == "meshlet-proxy").then_some(()))
        },
    )
    .await?;
    println!(
        "webhook back: injecting again {:.1?} after it was Ready",
        t0.elapsed()
    );
    Ok(())
}
