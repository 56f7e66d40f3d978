//! deploy/observability against the contract: every metric and label the
//! Grafana dashboard's PromQL uses is one the proxies expose
//! (crds/src/contract/metrics.rs), and the scrape configuration and
//! PodMonitor select the port name the injector gives the proxy's admin
//! port.

use std::collections::BTreeSet;
use std::path::Path;

use meshlet_crds::contract::{metrics as m, ports};
use serde_json::Value;

fn read(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every metric the proxies expose, as Prometheus names.
fn exposed_metrics() -> BTreeSet<String> {
    let mut names: BTreeSet<String> = [
        m::REQUEST_TOTAL,
        m::RESPONSE_TOTAL,
        m::TCP_OPEN_TOTAL,
        m::TCP_CLOSE_TOTAL,
        m::TCP_READ_BYTES_TOTAL,
        m::TCP_WRITE_BYTES_TOTAL,
        m::INBOUND_HTTP_AUTHZ_DENY_TOTAL,
        m::INBOUND_TCP_AUTHZ_DENY_TOTAL,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for suffix in ["_bucket", "_sum", "_count"] {
        names.insert(format!("{}{suffix}", m::RESPONSE_LATENCY_MS));
    }
    names
}

fn contract_labels() -> BTreeSet<&'static str> {
    [
        m::DIRECTION,
        m::NAMESPACE,
        m::DEPLOYMENT,
        m::POD,
        m::DST_NAMESPACE,
        m::DST_SERVICE,
        m::DST_DEPLOYMENT,
        m::AUTHORITY,
        m::ROUTE,
        m::STATUS_CODE,
        m::CLASSIFICATION,
        m::TLS,
        m::CLIENT_ID,
        m::SERVER_ID,
        m::REASON,
        m::ERRNO,
        "le",
    ]
    .into_iter()
    .collect()
}

/// The identifiers of a PromQL expression with what follows each: metric
/// names are followed by `{`, label names by `=`, `!=`, `=~` or `!~` inside
/// braces, grouping labels sit inside `by (...)`.
struct Parsed {
    metrics: Vec<String>,
    labels: Vec<String>,
}

fn parse_promql(expr: &str) -> Parsed {
    let chars: Vec<char> = expr.chars().collect();
    let (mut metrics, mut labels) = (Vec::new(), Vec::new());
    let (mut i, mut in_braces, mut in_by, mut in_string) = (0, false, false, false);
    let mut last_word = String::new();
    while i < chars.len() {
        let c = chars[i];
        if in_string {
            if c == '"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = chars[i..].iter().find(|c| !c.is_whitespace()).copied();
            if in_braces || in_by {
                labels.push(word.clone());
            } else if next == Some('{') {
                metrics.push(word.clone());
            }
            last_word = word;
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' => in_braces = true,
            '}' => in_braces = false,
            '(' if last_word == "by" || last_word == "without" => in_by = true,
            ')' => in_by = false,
            _ => {}
        }
        if !c.is_whitespace() {
            last_word.clear();
        }
        i += 1;
    }
    Parsed { metrics, labels }
}

fn dashboard_exprs() -> Vec<String> {
    let dashboard: Value =
        serde_json::from_str(&read("deploy/observability/grafana-dashboard.json")).unwrap();
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            exprs.push(target["expr"].as_str().unwrap().to_string());
        }
    }
    for var in dashboard["templating"]["list"].as_array().unwrap() {
        if let Some(q) = var["query"]["query"].as_str() {
            // label_values(<selector>, <label>): the selector is PromQL.
            let inner = q
                .strip_prefix("label_values(")
                .and_then(|q| q.strip_suffix(')'))
                .unwrap();
            let (selector, label) = inner.rsplit_once(',').unwrap();
            exprs.push(format!("{selector} + on ({}) vector(0)", label.trim()));
        }
    }
    exprs
}

#[test]
fn the_parser_finds_metrics_and_labels() {
    let p = parse_promql(
        r#"histogram_quantile(0.99, sum by (le, deployment) (rate(response_latency_ms_bucket{direction="inbound", a=~"x{y}"}[1m])))"#,
    );
    assert_eq!(p.metrics, ["response_latency_ms_bucket"]);
    assert_eq!(p.labels, ["le", "deployment", "direction", "a"]);
}

