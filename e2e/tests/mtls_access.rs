//! Meshed traffic is mTLS, and SMI access control (`make e2e`):
//! - mtls: a meshed client calls `web`; the server's proxy counts the
//!   requests as TLS with the client's SPIFFE identity (read from the
//!   proxy's `/metrics` through the API server's pod proxy);
//! - access: default deny → 403 (the probes still work: the pods get
//!   Ready); a TrafficTarget with an HTTPRouteGroup narrowed to GET /api/.*
//!   → GET /api/x 200, POST /api/x and GET /other 403; a TrafficTarget with
//!   a TCPRoute for the server's port → any request of that client passes,
//!   one for another port does not.

use anyhow::{ensure, Context};
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, Client};
use meshlet_e2e::mesh::{self, ClientPod, Server};
use meshlet_e2e::scenario;
use serde_json::json;
use std::time::Duration;

async fn web(client: &Client, ns: &str, clients: &[&str]) -> anyhow::Result<()> {
    mesh::service_account(client, ns, "web").await?;
    for sa in clients {
        mesh::service_account(client, ns, sa).await?;
    }
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
    // Ready endpoints: the kubelet's probes pass through the proxy even
    // where no TrafficTarget allows anyone.
    mesh::wait_endpoints(client, ns, "web", 1).await
}

/// Run a meshed client as `sa`; return its per-status counts and output
/// (whatever the outcome: denials are what some cases expect).
async fn call(
    client: &Client,
    ns: &str,
    name: &str,
    sa: &str,
    extra: &[&str],
    path: &str,
) -> anyhow::Result<(std::collections::BTreeMap<String, usize>, String)> {
    let url = format!("http://web.{ns}.svc.cluster.local{path}");
    let mut args = vec![
        "get",
        "--wait-proxy",
        "60",
        "--count",
        "10",
        "--timeout",
        "5",
    ];
    args.extend(extra);
    args.push(&url);
    let mut pod = ClientPod::new(name, &args);
    pod.service_account = sa;
    mesh::start_client(client, ns, &pod).await?;
    let (_, logs) = mesh::finish(client, ns, name, Duration::from_secs(180)).await?;
    Ok((mesh::tally(&logs, "status"), logs))
}

/// The Prometheus text of a pod's proxy (admin port), via the API server.
async fn proxy_metrics(client: &Client, ns: &str, pod: &str) -> anyhow::Result<String> {
    let req = http::Request::get(format!(
        "/api/v1/namespaces/{ns}/pods/{pod}:4191/proxy/metrics"
    ))
    .body(Vec::new())?;
    client
        .request_text(req)
        .await
        .with_context(|| format!("reading /metrics of {pod}'s proxy"))
}

