//! The operator serving the TrafficMetrics API through the real aggregator:
//! it listens on loopback and registers the APIServices, which point at an
//! ExternalName Service naming 127.0.0.1, so kube-apiserver proxies
//! `/apis/metrics.smi-spec.io/...` to it.

use std::time::Duration;

use anyhow::Result;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use kube::api::DeleteParams;
use kube::{Api, Client};
use meshlet_operator::context::{Running, Settings};
use meshlet_operator::trafficmetrics::apiservice::VERSIONS;
use meshlet_operator::trafficmetrics::{ServiceRef, ServingSource, TrafficMetricsSettings};
use meshlet_testenv::TestEnv;
use serde_json::{json, Value};

/// How the metrics API scrapes and what window it reports.
pub struct Scraping {
    /// The fake pods' admin port.
    pub port: u16,
    /// Time between scrapes.
    pub interval: Duration,
    /// The window the metrics cover.
    pub window: Duration,
}

/// An operator serving the TrafficMetrics API, registered through the
/// aggregator via an ExternalName Service in `ns`; (operator, that Service).
pub async fn start(env: &TestEnv, ns: &str, scraping: Scraping) -> Result<(Running, ServiceRef)> {
    let client = env.client();
    let api_port = meshlet_testenv::ports::free_port()?;
    let service_ref = ServiceRef {
        namespace: ns.to_string(),
        name: "meshlet-metrics".into(),
        port: api_port.into(),
    };
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": service_ref.name},
        "spec": {"type": "ExternalName", "externalName": "127.0.0.1"},
    }))?;
    super::create(&client, ns, &svc).await?;
    let mut tm = TrafficMetricsSettings::new(
        ([127, 0, 0, 1], api_port).into(),
        ServingSource::SelfSigned(service_ref.dns_names()),
    );
    tm.scrape.interval = scraping.interval;
    tm.scrape.port = scraping.port;
    tm.window = scraping.window;
    tm.register = Some(service_ref.clone());
    let op = super::operator(
        env,
        Settings {
            traffic_metrics: Some(tm),
            ..Settings::default()
        },
    )
    .await?;
    Ok((op, service_ref))
}

/// `GET path` through the API server, as JSON.
pub async fn get(client: &Client, path: &str) -> Result<Value, kube::Error> {
    client
        .request::<Value>(http::Request::get(path).body(Vec::new()).expect("request"))
        .await
}

/// Waits until the aggregator serves `metrics.smi-spec.io/version`
/// (the APIService is Available); its discovery document.
pub async fn discovery(client: &Client, version: &str, timeout: Duration) -> Result<Value> {
    let path = format!("/apis/metrics.smi-spec.io/{version}");
    super::eventually(
        &format!("metrics.smi-spec.io/{version} discovery"),
        timeout,
        || async { Ok(get(client, &path).await.ok()) },
    )
    .await
}

/// Deletes the APIServices and waits until they are gone: the aggregator
/// routes by these cluster-wide objects, so a test binary with more than one
/// metrics API must take turns.
pub async fn unregister(client: &Client) -> Result<()> {
    let api: Api<APIService> = Api::all(client.clone());
    for (version, _) in VERSIONS {
        let name = format!("{version}.metrics.smi-spec.io");
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
        super::eventually(
            &format!("APIService {name} deleted"),
            Duration::from_secs(20),
            || async { Ok(api.get_opt(&name).await?.is_none().then_some(())) },
        )
        .await?;
    }
    Ok(())
}
