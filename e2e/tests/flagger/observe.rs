//! Watching a Flagger rollout from outside, once a second: the Canary's
//! status, the TrafficSplit as Flagger wrote it (read back as
//! `split.smi-spec.io/v1alpha1`, Flagger's version), and the load
//! generator's own proxy counters (outbound responses per backend Service,
//! read from its admin port through the API server), so each weight Flagger
//! sets can be checked against where requests actually went.

use crate::stack::{LOADGEN, TARGET};
use anyhow::Context;
use k8s_openapi::api::core::v1::Event;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::{Api, Client};
use meshlet_crds::contract::{metrics, ports};
use meshlet_e2e::mesh;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub fn canary_api(client: &Client, ns: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("flagger.app", "v1beta1", "Canary");
    Api::namespaced_with(
        client.clone(),
        ns,
        &ApiResource::from_gvk_with_plural(&gvk, "canaries"),
    )
}

/// The Canary's status fields this test follows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CanaryStatus {
    pub phase: String,
    pub canary_weight: i64,
    pub failed_checks: i64,
}

pub async fn canary_status(client: &Client, ns: &str) -> anyhow::Result<CanaryStatus> {
    let obj = canary_api(client, ns).get(TARGET).await?;
    let status = &obj.data["status"];
    Ok(CanaryStatus {
        phase: status["phase"].as_str().unwrap_or_default().to_string(),
        canary_weight: status["canaryWeight"].as_i64().unwrap_or(0),
        failed_checks: status["failedChecks"].as_i64().unwrap_or(0),
    })
}

/// Weights of the TrafficSplit `podinfo` as (canary, primary), read as
/// v1alpha1 (quantities, as Flagger writes them).
pub async fn split_weights(client: &Client, ns: &str) -> anyhow::Result<(i64, i64)> {
    let split = mesh::get_smi(
        client,
        ns,
        "split.smi-spec.io/v1alpha1",
        "TrafficSplit",
        TARGET,
    )
    .await?;
    let weight = |service: String| -> anyhow::Result<i64> {
        let backend = split["spec"]["backends"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|b| b["service"] == service.as_str())
            .with_context(|| format!("no backend {service} in {split}"))?;
        match &backend["weight"] {
            Value::String(s) => s.parse().with_context(|| format!("weight {s:?}")),
            Value::Number(n) => n.as_i64().context("weight not an integer"),
            other => anyhow::bail!("weight {other}"),
        }
    };
    Ok((
        weight(format!("{TARGET}-canary"))?,
        weight(format!("{TARGET}-primary"))?,
    ))
}

/// Outbound responses the load generator's proxy counted, per backend
/// Service: (non-5xx, 5xx).
pub type Counts = BTreeMap<String, (u64, u64)>;

pub async fn loadgen_counts(client: &Client, ns: &str) -> anyhow::Result<Counts> {
    let path = format!(
        "/api/v1/namespaces/{ns}/pods/{LOADGEN}:{}/proxy/metrics",
        ports::PROXY_ADMIN_PORT
    );
    let text = client
        .request_text(http::Request::get(&path).body(Vec::new())?)
        .await
        .with_context(|| format!("GET {path}"))?;
    Ok(parse_outbound_responses(&text))
}

/// Sum `response_total{direction="outbound"}` by `dst_service` and
/// classification from the Prometheus text format.
fn parse_outbound_responses(text: &str) -> Counts {
    let label = |line: &str, name: &str| -> Option<String> {
        let start = line.find(&format!("{name}=\""))? + name.len() + 2;
        let len = line[start..].find('"')?;
        Some(line[start..start + len].to_string())
    };
    let mut counts = Counts::new();
    let prefix = format!("{}{{", metrics::RESPONSE_TOTAL);
    for line in text.lines().filter(|l| l.starts_with(&prefix)) {
        if label(line, metrics::DIRECTION).as_deref() != Some(metrics::DIRECTION_OUTBOUND) {
            continue;
        }
        let (Some(service), Some(class), Some(value)) = (
            label(line, metrics::DST_SERVICE),
            label(line, metrics::CLASSIFICATION),
            line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()),
        ) else {
            continue;
        };
        let entry = counts.entry(service).or_default();
        if class == metrics::CLASSIFICATION_FAILURE {
            entry.1 += value as u64;
        } else {
            entry.0 += value as u64;
        }
    }
    counts
}

/// One observation.
#[derive(Debug, Clone)]
pub struct Sample {
    pub at: Duration,
    pub status: CanaryStatus,
    pub split: (i64, i64),
    pub counts: Counts,
}

