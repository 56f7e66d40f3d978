//! `meshlet canary` driving a real TrafficSplit on a real kube-apiserver,
//! with scripted canary traffic: each observation also records the weights
//! the API server holds at that moment, so the test sees every write.

mod common;

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Result;
use kube::api::PostParams;
use kube::Api;
use meshlet_cli::canary::machine::{Observation, Policy};
use meshlet_cli::canary::source::CanaryMetrics;
use meshlet_cli::canary::{drive, Outcome, Plan};
use meshlet_crds::manifests::CrdRender;
use meshlet_crds::split::v1alpha4::TrafficSplit;
use serde_json::json;
use tokio::sync::watch;

/// Replays observations; records the split's weights at each reading.
struct Scripted {
    client: kube::Client,
    namespace: String,
    script: Mutex<VecDeque<Observation>>,
    seen: Mutex<Vec<Vec<(String, u64)>>>,
    stop_after: Option<(usize, watch::Sender<bool>)>,
}

async fn weights(client: &kube::Client, namespace: &str) -> Result<Vec<(String, u64)>> {
    let api: Api<TrafficSplit> = Api::namespaced(client.clone(), namespace);
    let split = api.get("web").await?;
    Ok(split
        .spec
        .backends
        .iter()
        .map(|b| (b.service.clone(), b.weight))
        .collect())
}

impl CanaryMetrics for Scripted {
    async fn observe(&self, namespace: &str, backend: &str) -> Result<Observation> {
        assert_eq!((namespace, backend), (self.namespace.as_str(), "web-v2"));
        let now = weights(&self.client, namespace).await?;
        let count = {
            let mut seen = self.seen.lock().unwrap();
            seen.push(now);
            seen.len()
        };
        if let Some((after, stop)) = &self.stop_after {
            if count == *after {
                let _ = stop.send(true);
            }
        }
        self.script
            .lock()
            .unwrap()
            .pop_front()
            .ok_or_else(|| anyhow::anyhow!("the script ran out"))
    }
}

fn healthy() -> Observation {
    Observation {
        requests: 100,
        failures: 0,
        p99_ms: Some(20.0),
    }
}

async fn setup(prefix: &str, v1: u64, v2: u64) -> Result<(kube::Client, String)> {
    let env = meshlet_testenv::shared().await?;
    let client = env.client();
    common::apply_crds(&client, CrdRender::StorageOnly).await?;
    let namespace = env.create_namespace(prefix).await?;
    let api: Api<TrafficSplit> = Api::namespaced(client.clone(), &namespace);
    let split: TrafficSplit = serde_json::from_value(json!({
        "apiVersion": "split.smi-spec.io/v1alpha4", "kind": "TrafficSplit",
        "metadata": {"name": "web"},
        "spec": {"service": "web", "backends": [
            {"service": "web-v1", "weight": v1}, {"service": "web-v2", "weight": v2}]}
    }))?;
    api.create(
        &PostParams {
            field_manager: Some("kubectl".into()),
            ..Default::default()
        },
        &split,
    )
    .await?;
    Ok((client, namespace))
}

fn plan(namespace: &str, step: u64) -> Plan {
    Plan {
        namespace: namespace.into(),
        split: "web".into(),
        to: "web-v2".into(),
        from: None,
        policy: Policy {
            step,
            max_failure_rate: 0.01,
            max_p99_ms: 500.0,
            min_requests: 10,
            max_idle_intervals: 3,
        },
        interval: Duration::from_millis(20),
    }
}

fn pairs(v1: u64, v2: u64) -> Vec<(String, u64)> {
    vec![("web-v1".into(), v1), ("web-v2".into(), v2)]
}

#[tokio::test]
async fn healthy_canary_is_promoted_step_by_step() -> Result<()> {
    let (client, namespace) = setup("canary-ok", 1000, 0).await?;
    let source = Scripted {
        client: client.clone(),
        namespace: namespace.clone(),
        script: Mutex::new(std::iter::repeat_n(healthy(), 5).collect()),
        seen: Mutex::default(),
        stop_after: None,
    };
    let (_tx, rx) = watch::channel(false);
    let mut out = Vec::new();
    let outcome = drive(&client, &plan(&namespace, 40), &source, rx, &mut out).await?;
    let out = String::from_utf8(out)?;
    println!("{out}");
    assert_eq!(outcome, Outcome::Promoted);
    // The API server held each step's weights when the canary was observed.
    assert_eq!(
        *source.seen.lock().unwrap(),
        [pairs(60, 40), pairs(20, 80), pairs(0, 100)]
    );
    assert_eq!(weights(&client, &namespace).await?, pairs(0, 100));
    assert!(out.contains("weights: web-v2 80%, web-v1 20%"), "{out}");
    assert!(
        out.contains("promoted: web-v2 has all the traffic"),
        "{out}"
    );
    // Written by server-side apply, as meshlet-cli.
    let split = Api::<TrafficSplit>::namespaced(client.clone(), &namespace)
        .get("web")
        .await?;
    let managers: Vec<_> = split
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .map(|m| {
            (
                m.manager.unwrap_or_default(),
                m.operation.unwrap_or_default(),
            )
        })
        .collect();
    assert!(
        managers.contains(&("meshlet-cli".into(), "Apply".into())),
        "{managers:?}"
    );
    Ok(())
}

