//! `meshlet canary`: moves a TrafficSplit's traffic to a canary backend step
//! by step, judging each interval from the canary's TrafficMetrics, and
//! rolls back on a breach. The decisions are the pure [`machine`]; this
//! module reads, writes and waits.
//!
//! Consistency: every weight change is one server-side apply of the whole
//! backend list, so the split is always one of the states the machine
//! produced. Ctrl-C is only acted on while waiting or reading metrics, never
//! in the middle of a write; the last written weights stay, and running the
//! same command again resumes from them.

pub mod machine;
pub mod source;
pub mod split;

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use kube::Api;
use meshlet_crds::split::v1alpha4::TrafficSplit;
use tokio::sync::watch;

use crate::cli::CanaryArgs;
use crate::kubeargs::KubeArgs;
use crate::metrics_api::MetricsApi;
use machine::{Policy, State};
use source::{CanaryMetrics, TrafficMetricsSource};

/// How a canary run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The canary has all the traffic.
    Promoted,
    /// All traffic went back to the primary.
    RolledBack(String),
    /// Stopped by the user; the weights are those last written.
    Interrupted {
        /// The canary's share left in place, percent.
        canary: u64,
    },
}

/// One canary run's settings.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Namespace of the split.
    pub namespace: String,
    /// The split's name.
    pub split: String,
    /// `--to`.
    pub to: String,
    /// `--from`.
    pub from: Option<String>,
    /// Pace and limits.
    pub policy: Policy,
    /// Time between steps.
    pub interval: Duration,
}

impl Plan {
    /// The plan from `meshlet canary`'s flags.
    pub fn from_args(args: &CanaryArgs, namespace: &str) -> Plan {
        Plan {
            namespace: namespace.to_string(),
            split: args.trafficsplit.clone(),
            to: args.to.clone(),
            from: args.from.clone(),
            policy: Policy {
                step: args.step.into(),
                max_failure_rate: args.max_failure_rate,
                max_p99_ms: args.max_p99.as_secs_f64() * 1000.0,
                min_requests: args.min_requests,
                max_idle_intervals: args.max_idle_intervals,
            },
            interval: args.interval,
        }
    }
}

fn write_weights_line(out: &mut impl Write, pair: &split::Pair, state: &State) {
    let (canary, primary) = state.weights();
    let _ = writeln!(
        out,
        "weights: {} {canary}%, {} {primary}%",
        pair.canary, pair.primary
    );
}

