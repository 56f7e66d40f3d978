//! Smoke test on the kind cluster (`make kind-up && make e2e-smoke`): a
//! Deployment of the project's own test server (loaded with `kind load`, never
//! pulled), a Service in front of it, and HTTP 200 from another pod through
//! the Service's ClusterIP, its full DNS name and its short name. A client
//! asking for a Service that does not exist must fail, so the check can fail.

use anyhow::{bail, Context};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{ListParams, LogParams, PostParams};
use kube::{Api, Client};
use meshlet_e2e::{cluster, diagnose, namespace::TestNamespace, wait};
use serde_json::json;
use std::time::{Duration, Instant};

const IMAGE: &str = "meshlet/testserver:dev";
const APP: &str = "web";

#[tokio::test]
async fn service_answers_by_cluster_ip_and_dns_name() {
    let client = cluster::client().await.expect("cluster");
    let ns = TestNamespace::create(&client, "smoke")
        .await
        .expect("namespace");
    println!("namespace {}", ns.name);
    let result = scenario(&client, &ns.name).await;
    if result.is_err() {
        diagnose::dump_namespace(&client, &ns.name).await;
    }
    ns.delete().await.expect("deleting the namespace");
    if let Err(e) = result {
        panic!("smoke test failed: {e:#}");
    }
}

async fn scenario(client: &Client, ns: &str) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    deployments
        .create(&PostParams::default(), &from_json(deployment())?)
        .await
        .context("creating the Deployment")?;
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    let svc = services
        .create(&PostParams::default(), &from_json(service())?)
        .await
        .context("creating the Service")?;
    let cluster_ip = svc
        .spec
        .and_then(|s| s.cluster_ip)
        .context("the Service got no ClusterIP")?;
    println!("service {APP} has ClusterIP {cluster_ip}");

    let ready = wait_for_ready_endpoints(client, ns, 2).await?;
    println!("{ready} ready endpoints after {:?}", t0.elapsed());

    let urls = [
        format!("http://{cluster_ip}:80/by-ip"),
        format!("http://{APP}.{ns}.svc.cluster.local/by-fqdn"),
        format!("http://{APP}/by-short-name"),
    ];
    // --wait-ready: the Service is seconds old; until kube-proxy has its
    // rules, the node fails connections to it at once (by design, see
    // e2e/kind/README.md), so wait for a first answer before counting.
    let mut args = vec![
        "get",
        "--count",
        "10",
        "--timeout",
        "5",
        "--wait-ready",
        "30",
    ];
    args.extend(urls.iter().map(String::as_str));
    let (phase, logs) = run_client_pod(client, ns, "client", &args).await?;
    println!("client pod {phase}; its output:\n{logs}");
    if phase != "Succeeded" {
        bail!("client pod ended {phase}; output:\n{logs}");
    }
    for url in &urls {
        let ok = format!("OK {url}: all 10 answered 200");
        anyhow::ensure!(logs.contains(&ok), "client output lacks {ok:?}:\n{logs}");
    }
    anyhow::ensure!(
        logs.matches("status: 200=10").count() == urls.len(),
        "expected 10 responses with status 200 per URL:\n{logs}"
    );
    // 30 fresh connections over two endpoints: both replicas must answer
    // (all on one would happen with probability 2^-29 if both are in use).
    let answered = answering_pods(&logs);
    anyhow::ensure!(
        answered.len() == 2,
        "expected both replicas to answer, got {answered:?}:\n{logs}"
    );

    // The same client against a name that does not exist must fail (fast:
    // cluster DNS answers NXDOMAIN itself and forwards nothing).
    let missing = format!("http://nothing-here.{ns}.svc.cluster.local/");
    let (phase, logs) = run_client_pod(
        client,
        ns,
        "client-missing",
        &["get", "--timeout", "3", &missing],
    )
    .await?;
    println!("client-missing pod {phase}; its output:\n{logs}");
    anyhow::ensure!(
        phase == "Failed" && logs.contains(&format!("FAIL {missing}")),
        "a request to a missing Service should fail, got phase {phase}:\n{logs}"
    );
    println!("smoke scenario passed in {:?}", t0.elapsed());
    Ok(())
}

/// Pod names from the client's `pod: name=count ...` summary lines.
fn answering_pods(logs: &str) -> std::collections::BTreeSet<String> {
    logs.lines()
        .filter_map(|l| l.strip_prefix("pod: "))
        .flat_map(|l| l.split_whitespace())
        .filter_map(|kv| kv.split_once('=').map(|(k, _)| k.to_string()))
        .collect()
}

fn deployment() -> serde_json::Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": APP },
        "spec": {
            "replicas": 2,
            "selector": { "matchLabels": { "app": APP } },
            "template": {
                "metadata": { "labels": { "app": APP } },
                "spec": {
                    "terminationGracePeriodSeconds": 2,
                    "containers": [{
                        "name": "server",
                        "image": IMAGE,
                        "imagePullPolicy": "Never",
                        "args": ["serve", "--port", "8080"],
                        "env": [
                            { "name": "VERSION", "value": "v1" },
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
    })
}

fn service() -> serde_json::Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": { "name": APP },
        "spec": {
            "selector": { "app": APP },
            "ports": [{ "name": "http", "port": 80, "targetPort": "http" }]
        }
    })
}

fn from_json<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> anyhow::Result<T> {
    serde_json::from_value(value).context("manifest does not match the Kubernetes type")
}

/// Wait until the Service's EndpointSlices list `want` ready endpoints.
async fn wait_for_ready_endpoints(client: &Client, ns: &str, want: usize) -> anyhow::Result<usize> {
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), ns);
    let selector = format!("kubernetes.io/service-name={APP}");
    wait::until(
        &format!("{want} ready endpoints of Service {APP}"),
        Duration::from_secs(120),
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
            Ok((ready >= want).then_some(ready))
        },
    )
    .await
}

/// Run the test server image as a one-shot client pod with `args`; return
/// its final phase and its output.
async fn run_client_pod(
    client: &Client,
    ns: &str,
    name: &str,
    args: &[&str],
) -> anyhow::Result<(String, String)> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "name": name },
        "spec": {
            "restartPolicy": "Never",
            "containers": [{
                "name": "client",
                "image": IMAGE,
                "imagePullPolicy": "Never",
                "args": args
            }]
        }
    });
    pods.create(&PostParams::default(), &from_json(pod)?)
        .await
        .with_context(|| format!("creating pod {name}"))?;
    let phase = wait::until(
        &format!("pod {name} to finish"),
        Duration::from_secs(120),
        Duration::from_secs(1),
        || async {
            let phase = pods.get(name).await?.status.and_then(|s| s.phase);
            Ok(phase.filter(|p| p == "Succeeded" || p == "Failed"))
        },
    )
    .await?;
    let logs = pods
        .logs(name, &LogParams::default())
        .await
        .with_context(|| format!("reading the logs of pod {name}"))?;
    Ok((phase, logs))
}
