//! The SMI TrafficMetrics API through the real kube-apiserver: the
//! operator registers the APIServices (pointing at itself on loopback via
//! an ExternalName Service), scrapes fake pods — HTTP servers on
//! 127.0.0.N exposing the real proxy's metrics code — and answers
//! `GET /apis/metrics.smi-spec.io/...` proxied by the aggregator.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use common::fake_pods::{fake_proxy, inbound, outbound, pod, proxy_metrics, service, traffic};
use common::metrics_api::{self, get};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::Pod;
use kube::api::DeleteParams;
use kube::Api;
use meshlet_operator::trafficmetrics::ServiceRef;
use serde_json::Value;

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
    let scraping = metrics_api::Scraping {
        port,
        interval: Duration::from_millis(200),
        window: Duration::from_secs(120),
    };
    let (op, service_ref) = metrics_api::start(env, &ns, scraping).await?;
    let handle = op.traffic_metrics.as_ref().context("metrics API started")?;

    // Discovery through the aggregator (the APIService becomes available).
    let discovery = metrics_api::discovery(&client, "v1alpha1", Duration::from_secs(60)).await?;
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

    metrics_api::unregister(&client).await?;
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
