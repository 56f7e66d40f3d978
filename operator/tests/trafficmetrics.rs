//! The SMI TrafficMetrics API through the real kube-apiserver: the
//! operator registers the APIServices (pointing at itself on loopback via
//! an ExternalName Service), scrapes fake pods — HTTP servers on
//! 127.0.0.N exposing the real proxy's metrics code — and answers
//! `GET /apis/metrics.smi-spec.io/...` proxied by the aggregator.

mod common;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, Client};
use meshlet_crds::contract::metrics as names;
use meshlet_operator::context::Settings;
use meshlet_operator::trafficmetrics::{ServiceRef, ServingSource, TrafficMetricsSettings};
use meshlet_proxy::metrics::{Metrics, PeerId, RequestLabels};
use serde_json::{json, Value};

/// A fake pod's proxy admin server: the real proxy `Metrics`, served at
/// `/metrics` on `ip:port`.
async fn fake_proxy(
    ip: &str,
    port: u16,
    metrics: Arc<Metrics>,
) -> Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind((ip, port))
        .await
        .with_context(|| format!("binding {ip}:{port}"))?;
    Ok(tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |_req| {
                    let body = metrics.encode();
                    async move {
                        Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from(body))))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    }))
}

fn proxy_metrics(ns: &str, deployment: &str, pod: &str) -> Arc<Metrics> {
    Arc::new(Metrics::new(&[
        (names::NAMESPACE, ns.into()),
        (names::DEPLOYMENT, deployment.into()),
        (names::POD, pod.into()),
    ]))
}

fn inbound() -> RequestLabels {
    RequestLabels {
        direction: names::DIRECTION_INBOUND,
        dst_namespace: String::new(),
        dst_service: String::new(),
        route: String::new(),
        tls: "true",
        peer_id: PeerId::None,
    }
}

fn outbound(ns: &str, service: &str) -> RequestLabels {
    RequestLabels {
        direction: names::DIRECTION_OUTBOUND,
        dst_namespace: ns.into(),
        dst_service: service.into(),
        route: String::new(),
        tls: "true",
        peer_id: PeerId::None,
    }
}

/// Records `n` responses with `status` and `latency_ms` on `m`.
fn traffic(m: &Metrics, labels: RequestLabels, n: usize, status: u16, latency_ms: u64) {
    for _ in 0..n {
        m.request(&labels);
        m.response(labels.clone(), status, Duration::from_millis(latency_ms));
    }
}

/// A pod of Deployment `deployment` (via a ReplicaSet), meshed, at `ip`.
async fn pod(client: &Client, ns: &str, deployment: &str, name: &str, ip: &str) -> Result<()> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {
            "name": name,
            "labels": {"app": deployment, "pod-template-hash": "5f7c9d", "meshlet.dev/meshed": "true"},
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("{deployment}-5f7c9d"),
                "uid": "00000000-0000-0000-0000-000000000001", "controller": true,
            }],
        },
        "spec": {"containers": [{"name": "app", "image": "app"}]},
    }))?;
    common::create(client, ns, &pod).await?;
    pods.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"podIP": ip, "podIPs": [{"ip": ip}]}})),
    )
    .await
    .context("patching the pod IP")?;
    Ok(())
}

/// Service `name` whose EndpointSlice lists `pods` (name, ip).
async fn service(client: &Client, ns: &str, name: &str, pods: &[(&str, &str)]) -> Result<()> {
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"ports": [{"port": 80}], "selector": {"app": name}},
    }))?;
    common::create(client, ns, &svc).await?;
    let endpoints: Vec<Value> = pods
        .iter()
        .enumerate()
        .map(|(i, (pod, _))| json!({"addresses": [format!("10.1.0.{}", i + 1)], "targetRef": {"kind": "Pod", "name": pod, "namespace": ns}}))
        .collect();
    let slice: EndpointSlice = serde_json::from_value(json!({
        "metadata": {"name": format!("{name}-1"), "labels": {"kubernetes.io/service-name": name}},
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"port": 80, "protocol": "TCP"}],
    }))?;
    common::create(client, ns, &slice).await?;
    Ok(())
}

async fn get(client: &Client, path: &str) -> Result<Value, kube::Error> {
    client
        .request::<Value>(http::Request::get(path).body(Vec::new()).expect("request"))
        .await
}

