//! TrafficMetrics scenario (`make e2e`): a meshed client Deployment calls
//! `web` continuously; within the operator's scrape interval + window,
//! `kubectl get --raw /apis/metrics.smi-spec.io/v1alpha1/namespaces/NS/deployments/client/edges`
//! lists an edge to `web` with a non-zero success count, and the resource
//! itself (`.../deployments/web`) reports successes too.

use anyhow::Context;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::PostParams;
use kube::{Api, Client};
use meshlet_e2e::mesh::{self, Server};
use meshlet_e2e::{scenario, wait};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn raw(client: &Client, path: &str) -> anyhow::Result<Value> {
    let req = http::Request::get(path).body(Vec::new())?;
    let text = client
        .request_text(req)
        .await
        .with_context(|| format!("GET {path}"))?;
    serde_json::from_str(&text).with_context(|| format!("GET {path}: not JSON: {text}"))
}

/// success_count of one TrafficMetrics item.
fn successes(item: &Value) -> f64 {
    item["metrics"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["name"] == "success_count")
        .filter_map(|m| match &m["value"] {
            Value::String(s) => s.parse().ok(),
            v => v.as_f64(),
        })
        .sum()
}

#[tokio::test]
async fn traffic_metrics_show_edges_with_successes() {
    scenario::run("metrics", true, |client, ns| async move {
        mesh::service_account(&client, &ns, "web").await?;
        mesh::service_account(&client, &ns, "client").await?;
        mesh::allow_all_routes(&client, &ns, "client", "web").await?;
        mesh::deploy_server(
            &client,
            &ns,
            &Server {
                name: "web",
                app: "web",
                version: "v1",
                replicas: 1,
                service_account: "web",
            },
        )
        .await?;
        mesh::service(&client, &ns, "web", json!({"app": "web"})).await?;
        let url = format!("http://web.{ns}.svc.cluster.local/metrics-scenario");
        let deployment = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": { "name": "client" },
            "spec": {
                "replicas": 1,
                "selector": { "matchLabels": { "app": "client" } },
                "template": {
                    "metadata": { "labels": { "app": "client" } },
                    "spec": {
                        "serviceAccountName": "client",
                        "terminationGracePeriodSeconds": 1,
                        "containers": [{
                            "name": "client", "image": mesh::TESTSERVER_IMAGE, "imagePullPolicy": "IfNotPresent",
                            "args": ["get", "--wait-proxy", "60", "--wait-ready", "60",
                                     "--count", "1000000", "--interval-ms", "50", &url]
                        }]
                    }
                }
            }
        });
        Api::<Deployment>::namespaced(client.clone(), &ns)
            .create(&PostParams::default(), &mesh::from_json(deployment)?)
            .await
            .context("creating the client Deployment")?;
        mesh::wait_endpoints(&client, &ns, "web", 1).await?;

        let t0 = Instant::now();
        let edges_path =
            format!("/apis/metrics.smi-spec.io/v1alpha1/namespaces/{ns}/deployments/client/edges");
        let edge = wait::until(
            "an edge client → web with successes in TrafficMetrics",
            Duration::from_secs(150),
            Duration::from_secs(2),
            || async {
                let list = raw(&client, &edges_path).await?;
                Ok(list["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|i| i["edge"]["resource"]["name"] == "web" && successes(i) > 0.0)
                    .cloned())
            },
        )
        .await?;
        println!(
            "after {:.1?}: GET {edges_path} → edge {} {} with {} successes:\n{}",
            t0.elapsed(),
            edge["edge"]["direction"],
            edge["edge"]["resource"]["name"],
            successes(&edge),
            serde_json::to_string(&edge["metrics"])?
        );
        let web = raw(
            &client,
            &format!("/apis/metrics.smi-spec.io/v1alpha1/namespaces/{ns}/deployments/web"),
        )
        .await?;
        println!("deployments/web: {} successes", successes(&web));
        anyhow::ensure!(successes(&web) > 0.0, "deployments/web shows no successes: {web}");
        Ok(())
    })
    .await;
}
