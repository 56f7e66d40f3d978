//! Publishes misconfigurations of SMI objects ([`Finding`]s) as Kubernetes
//! Warning Events (kube-runtime's `Recorder`), once per new finding, and
//! only on the leader so two replicas do not report twice.

use std::collections::HashSet;
use std::sync::Arc;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder};

use crate::config::Finding;
use crate::context::Context;

/// The Event's `action` for every finding.
pub const ACTION: &str = "Resolve";

/// The object reference an Event about `finding` regards.
pub fn reference(finding: &Finding) -> ObjectReference {
    let o = &finding.object;
    ObjectReference {
        api_version: Some(o.api_version.clone()),
        kind: Some(o.kind.clone()),
        namespace: Some(o.namespace.clone()),
        name: Some(o.name.clone()),
        uid: o.uid.clone(),
        ..Default::default()
    }
}

/// Runs until the operator stops.
pub async fn run(ctx: Arc<Context>) {
    let recorder = Recorder::new(ctx.client.clone(), ctx.settings.reporter.clone());
    let mut findings = ctx.findings.subscribe();
    let mut leader = ctx.leader.clone();
    let mut published: HashSet<Finding> = HashSet::new();
    let mut leader_open = true;
    loop {
        if *leader.borrow_and_update() {
            let current: Vec<Finding> = findings.borrow_and_update().clone();
            let mut next = HashSet::new();
            for finding in current {
                if published.contains(&finding) || publish(&ctx, &recorder, &finding).await {
                    next.insert(finding);
                }
            }
            // Resolved findings are forgotten, so a recurrence is reported
            // again; failed ones are retried on the next change.
            published = next;
        } else {
            // A new leader reports what is wrong from scratch.
            published.clear();
        }
        // Without election the leader channel never changes (and may be
        // closed): then only findings matter.
        tokio::select! {
            changed = findings.changed() => if changed.is_err() { return },
            changed = leader.changed(), if leader_open => leader_open = changed.is_ok(),
        }
    }
}

async fn publish(ctx: &Context, recorder: &Recorder, finding: &Finding) -> bool {
    let event = Event {
        type_: EventType::Warning,
        reason: finding.reason.into(),
        note: Some(finding.message.chars().take(1000).collect()),
        action: ACTION.into(),
        secondary: None,
    };
    match recorder.publish(&event, &reference(finding)).await {
        Ok(()) => {
            tracing::debug!(object = %finding.object, reason = finding.reason, "Event published");
            ctx.metrics.events_published.inc();
            true
        }
        Err(error) => {
            tracing::warn!(object = %finding.object, %error, "publishing an Event failed");
            false
        }
    }
}