fn metric(item: &Value, name: &str) -> f64 {
    let text = item["metrics"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["name"] == name))
        .and_then(|m| m["value"].as_str())
        .unwrap_or_else(|| panic!("{name} missing in {item}"))
        .to_string();
    match text.strip_suffix('m') {
        Some(milli) => milli.parse::<f64>().unwrap() / 1000.0,
        None => text.parse().unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_metrics_through_the_aggregator() -> Result<()> {
    let env = common::env().await?;
    let client = env.client();
    let ns = env.create_namespace("tm").await?;

    // The fake pods' proxies: two `web` pods and one `client` pod.
    let port = meshlet_testenv::ports::free_port()?;
    let (web1, web2, cli) = (
        proxy_metrics(&ns, "web", "web-1"),
        proxy_metrics(&ns, "web", "web-2"),
        proxy_metrics(&ns, "client", "client-1"),
    );
    let _servers = [
        fake_proxy("127.0.0.2", port, web1.clone()).await?,
        fake_proxy("127.0.0.3", port, web2.clone()).await?,
        fake_proxy("127.0.0.4", port, cli.clone()).await?,
    ];
    pod(&client, &ns, "web", "web-1", "127.0.0.2").await?;
    pod(&client, &ns, "web", "web-2", "127.0.0.3").await?;
    pod(&client, &ns, "client", "client-1", "127.0.0.4").await?;
    service(
        &client,
        &ns,
        "web",
        &[("web-1", "127.0.0.2"), ("web-2", "127.0.0.3")],
    )
    .await?;
    // Traffic before the window's baseline: must not count.
    traffic(&web1, inbound(), 1000, 200, 1);

    // The operator on loopback; kube-apiserver reaches it through an
    // ExternalName Service naming 127.0.0.1.
    let api_port = meshlet_testenv::ports::free_port()?;
    let service_ref = ServiceRef {
        namespace: ns.clone(),
        name: "meshlet-metrics".into(),
        port: api_port.into(),
    };
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "meshlet-metrics"},
        "spec": {"type": "ExternalName", "externalName": "127.0.0.1"},
    }))?;
    common::create(&client, &ns, &svc).await?;
    let mut tm = TrafficMetricsSettings::new(
        ([127, 0, 0, 1], api_port).into(),
        ServingSource::SelfSigned(service_ref.dns_names()),
    );
    tm.scrape.interval = Duration::from_millis(200);
    tm.scrape.port = port;
    tm.window = Duration::from_secs(120);
    tm.register = Some(service_ref.clone());
    let op = common::operator(
        env,
        Settings {
            traffic_metrics: Some(tm),
            ..Settings::default()
        },
    )
    .await?;
    let handle = op.traffic_metrics.as_ref().context("metrics API started")?;

    // Discovery through the aggregator (the APIService becomes available).
    let discovery = common::eventually(
        "metrics.smi-spec.io discovery",
        Duration::from_secs(60),
        || async {
            Ok(get(&client, "/apis/metrics.smi-spec.io/v1alpha1")
                .await
                .ok())
        },
    )
    .await?;
    assert_eq!(discovery["kind"], "APIResourceList");
    let names: Vec<&str> = discovery["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    for expected in [
        "namespaces",
        "pods",
        "deployments",
        "deployments/edges",
        "daemonsets",
        "statefulsets",
        "trafficsplits",
    ] {
        assert!(names.contains(&expected), "{expected} not in {names:?}");
    }

    // Baseline: every fake pod scraped at least once.
    common::eventually("every pod scraped", Duration::from_secs(20), || async {
        Ok((handle.windows.size().0 == 3).then_some(()))
    })
    .await
    .with_context(|| {
        format!(
            "scrape stats {:?}, window {:?}",
            handle.stats,
            handle.windows.size()
        )
    })?;
    // Traffic inside the window: web gets 60 + 30 successes and 10
    // failures; latencies 3 ms (most) and 40 ms (some).
    traffic(&web1, inbound(), 50, 200, 3);
    traffic(&web1, inbound(), 10, 503, 40);
    traffic(&web2, inbound(), 30, 200, 3);
    traffic(&web2, inbound(), 10, 201, 40);
    traffic(&cli, outbound(&ns, "web"), 100, 200, 4);
    traffic(&cli, outbound(&ns, "web"), 7, 502, 4);

    let path = format!("/apis/metrics.smi-spec.io/v1alpha1/namespaces/{ns}/deployments/web");
    let web = common::eventually("web's metrics", Duration::from_secs(20), || async {
        let item = get(&client, &path).await?;
        Ok((metric(&item, "success_count") == 90.0).then_some(item))
    })
    .await?;
    assert_eq!(web["kind"], "TrafficMetrics");
    assert_eq!(web["apiVersion"], "metrics.smi-spec.io/v1alpha1");
    assert_eq!(web["resource"]["kind"], "Deployment");
    assert_eq!(web["resource"]["name"], "web");
    assert_eq!(web["window"], "2m0s");
    assert_eq!(metric(&web, "failure_count"), 10.0);
    let (p50, p90, p99) = (
        metric(&web, "p50_response_latency"),
        metric(&web, "p90_response_latency"),
        metric(&web, "p99_response_latency"),
    );
    // 80 of 100 at 3 ms (bucket 2..3], 20 at 40 ms (bucket 30..40].
    assert!((2.0..=3.0).contains(&p50), "p50 {p50}");
    assert!((30.0..=40.0).contains(&p90), "p90 {p90}");
    assert!((30.0..=40.0).contains(&p99) && p99 >= p90, "p99 {p99}");

    // One pod; the namespace (inbound of every pod; the client served nothing).
    let pod1 = get(
        &client,
        &format!("/apis/metrics.smi-spec.io/v1alpha1/namespaces/{ns}/pods/web-1"),
    )
    .await?;
    assert_eq!(
        (
            metric(&pod1, "success_count"),
            metric(&pod1, "failure_count")
        ),
        (50.0, 10.0)
    );
    let nsm = get(
        &client,
        &format!("/apis/metrics.smi-spec.io/v1alpha1/namespaces/{ns}"),
    )
    .await?;
    assert_eq!(nsm["resource"]["kind"], "Namespace");
    assert_eq!(metric(&nsm, "success_count"), 90.0);

    // List.
    let list = get(
        &client,
        &format!("/apis/metrics.smi-spec.io/v1alpha1/namespaces/{ns}/deployments"),
    )
    .await?;
    assert_eq!(list["kind"], "TrafficMetricsList");
    let items: BTreeMap<String, f64> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["resource"]["name"].as_str().unwrap().to_string(),
                metric(i, "success_count"),
            )
        })
        .collect();
    assert_eq!(
        items,
        BTreeMap::from([("client".to_string(), 0.0), ("web".to_string(), 90.0)])
    );

    // Edges, v1alpha2: web is called from client; client calls web.
    let edges = get(
        &client,
        &format!("/apis/metrics.smi-spec.io/v1alpha2/namespaces/{ns}/deployments/web/edges"),
    )
    .await?;
    let items = edges["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{edges}");
    assert_eq!(items[0]["edge"]["direction"], "from");
    assert_eq!(items[0]["edge"]["side"], "client");
    assert_eq!(items[0]["edge"]["resource"]["kind"], "Deployment");
    assert_eq!(items[0]["edge"]["resource"]["name"], "client");
    assert_eq!(
        (
            metric(&items[0], "success_count"),
            metric(&items[0], "failure_count")
        ),
        (100.0, 7.0)
    );
    let edges = get(
        &client,
        &format!("/apis/metrics.smi-spec.io/v1alpha1/namespaces/{ns}/deployments/client/edges"),
    )
    .await?;
    let items = edges["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{edges}");
    assert_eq!(items[0]["edge"]["direction"], "to");
    assert_eq!(items[0]["edge"]["resource"]["name"], "web");
    assert!(
        items[0]["edge"].get("side").is_none(),
        "v1alpha1 has no side: {edges}"
    );
    let p50 = metric(&items[0], "p50_response_latency");
    assert!((3.0..=4.0).contains(&p50), "client→web p50 {p50}");

    // Errors name what is wrong.
    let err = get(
        &client,
        &format!("/apis/metrics.smi-spec.io/v1alpha1/namespaces/{ns}/services/web"),
    )
    .await
    .unwrap_err();
    match err {
        kube::Error::Api(e) => {
            assert_eq!(e.code, 404, "{e:?}");
            assert!(
                e.message.contains("\"services\" is not a resource"),
                "{}",
                e.message
            );
        }
        other => panic!("expected a 404, got {other:?}"),
    }
    let err = get(
        &client,
        &format!("/apis/metrics.smi-spec.io/v1alpha1/namespaces/{ns}/deployments/nope"),
    )
    .await
    .unwrap_err();
    match err {
        kube::Error::Api(e) => {
            assert_eq!(e.code, 404, "{e:?}");
            assert!(
                e.message.contains("\"nope\" not found") && e.message.contains("no meshed pod"),
                "{}",
                e.message
            );
        }
        other => panic!("expected a 404, got {other:?}"),
    }

    // A pod that disappears drops out of the window.
    Api::<Pod>::namespaced(client.clone(), &ns)
        .delete("web-2", &DeleteParams::default().grace_period(0))
        .await?;
    common::eventually("web-2 dropped", Duration::from_secs(20), || async {
        Ok((handle.windows.size().0 == 2).then_some(()))
    })
    .await?;

    // Straight to the operator, without the front proxy's certificate: refused.
    let direct = direct_call(handle.addr, &handle.ca_pem, &service_ref).await;
    assert!(
        direct.is_err(),
        "a caller without the front-proxy certificate got {direct:?}"
    );

    for version in ["v1alpha1", "v1alpha2"] {
        let _ = Api::<APIService>::all(client.clone())
            .delete(
                &format!("{version}.metrics.smi-spec.io"),
                &DeleteParams::default(),
            )
            .await;
    }
    Ok(())
}

/// A request to the metrics API that trusts its CA but brings no client certificate.
async fn direct_call(
    addr: std::net::SocketAddr,
    ca_pem: &str,
    service: &ServiceRef,
) -> Result<u16> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert?)?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from(service.dns_names()[0].clone())?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
    tokio::spawn(conn);
    let rsp = sender
        .send_request(
            http::Request::get("/apis/metrics.smi-spec.io/v1alpha1")
                .body(http_body_util::Empty::<Bytes>::new())?,
        )
        .await?;
    Ok(rsp.status().as_u16())
}