/// Poll until the Canary, having left `from_phase`'s terminal state (it is
/// `Progressing` once Flagger notices the new revision), reaches Succeeded
/// or Failed. Prints every change of phase or weights with its time.
pub async fn follow_rollout(
    client: &Client,
    ns: &str,
    timeout: Duration,
) -> anyhow::Result<Vec<Sample>> {
    let t0 = Instant::now();
    let mut samples: Vec<Sample> = Vec::new();
    let mut started = false;
    loop {
        let at = t0.elapsed();
        let sample = async {
            Ok::<_, anyhow::Error>(Sample {
                at,
                status: canary_status(client, ns).await?,
                split: split_weights(client, ns).await?,
                counts: loadgen_counts(client, ns).await?,
            })
        }
        .await;
        match sample {
            Ok(s) => {
                let changed = samples
                    .last()
                    .is_none_or(|p| p.status != s.status || p.split != s.split);
                if changed {
                    println!(
                        "[flagger +{:5.1}s] phase={:<12} status.canaryWeight={:<3} failedChecks={} \
                         TrafficSplit canary={} primary={}",
                        at.as_secs_f64(),
                        s.status.phase,
                        s.status.canary_weight,
                        s.status.failed_checks,
                        s.split.0,
                        s.split.1
                    );
                }
                started |= s.status.phase == "Progressing";
                let done = started && matches!(s.status.phase.as_str(), "Succeeded" | "Failed");
                samples.push(s);
                if done {
                    return Ok(samples);
                }
            }
            Err(e) => println!(
                "[flagger +{:5.1}s] (observation failed: {e:#})",
                at.as_secs_f64()
            ),
        }
        anyhow::ensure!(
            t0.elapsed() < timeout,
            "the rollout did not finish within {timeout:?} (started: {started})"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// A stretch of time with one TrafficSplit weight, and the load
/// generator's responses per backend in it.
#[derive(Debug)]
pub struct Window {
    pub canary_weight: i64,
    pub seconds: f64,
    /// Responses from `<target>-canary` and `<target>-primary`, (ok, 5xx).
    pub canary: (u64, u64),
    pub primary: (u64, u64),
}

impl Window {
    pub fn total(&self) -> u64 {
        self.canary.0 + self.canary.1 + self.primary.0 + self.primary.1
    }
    pub fn canary_share(&self) -> f64 {
        (self.canary.0 + self.canary.1) as f64 / self.total().max(1) as f64
    }
}

/// Group samples by TrafficSplit weight. Each window's counts start `settle`
/// after its first sample: the time for the proxies to get the new weights
/// (the canary scenario measures that propagation; its budget is 1 s).
pub fn windows(samples: &[Sample], settle: Duration) -> Vec<Window> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < samples.len() {
        let mut j = i;
        while j + 1 < samples.len() && samples[j + 1].split == samples[i].split {
            j += 1;
        }
        let from = samples[i..=j]
            .iter()
            .find(|s| s.at >= samples[i].at + settle)
            .unwrap_or(&samples[j]);
        let to = &samples[j];
        let delta = |svc: String| {
            let a = from.counts.get(&svc).copied().unwrap_or_default();
            let b = to.counts.get(&svc).copied().unwrap_or_default();
            (b.0.saturating_sub(a.0), b.1.saturating_sub(a.1))
        };
        out.push(Window {
            canary_weight: samples[i].split.0,
            seconds: (to.at.saturating_sub(from.at)).as_secs_f64(),
            canary: delta(format!("{TARGET}-canary")),
            primary: delta(format!("{TARGET}-primary")),
        });
        i = j + 1;
    }
    out
}

/// Flagger's events on the Canary, oldest first.
pub async fn canary_events(client: &Client, ns: &str) -> anyhow::Result<Vec<String>> {
    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    let mut items: Vec<Event> = events
        .list(&ListParams::default().fields(&format!(
            "involvedObject.kind=Canary,involvedObject.name={TARGET}"
        )))
        .await?
        .items;
    items.sort_by_key(|e| {
        e.last_timestamp
            .clone()
            .map(|t| t.0)
            .or(e.event_time.clone().map(|t| t.0))
    });
    Ok(items
        .into_iter()
        .map(|e| {
            format!(
                "{} {}",
                e.type_.unwrap_or_default(),
                e.message.unwrap_or_default()
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_outbound_responses_per_backend() {
        let text = "# TYPE response_total counter\n\
            response_total{direction=\"outbound\",dst_namespace=\"t\",dst_service=\"podinfo-primary\",route=\"\",tls=\"true\",status_code=\"200\",classification=\"success\"} 30\n\
            response_total{direction=\"outbound\",dst_namespace=\"t\",dst_service=\"podinfo-canary\",route=\"\",tls=\"true\",status_code=\"502\",classification=\"failure\"} 7\n\
            response_total{direction=\"outbound\",dst_namespace=\"t\",dst_service=\"podinfo-canary\",route=\"\",tls=\"true\",status_code=\"200\",classification=\"success\"} 3\n\
            response_total{direction=\"inbound\",dst_namespace=\"\",dst_service=\"\",route=\"\",tls=\"no_identity\",status_code=\"200\",classification=\"success\"} 99\n\
            request_total{direction=\"outbound\",dst_service=\"podinfo-canary\"} 10\n";
        let c = parse_outbound_responses(text);
        assert_eq!(c["podinfo-primary"], (30, 0));
        assert_eq!(c["podinfo-canary"], (3, 7));
        assert_eq!(c.len(), 2);
    }
}
