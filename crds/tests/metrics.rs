//! TrafficMetrics wire types read the SMI specification's examples and
//! write what they read.

use meshlet_crds::metrics::{v1alpha1, v1alpha2, METRIC_NAMES};
use serde_json::Value;

const RESOURCE_EXAMPLE: &str = r#"
kind: TrafficMetrics
# See ObjectReference v1 core for full spec
resource:
  name: foo-775b9cbd88-ntxsl
  namespace: foobar
  kind: Pod
edge:
  direction: to
  side: client
  resource:
    name: baz-577db7d977-lsk2q
    namespace: foobar
    kind: Pod
timestamp: 2019-04-08T22:25:55Z
window: 30s
metrics:
- name: p99_response_latency
  unit: seconds
  value: 10m
- name: p90_response_latency
  unit: seconds
  value: 10m
- name: p50_response_latency
  unit: seconds
  value: 10m
- name: success_count
  value: 100
- name: failure_count
  value: 100
"#;

const SPLIT_EXAMPLE: &str = r#"
kind: TrafficMetrics
resource:
  name: my-traffic-split
  namespace: foobar
  kind: TrafficSplit
edge:
  direction: from
  side: client
  resource: {}
backend:
  apex: my-service
  name: my-service-v1
  weight: 90
timestamp: 2019-04-08T22:25:55Z
window: 30s
metrics:
- name: success_count
  value: 100
"#;

fn with_api_version(yaml: &str, api_version: &str) -> Value {
    let mut v: Value = serde_yaml::from_str(yaml).unwrap();
    v["apiVersion"] = Value::String(api_version.into());
    v
}

#[test]
fn v1alpha2_reads_the_spec_examples() {
    let m: v1alpha2::TrafficMetrics =
        serde_json::from_value(with_api_version(RESOURCE_EXAMPLE, v1alpha2::API_VERSION)).unwrap();
    let edge = m.edge.as_ref().unwrap();
    assert_eq!(edge.direction, v1alpha2::Direction::To);
    assert_eq!(edge.side, Some(v1alpha2::Side::Client));
    assert_eq!(edge.resource.name.as_deref(), Some("baz-577db7d977-lsk2q"));
    let names: Vec<&str> = m.metrics.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, METRIC_NAMES);
    assert_eq!(m.metrics[3].value.0, "100");
    assert_eq!(m.metrics[0].value.0, "10m");
    assert_eq!(m.window, "30s");

    let s: v1alpha2::TrafficMetrics =
        serde_json::from_value(with_api_version(SPLIT_EXAMPLE, v1alpha2::API_VERSION)).unwrap();
    let backend = s.backend.as_ref().unwrap();
    assert_eq!(
        (backend.apex.as_str(), backend.leaf.as_str(), backend.weight),
        ("my-service", "my-service-v1", 90)
    );
    assert_eq!(s.edge.unwrap().resource, Default::default());
}

#[test]
fn v1alpha2_writes_what_it_reads() {
    let m: v1alpha2::TrafficMetrics =
        serde_json::from_value(with_api_version(SPLIT_EXAMPLE, v1alpha2::API_VERSION)).unwrap();
    let written = serde_json::to_value(&m).unwrap();
    assert_eq!(written["backend"]["leaf"], "my-service-v1");
    assert_eq!(written["metrics"][0]["value"], "100");
    assert_eq!(written["timestamp"], "2019-04-08T22:25:55Z");
    let again: v1alpha2::TrafficMetrics = serde_json::from_value(written).unwrap();
    assert_eq!(again, m);
}

#[test]
fn v1alpha1_reads_the_example_and_converts_both_ways() {
    let m: v1alpha1::TrafficMetrics =
        serde_json::from_value(with_api_version(RESOURCE_EXAMPLE, v1alpha1::API_VERSION)).unwrap();
    // v1alpha1 has no `side`: it is ignored on read.
    let written = serde_json::to_value(&m).unwrap();
    assert!(written["edge"].get("side").is_none());
    let up: v1alpha2::TrafficMetrics = m.clone().into();
    assert_eq!(up.api_version, "metrics.smi-spec.io/v1alpha2");
    assert_eq!(up.edge.as_ref().unwrap().side, None);
    let down: v1alpha1::TrafficMetrics = up.into();
    assert_eq!(down, m);
}

#[test]
fn resource_metrics_have_a_null_edge_and_go_empty_side_reads_as_unknown() {
    let json = serde_json::json!({
        "apiVersion": "metrics.smi-spec.io/v1alpha2", "kind": "TrafficMetrics",
        "metadata": {"name": "web", "namespace": "shop"},
        "timestamp": "2024-01-01T00:00:00Z", "window": "30s",
        "resource": {"kind": "Deployment", "name": "web", "namespace": "shop"},
        "edge": null, "metrics": []
    });
    let m: v1alpha2::TrafficMetrics = serde_json::from_value(json).unwrap();
    assert!(m.edge.is_none());
    assert_eq!(serde_json::to_value(&m).unwrap()["edge"], Value::Null);

    let edge = serde_json::json!({"direction": "from", "side": "", "resource": {}});
    let e: v1alpha2::Edge = serde_json::from_value(edge).unwrap();
    assert_eq!(e.side, None);
    let bad = serde_json::json!({"direction": "from", "side": "middle", "resource": {}});
    let err = serde_json::from_value::<v1alpha2::Edge>(bad)
        .unwrap_err()
        .to_string();
    assert!(err.contains("edge.side"), "{err}");
}

#[test]
fn lists_read_the_spec_shape() {
    let list = serde_json::json!({
        "apiVersion": "metrics.smi-spec.io/v1alpha1", "kind": "TrafficMetricsList",
        "resource": {"kind": "Pod"},
        "selector": {"matchLabels": {"app": "foo"}},
        "items": []
    });
    let l: v1alpha1::TrafficMetricsList = serde_json::from_value(list.clone()).unwrap();
    assert_eq!(l.resource.kind.as_deref(), Some("Pod"));
    assert_eq!(
        serde_json::to_value(&l).unwrap()["selector"],
        list["selector"]
    );
    let l2: v1alpha2::TrafficMetricsList = serde_json::from_value(list).unwrap();
    assert!(l2.items.is_empty());
}