/// Runs the canary to its end (or until `stop` turns true), printing one
/// line per step to `out`.
pub async fn drive(
    client: &kube::Client,
    plan: &Plan,
    metrics: &impl CanaryMetrics,
    mut stop: watch::Receiver<bool>,
    out: &mut (impl Write + Send),
) -> anyhow::Result<Outcome> {
    let api: Api<TrafficSplit> = Api::namespaced(client.clone(), &plan.namespace);
    let current = split::read(&api, &plan.split).await?;
    let pair = split::pair(&current, &plan.to, plan.from.as_deref())?;
    let mut state = plan
        .policy
        .start(split::canary_percent(&current, &pair.canary));
    let (canary, primary) = state.weights();
    let mut stored = split::write(&api, &current, &pair, canary, primary).await?;
    let _ = writeln!(
        out,
        "canary {}/{}: shifting to {} from {}, {}% per {}",
        plan.namespace,
        plan.split,
        pair.canary,
        pair.primary,
        plan.policy.step,
        crate::duration::format_duration(plan.interval)
    );
    write_weights_line(out, &pair, &state);
    loop {
        let observed = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => None,
            observed = async {
                tokio::time::sleep(plan.interval).await;
                metrics.observe(&plan.namespace, &pair.canary).await
            } => Some(observed),
        };
        let Some(observed) = observed else {
            let canary = state.weights().0;
            let _ = writeln!(
                out,
                "interrupted: weights left at {} {canary}%, {} {}%; run the same command to resume, or add --rollback",
                pair.canary, pair.primary, 100 - canary
            );
            return Ok(Outcome::Interrupted { canary });
        };
        let observed = match observed {
            Ok(o) => o,
            Err(e) => {
                // Not knowing is not healthy: roll back rather than guess.
                state = State::RolledBack {
                    reason: format!("cannot read the canary's metrics: {e:#}"),
                };
                let (c, p) = state.weights();
                split::write(&api, &stored, &pair, c, p).await?;
                let _ = writeln!(out, "rolled back: {e:#}");
                write_weights_line(out, &pair, &state);
                return Ok(Outcome::RolledBack(format!("{e:#}")));
            }
        };
        let _ = writeln!(
            out,
            "observed {}: {} requests, {} failed, p99 {}",
            pair.canary,
            observed.requests,
            observed.failures,
            observed.p99_ms.map_or("-".into(), |p| format!("{p}ms"))
        );
        let next = plan.policy.next(&state, &observed);
        if next.weights() != state.weights() {
            let (c, p) = next.weights();
            stored = split::write(&api, &stored, &pair, c, p).await?;
        }
        state = next;
        match &state {
            State::Progressing { idle, .. } if *idle > 0 => {
                let _ = writeln!(
                    out,
                    "waiting for traffic ({idle}/{})",
                    plan.policy.max_idle_intervals
                );
            }
            State::Progressing { .. } => write_weights_line(out, &pair, &state),
            State::Promoted => {
                let _ = writeln!(out, "promoted: {} has all the traffic", pair.canary);
                return Ok(Outcome::Promoted);
            }
            State::RolledBack { reason } => {
                let _ = writeln!(out, "rolled back: {reason}");
                write_weights_line(out, &pair, &state);
                return Ok(Outcome::RolledBack(reason.clone()));
            }
        }
    }
}

/// Sends `true` on the first Ctrl-C (SIGINT) or SIGTERM.
fn stop_on_signal() -> anyhow::Result<watch::Receiver<bool>> {
    let (tx, rx) = watch::channel(false);
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        // Installed now, before the first write, so a signal during a write
        // is held until the write is done rather than killing the process.
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        tokio::spawn(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            let _ = tx.send(true);
        });
    }
    #[cfg(not(unix))]
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = tx.send(true);
        }
    });
    Ok(rx)
}

/// Runs `meshlet canary`.
pub async fn run(kube: &KubeArgs, args: &CanaryArgs) -> anyhow::Result<ExitCode> {
    let (client, namespace) = kube.client().await?;
    let plan = Plan::from_args(args, &namespace);
    let mut out = std::io::stdout();
    if args.rollback {
        let api: Api<TrafficSplit> = Api::namespaced(client.clone(), &namespace);
        let current = split::read(&api, &plan.split).await?;
        let pair = split::pair(&current, &plan.to, plan.from.as_deref())?;
        split::write(&api, &current, &pair, 0, 100).await?;
        let _ = writeln!(
            out,
            "rolled back: {} 0%, {} 100%",
            pair.canary, pair.primary
        );
        return Ok(ExitCode::SUCCESS);
    }
    let source = TrafficMetricsSource {
        api: MetricsApi::new(client.clone()),
        split: plan.split.clone(),
    };
    // Fail early, before the first write, when the metrics API the canary
    // reads (the split's v1alpha2 edges) is not there.
    if let Some(problem) =
        crate::metrics_api::api_unavailable(&client, crate::metrics_api::APISERVICE_V1ALPHA2).await
    {
        anyhow::bail!("{problem}");
    }
    let stop = stop_on_signal()?;
    Ok(
        match drive(&client, &plan, &source, stop, &mut out).await? {
            Outcome::Promoted => ExitCode::SUCCESS,
            Outcome::RolledBack(_) => ExitCode::FAILURE,
            Outcome::Interrupted { .. } => ExitCode::from(130),
        },
    )
}
