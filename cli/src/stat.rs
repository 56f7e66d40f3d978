//! `meshlet stat`: success rate, requests per second and p50/p99 latency
//! per Deployment, Pod, Namespace or TrafficSplit backend, from the SMI
//! TrafficMetrics API, as a table or JSON.

use anyhow::Context as _;
use kube::api::ListParams;
use kube::Api;
use meshlet_crds::split::v1alpha4::TrafficSplit;
use serde::Serialize;

use crate::cli::{Output, StatArgs, StatKind};
use crate::kubeargs::KubeArgs;
use crate::metrics_api::{Golden, MetricsApi};

/// One line of the table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// The TrafficSplit, for backend rows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split: Option<String>,
    /// The resource (or backend Service).
    pub name: String,
    /// The backend's weight, for backend rows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<u64>,
    /// Share of successful responses (0–1), `null` without traffic.
    pub success_rate: Option<f64>,
    /// Requests per second.
    pub rps: f64,
    /// Median latency, ms.
    pub p50_ms: Option<f64>,
    /// 99th percentile latency, ms.
    pub p99_ms: Option<f64>,
}

impl Row {
    /// A row for `name` from its golden metrics.
    pub fn new(name: impl Into<String>, golden: &Golden) -> Row {
        Row {
            split: None,
            name: name.into(),
            weight: None,
            success_rate: golden.success_rate(),
            rps: golden.rps(),
            p50_ms: golden.p50_ms,
            p99_ms: golden.p99_ms,
        }
    }
}

fn percent(rate: Option<f64>) -> String {
    rate.map_or("-".into(), |r| format!("{:.2}%", r * 100.0))
}

fn millis(ms: Option<f64>) -> String {
    match ms {
        None => "-".into(),
        Some(ms) if ms < 10.0 && ms.fract() != 0.0 => format!("{ms:.1}ms"),
        Some(ms) => format!("{ms:.0}ms"),
    }
}