#[test]
fn every_dashboard_metric_and_label_is_in_the_contract() {
    let exposed = exposed_metrics();
    let labels = contract_labels();
    let exprs = dashboard_exprs();
    assert!(exprs.len() >= 14, "{exprs:#?}");
    let mut used = BTreeSet::new();
    for expr in &exprs {
        let parsed = parse_promql(expr);
        assert!(
            !parsed.metrics.is_empty() || expr.contains("vector(0)"),
            "no metric in {expr}"
        );
        for metric in parsed.metrics {
            assert!(
                exposed.contains(&metric),
                "{metric} (in {expr}) is not exposed by the proxy; contract: {exposed:?}"
            );
            used.insert(metric);
        }
        for label in parsed.labels {
            assert!(
                labels.contains(label.as_str()),
                "label {label} (in {expr}) is not in the contract"
            );
        }
    }
    // The golden signals are all there.
    for needed in [
        "request_total",
        "response_total",
        "response_latency_ms_bucket",
    ] {
        assert!(used.contains(needed), "the dashboard does not use {needed}");
    }
}

/// The name the injector gives the proxy's admin port.
fn admin_port_name() -> String {
    let settings = meshlet_webhook::inject::InjectorSettings::default();
    let overrides = meshlet_webhook::inject::overrides::Overrides::default();
    let proxy =
        meshlet_webhook::inject::sidecar::proxy_container(&settings, &overrides, true, None);
    proxy
        .ports
        .unwrap()
        .into_iter()
        .find(|p| p.container_port == i32::from(ports::PROXY_ADMIN_PORT))
        .and_then(|p| p.name)
        .expect("the admin port has a name")
}

#[test]
fn scrape_config_and_monitors_select_the_proxy_admin_port() {
    let port = admin_port_name();
    let scrape: serde_yaml::Value =
        serde_yaml::from_str(&read("deploy/observability/prometheus-scrape.yaml")).unwrap();
    let jobs = scrape["scrape_configs"].as_sequence().unwrap();
    let proxy = jobs
        .iter()
        .find(|j| j["job_name"] == "meshlet-proxy")
        .expect("meshlet-proxy job");
    assert_eq!(
        proxy["honor_labels"],
        serde_yaml::Value::Bool(true),
        "the proxy's namespace/deployment/pod labels must win"
    );
    let keeps: Vec<(String, String)> = proxy["relabel_configs"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "keep")
        .map(|r| {
            (
                r["source_labels"][0].as_str().unwrap().to_string(),
                r["regex"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        keeps.contains(&(
            "__meta_kubernetes_pod_container_port_name".into(),
            port.clone()
        )),
        "{keeps:?}"
    );
    assert!(
        keeps.contains(&(
            "__meta_kubernetes_pod_label_meshlet_dev_meshed".into(),
            "true".into()
        )),
        "{keeps:?}"
    );
    assert!(jobs.iter().any(|j| j["job_name"] == "meshlet-operator"));

    let monitors: Vec<serde_yaml::Value> =
        serde_yaml::Deserializer::from_str(&read("deploy/observability/monitors.yaml"))
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .collect();
    let pod_monitor = monitors.iter().find(|m| m["kind"] == "PodMonitor").unwrap();
    assert_eq!(
        pod_monitor["spec"]["podMetricsEndpoints"][0]["port"].as_str(),
        Some(port.as_str())
    );
    assert_eq!(
        pod_monitor["spec"]["selector"]["matchLabels"]["meshlet.dev/meshed"].as_str(),
        Some("true")
    );
    let service_monitor = monitors
        .iter()
        .find(|m| m["kind"] == "ServiceMonitor")
        .unwrap();
    // The operator Service's port of that name exists in the install manifests.
    let install = meshlet_cli::install::default_objects().unwrap();
    let operator_service = install
        .iter()
        .find(|o| o["kind"] == "Service" && o["metadata"]["name"] == "meshlet-operator")
        .unwrap();
    let port_name = service_monitor["spec"]["endpoints"][0]["port"].clone();
    assert!(
        operator_service["spec"]["ports"]
            .as_sequence()
            .unwrap()
            .iter()
            .any(|p| p["name"] == port_name),
        "ServiceMonitor port {port_name:?} not on the operator Service"
    );
    for (key, value) in service_monitor["spec"]["selector"]["matchLabels"]
        .as_mapping()
        .unwrap()
    {
        assert_eq!(
            operator_service["metadata"]["labels"][key.as_str().unwrap()],
            *value,
            "operator Service label {key:?}"
        );
    }
}