#[tokio::test]
async fn breach_rolls_back_to_the_primary() -> Result<()> {
    let (client, namespace) = setup("canary-breach", 100, 0).await?;
    let source = Scripted {
        client: client.clone(),
        namespace: namespace.clone(),
        script: Mutex::new(VecDeque::from([
            healthy(),
            Observation {
                requests: 100,
                failures: 5,
                p99_ms: Some(20.0),
            },
        ])),
        seen: Mutex::default(),
        stop_after: None,
    };
    let (_tx, rx) = watch::channel(false);
    let mut out = Vec::new();
    let outcome = drive(&client, &plan(&namespace, 25), &source, rx, &mut out).await?;
    let out = String::from_utf8(out)?;
    println!("{out}");
    assert!(
        matches!(&outcome, Outcome::RolledBack(reason) if reason.contains("failure rate 5.00%")),
        "{outcome:?}"
    );
    assert_eq!(*source.seen.lock().unwrap(), [pairs(75, 25), pairs(50, 50)]);
    assert_eq!(weights(&client, &namespace).await?, pairs(100, 0));
    assert!(
        out.contains("rolled back: failure rate 5.00% (5 of 100) above the limit 1.00%"),
        "{out}"
    );
    Ok(())
}

#[tokio::test]
async fn metrics_errors_roll_back() -> Result<()> {
    let (client, namespace) = setup("canary-nometrics", 100, 0).await?;
    let source = Scripted {
        client: client.clone(),
        namespace: namespace.clone(),
        script: Mutex::new(VecDeque::new()),
        seen: Mutex::default(),
        stop_after: None,
    };
    let (_tx, rx) = watch::channel(false);
    let mut out = Vec::new();
    let outcome = drive(&client, &plan(&namespace, 10), &source, rx, &mut out).await?;
    assert!(
        matches!(&outcome, Outcome::RolledBack(r) if r.contains("script ran out")),
        "{outcome:?}"
    );
    assert_eq!(weights(&client, &namespace).await?, pairs(100, 0));
    Ok(())
}

#[tokio::test]
async fn interrupt_leaves_the_last_weights_and_a_rerun_resumes() -> Result<()> {
    let (client, namespace) = setup("canary-interrupt", 90, 10).await?;
    let (tx, rx) = watch::channel(false);
    let source = Scripted {
        client: client.clone(),
        namespace: namespace.clone(),
        script: Mutex::new(std::iter::repeat_n(healthy(), 10).collect()),
        seen: Mutex::default(),
        // Ctrl-C while the second observation is being read.
        stop_after: Some((2, tx)),
    };
    let mut out = Vec::new();
    let outcome = drive(&client, &plan(&namespace, 30), &source, rx, &mut out).await?;
    let out = String::from_utf8(out)?;
    println!("{out}");
    // Resumed from the existing 10%, then 40% written; the stop arrives
    // while reading at 40%: that reading still completes, its step (70%)
    // is written, and the run stops before the next wait.
    let seen = source.seen.lock().unwrap().clone();
    assert_eq!(seen, [pairs(90, 10), pairs(60, 40)]);
    let Outcome::Interrupted { canary } = outcome else {
        panic!("{outcome:?}")
    };
    let now = weights(&client, &namespace).await?;
    assert_eq!(
        now,
        pairs(100 - canary, canary),
        "the split holds exactly the reported state"
    );
    assert!(out.contains("run the same command to resume"), "{out}");

    // Running again resumes from there.
    let (_tx, rx) = watch::channel(false);
    let source = Scripted {
        client: client.clone(),
        namespace: namespace.clone(),
        script: Mutex::new(std::iter::repeat_n(healthy(), 10).collect()),
        seen: Mutex::default(),
        stop_after: None,
    };
    let outcome = drive(&client, &plan(&namespace, 30), &source, rx, &mut Vec::new()).await?;
    assert_eq!(outcome, Outcome::Promoted);
    assert_eq!(source.seen.lock().unwrap()[0], pairs(100 - canary, canary));
    Ok(())
}

#[tokio::test]
async fn flags_naming_missing_backends_are_refused_before_any_write() -> Result<()> {
    let (client, namespace) = setup("canary-flags", 100, 0).await?;
    let source = Scripted {
        client: client.clone(),
        namespace: namespace.clone(),
        script: Mutex::new(VecDeque::new()),
        seen: Mutex::default(),
        stop_after: None,
    };
    let (_tx, rx) = watch::channel(false);
    let mut bad = plan(&namespace, 10);
    bad.to = "web-v3".into();
    let err = drive(&client, &bad, &source, rx, &mut Vec::new())
        .await
        .unwrap_err();
    assert!(
        err.to_string().starts_with("--to web-v3: not a backend"),
        "{err}"
    );
    assert_eq!(weights(&client, &namespace).await?, pairs(100, 0));
    Ok(())
}
