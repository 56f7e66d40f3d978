//! `meshlet stat` formatting of TrafficMetrics answers in the shape the
//! operator serves (the fixtures deserialize through the same
//! `meshlet_crds::metrics` types the operator serializes with), and the
//! canary's reading of a split's edges.

use meshlet_cli::canary::machine::{Observation, Policy, State};
use meshlet_cli::canary::source::observation;
use meshlet_cli::metrics_api::{split_edges_path, Golden};
use meshlet_cli::stat::{backend_rows, table, Row};
use meshlet_crds::metrics::{v1alpha1, v1alpha2};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[test]
fn deployments_table() {
    let list: v1alpha1::TrafficMetricsList =
        serde_json::from_str(&fixture("deployments.json")).unwrap();
    let mut rows: Vec<Row> = list
        .items
        .iter()
        .map(|tm| {
            Row::new(
                tm.resource.name.clone().unwrap(),
                &Golden::from_traffic_metrics(tm).unwrap(),
            )
        })
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    let text = table(&rows);
    println!("{text}");
    assert_eq!(
        text,
        "NAME   SUCCESS   RPS    LATENCY_P50   LATENCY_P99\n\
         api    -         0.0    -             -\n\
         web    99.67%    30.0   4ms           88ms\n"
    );
}

#[test]
fn trafficsplit_table_has_one_row_per_backend_with_its_weight() {
    let list: v1alpha2::TrafficMetricsList =
        serde_json::from_str(&fixture("trafficsplit-edges.json")).unwrap();
    let rows = backend_rows("web", &list).unwrap();
    let text = table(&rows);
    println!("{text}");
    assert_eq!(
        text,
        "TRAFFICSPLIT   NAME     WEIGHT   SUCCESS   RPS   LATENCY_P50   LATENCY_P99\n\
         web            web-v1   900      100.00%   9.0   2.5ms         9ms\n\
         web            web-v2   100      90.00%    1.0   12ms          640ms\n"
    );
    let json: serde_json::Value = serde_json::to_value(&rows).unwrap();
    assert_eq!(json[1]["weight"], 100);
    assert_eq!(json[1]["success_rate"], 0.9);
    assert_eq!(
        split_edges_path("shop", "web"),
        "/apis/metrics.smi-spec.io/v1alpha2/namespaces/shop/trafficsplits/web/edges"
    );
}

#[test]
fn the_canary_judges_the_backend_edge() {
    let list: v1alpha2::TrafficMetricsList =
        serde_json::from_str(&fixture("trafficsplit-edges.json")).unwrap();
    let canary = list
        .items
        .iter()
        .find(|tm| tm.backend.as_ref().unwrap().leaf == "web-v2")
        .unwrap();
    let observed = observation(&Golden::from_v1alpha2(canary).unwrap());
    assert_eq!(
        observed,
        Observation {
            requests: 30,
            failures: 3,
            p99_ms: Some(640.0)
        }
    );
    let policy = Policy {
        step: 10,
        max_failure_rate: 0.01,
        max_p99_ms: 500.0,
        min_requests: 1,
        max_idle_intervals: 3,
    };
    let next = policy.next(&policy.start(10), &observed);
    assert!(
        matches!(next, State::RolledBack { ref reason } if reason.contains("failure rate 10.00%")),
        "{next:?}"
    );
}