/// Renders rows as an aligned table; backend rows get APEX and WEIGHT columns.
pub fn table(rows: &[Row]) -> String {
    let splits = rows.iter().any(|r| r.split.is_some());
    let mut header = vec![];
    if splits {
        header.push("TRAFFICSPLIT");
    }
    header.extend(["NAME"]);
    if splits {
        header.push("WEIGHT");
    }
    header.extend(["SUCCESS", "RPS", "LATENCY_P50", "LATENCY_P99"]);
    let mut lines: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
    for row in rows {
        let mut cells = vec![];
        if splits {
            cells.push(row.split.clone().unwrap_or_default());
        }
        cells.push(row.name.clone());
        if splits {
            cells.push(row.weight.map_or("-".into(), |w| w.to_string()));
        }
        cells.extend([
            percent(row.success_rate),
            format!("{:.1}", row.rps),
            millis(row.p50_ms),
            millis(row.p99_ms),
        ]);
        lines.push(cells);
    }
    let widths: Vec<usize> = (0..lines[0].len())
        .map(|i| {
            lines
                .iter()
                .map(|l| l[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for line in lines {
        let cells: Vec<String> = line
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(cells.join("   ").trim_end());
        out.push('\n');
    }
    out
}

fn plural(kind: StatKind) -> &'static str {
    match kind {
        StatKind::Deployment => "deployments",
        StatKind::Pod => "pods",
        StatKind::Namespace => "namespaces",
        StatKind::Trafficsplit => "trafficsplits",
    }
}

/// Rows for deployments, pods or namespaces: one resource, or all of them.
pub async fn resource_rows(
    api: &MetricsApi,
    kind: StatKind,
    namespace: &str,
    name: Option<&str>,
) -> anyhow::Result<Vec<Row>> {
    let plural = plural(kind);
    let items = match name {
        Some(name) => vec![api.one(plural, namespace, name).await?],
        None => api.list(plural, namespace).await?.items,
    };
    let mut rows = items
        .iter()
        .map(|tm| {
            let name = tm.resource.name.clone().unwrap_or_default();
            Golden::from_traffic_metrics(tm)
                .map(|g| Row::new(name.clone(), &g))
                .with_context(|| format!("{plural}/{name}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(rows)
}

/// Rows for the backends of one TrafficSplit, or of every split in the
/// namespace, from the split's edges (the traffic meshed clients sent to
/// each backend, as the operator measures it).
pub async fn split_rows(
    client: &kube::Client,
    api: &MetricsApi,
    namespace: &str,
    name: Option<&str>,
) -> anyhow::Result<Vec<Row>> {
    let names = match name {
        Some(name) => vec![name.to_string()],
        None => {
            let splits: Api<TrafficSplit> = Api::namespaced(client.clone(), namespace);
            let list = splits.list(&ListParams::default()).await?;
            list.items
                .into_iter()
                .filter_map(|s| s.metadata.name)
                .collect()
        }
    };
    let mut rows = Vec::new();
    for split in names {
        let list = api.split_backends(namespace, &split).await?;
        rows.extend(backend_rows(&split, &list)?);
    }
    Ok(rows)
}

/// One row per backend of a split's edges list.
pub fn backend_rows(
    split: &str,
    list: &meshlet_crds::metrics::v1alpha2::TrafficMetricsList,
) -> anyhow::Result<Vec<Row>> {
    list.items
        .iter()
        .map(|tm| {
            let (leaf, weight) = match &tm.backend {
                Some(b) => (b.leaf.clone(), Some(b.weight)),
                None => (
                    tm.edge
                        .as_ref()
                        .and_then(|e| e.resource.name.clone())
                        .unwrap_or_default(),
                    None,
                ),
            };
            let golden = Golden::from_v1alpha2(tm)
                .with_context(|| format!("trafficsplits/{split} backend {leaf}"))?;
            let mut row = Row::new(leaf, &golden);
            row.split = Some(split.to_string());
            row.weight = weight;
            Ok(row)
        })
        .collect()
}

/// Runs `meshlet stat`.
pub async fn run(kube: &KubeArgs, args: &StatArgs) -> anyhow::Result<()> {
    let (client, namespace) = kube.client().await?;
    let api = MetricsApi::new(client.clone());
    let rows = match args.kind {
        StatKind::Trafficsplit => {
            split_rows(&client, &api, &namespace, args.name.as_deref()).await?
        }
        kind => resource_rows(&api, kind, &namespace, args.name.as_deref()).await?,
    };
    match args.output {
        Output::Text if rows.is_empty() => eprintln!("No traffic metrics found in {namespace}."),
        Output::Text => print!("{}", table(&rows)),
        Output::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn table_aligns_and_marks_idle_rows() {
        let busy = Golden {
            success: 599,
            failure: 1,
            p50_ms: Some(1.5),
            p99_ms: Some(42.0),
            window: Duration::from_secs(60),
        };
        let idle = Golden {
            window: Duration::from_secs(60),
            ..Golden::default()
        };
        let rows = vec![Row::new("web", &busy), Row::new("worker-long-name", &idle)];
        assert_eq!(
            table(&rows),
            "NAME               SUCCESS   RPS    LATENCY_P50   LATENCY_P99\n\
             web                99.83%    10.0   1.5ms         42ms\n\
             worker-long-name   -         0.0    -             -\n"
        );
    }

    #[test]
    fn split_rows_have_split_and_weight_columns() {
        let g = Golden {
            success: 30,
            window: Duration::from_secs(30),
            p50_ms: Some(3.0),
            p99_ms: Some(9.0),
            ..Golden::default()
        };
        let mut row = Row::new("web-v2", &g);
        row.split = Some("web".into());
        row.weight = Some(10);
        let text = table(&[row]);
        assert!(
            text.starts_with("TRAFFICSPLIT   NAME     WEIGHT   SUCCESS"),
            "{text}"
        );
        assert!(
            text.contains("web            web-v2   10       100.00%   1.0"),
            "{text}"
        );
    }
}