/// The sum of every sample of `metric` whose labels contain all of `labels`.
fn sum(text: &str, metric: &str, labels: &[String]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{metric}{{")))
        .filter(|l| labels.iter().all(|want| l.contains(want.as_str())))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn meshed_traffic_is_mutual_tls_with_workload_identities() {
    scenario::run("mtls", true, |client, ns| async move {
        web(&client, &ns, &["client"]).await?;
        mesh::allow_all_routes(&client, &ns, "client", "web").await?;
        let (statuses, logs) = call(&client, &ns, "caller", "client", &["--wait-ready", "60"], "/hello").await?;
        ensure!(statuses.get("200") == Some(&10), "expected 10 × 200:\n{logs}");
        let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
        let server = pods
            .list(&ListParams::default().labels("app=web"))
            .await?
            .items
            .into_iter()
            .next()
            .and_then(|p| p.metadata.name)
            .context("no web pod")?;
        let td = meshlet_crds::contract::identity::DEFAULT_TRUST_DOMAIN;
        let client_id = format!("client_id=\"spiffe://{td}/ns/{ns}/sa/client\"");
        let inbound = proxy_metrics(&client, &ns, &server).await?;
        let n = sum(
            &inbound,
            "request_total",
            &["direction=\"inbound\"".into(), "tls=\"true\"".into(), client_id.clone()],
        );
        println!("server proxy: {n} inbound requests over TLS from {client_id}");
        ensure!(
            n >= 10.0,
            "the server's proxy did not count the client's requests as TLS with its identity ({client_id}):\n{}",
            inbound.lines().filter(|l| l.starts_with("request_total")).collect::<Vec<_>>().join("\n")
        );
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn default_deny_then_traffic_targets_by_route_and_port() {
    scenario::run("access", true, |client, ns| async move {
        web(&client, &ns, &["client", "tcp-client", "other-port"]).await?;

        let (s, logs) = call(&client, &ns, "denied", "client", &["--expect-status", "403"], "/api/x").await?;
        println!("no TrafficTarget: {s:?}");
        ensure!(s.get("403") == Some(&10), "default deny should answer 403:\n{logs}");

        mesh::apply_smi(&client, &ns, json!({
            "apiVersion": "specs.smi-spec.io/v1alpha4", "kind": "HTTPRouteGroup",
            "metadata": { "name": "api" },
            "spec": { "matches": [{ "name": "read-api", "pathRegex": "/api/.*", "methods": ["GET"] }] }
        })).await?;
        mesh::apply_smi(&client, &ns, json!({
            "apiVersion": "access.smi-spec.io/v1alpha3", "kind": "TrafficTarget",
            "metadata": { "name": "client-reads-api" },
            "spec": {
                "destination": { "kind": "ServiceAccount", "name": "web", "namespace": ns },
                "sources": [{ "kind": "ServiceAccount", "name": "client", "namespace": ns }],
                "rules": [{ "kind": "HTTPRouteGroup", "name": "api", "matches": ["read-api"] }]
            }
        })).await?;
        mesh::apply_smi(&client, &ns, json!({
            "apiVersion": "specs.smi-spec.io/v1alpha4", "kind": "TCPRoute",
            "metadata": { "name": "web-port" }, "spec": { "matches": { "ports": [8080] } }
        })).await?;
        mesh::apply_smi(&client, &ns, json!({
            "apiVersion": "specs.smi-spec.io/v1alpha4", "kind": "TCPRoute",
            "metadata": { "name": "another-port" }, "spec": { "matches": { "ports": [9090] } }
        })).await?;
        for (target, sa, route) in [("tcp-client-by-port", "tcp-client", "web-port"), ("other-port-only", "other-port", "another-port")] {
            mesh::apply_smi(&client, &ns, json!({
                "apiVersion": "access.smi-spec.io/v1alpha3", "kind": "TrafficTarget",
                "metadata": { "name": target },
                "spec": {
                    "destination": { "kind": "ServiceAccount", "name": "web", "namespace": ns },
                    "sources": [{ "kind": "ServiceAccount", "name": sa, "namespace": ns }],
                    "rules": [{ "kind": "TCPRoute", "name": route }]
                }
            })).await?;
        }
        // New clients start after the policy exists; --wait-ready waits out
        // the push to the server's proxy.
        let cases: [(&str, &str, &[&str], &str, &str); 5] = [
            ("get-api", "client", &["--wait-ready", "30"], "/api/x", "200"),
            ("post-api", "client", &["--method", "POST", "--expect-status", "403"], "/api/x", "403"),
            ("get-other", "client", &["--expect-status", "403"], "/other", "403"),
            ("tcp-post", "tcp-client", &["--method", "POST", "--wait-ready", "30"], "/anything", "200"),
            ("wrong-port", "other-port", &["--expect-status", "403"], "/api/x", "denied"),
        ];
        for (name, sa, extra, path, want) in cases {
            let (s, logs) = call(&client, &ns, name, sa, extra, path).await?;
            println!("{name} ({sa} {path} {extra:?}): {s:?}");
            match want {
                "denied" => ensure!(
                    !s.contains_key("200"),
                    "{name}: a TCPRoute for another port let requests through:\n{logs}"
                ),
                code => ensure!(s.get(code) == Some(&10), "{name}: expected 10 × {code}:\n{logs}"),
            }
        }
        Ok(())
    })
    .await;
}
