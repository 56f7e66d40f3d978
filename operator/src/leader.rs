//! Leader election on a `coordination.k8s.io` Lease, so two replicas are
//! safe: both serve the config stream (it only reads), and only the leader
//! writes (Events). The holder renews every `renew`; another replica takes
//! over once `duration` passed without renewal. Optimistic concurrency
//! (resourceVersion) makes a takeover race have one winner.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use tokio::sync::watch;

use crate::metrics::Metrics;

/// Which Lease, who we are, and the timings.
#[derive(Clone, Debug)]
pub struct LeaderSettings {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease.
    pub name: String,
    /// This replica's identity (its pod name).
    pub identity: String,
    /// How long a lease is valid without renewal.
    pub duration: Duration,
    /// How often the holder renews (and others retry).
    pub renew: Duration,
}

/// Whether `lease` is free for `identity` to take at `now`.
fn takeable(spec: &LeaseSpec, identity: &str, now: Timestamp) -> bool {
    let holder = spec.holder_identity.as_deref().unwrap_or_default();
    if holder.is_empty() || holder == identity {
        return true;
    }
    let Some(MicroTime(renewed)) = spec.renew_time.as_ref() else {
        return true;
    };
    let duration = SignedDuration::from_secs(spec.lease_duration_seconds.unwrap_or(15).into());
    renewed
        .saturating_add(duration)
        .map(|expiry| expiry < now)
        .unwrap_or(true)
}

/// One acquire-or-renew attempt; returns whether we hold the lease after it.
async fn try_acquire(api: &Api<Lease>, s: &LeaderSettings) -> kube::Result<bool> {
    let now = Timestamp::now();
    let seconds = i32::try_from(s.duration.as_secs().max(1)).unwrap_or(i32::MAX);
    let Some(mut lease) = api.get_opt(&s.name).await? else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(s.name.clone()),
                namespace: Some(s.namespace.clone()),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(s.identity.clone()),
                lease_duration_seconds: Some(seconds),
                acquire_time: Some(MicroTime(now)),
                renew_time: Some(MicroTime(now)),
                lease_transitions: Some(0),
                ..Default::default()
            }),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        };
    };
    let spec = lease.spec.get_or_insert_with(Default::default);
    if !takeable(spec, &s.identity, now) {
        return Ok(false);
    }
    if spec.holder_identity.as_deref() != Some(s.identity.as_str()) {
        spec.holder_identity = Some(s.identity.clone());
        spec.acquire_time = Some(MicroTime(now));
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
    }
    spec.renew_time = Some(MicroTime(now));
    spec.lease_duration_seconds = Some(seconds);
    // `replace` sends our resourceVersion: a concurrent writer makes it 409.
    match api.replace(&s.name, &PostParams::default(), &lease).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Starts electing; the receiver says whether this replica leads now.
pub fn run(
    client: Client,
    settings: LeaderSettings,
    metrics: Arc<Metrics>,
) -> (
    watch::Receiver<bool>,
    impl std::future::Future<Output = ()> + Send,
) {
    let (tx, rx) = watch::channel(false);
    let api: Api<Lease> = Api::namespaced(client, &settings.namespace);
    let fut = async move {
        let mut last_renewal = tokio::time::Instant::now();
        loop {
            let leading = match try_acquire(&api, &settings).await {
                Ok(held) => {
                    if held {
                        last_renewal = tokio::time::Instant::now();
                    }
                    held
                }
                Err(error) => {
                    tracing::warn!(%error, lease = %settings.name, "lease renewal failed");
                    // Keep leading only while our last renewal is still valid.
                    *tx.borrow() && last_renewal.elapsed() < settings.duration
                }
            };
            if *tx.borrow() != leading {
                tracing::info!(identity = %settings.identity, leading, "leadership changed");
            }
            metrics.leader.set(leading.into());
            tx.send_replace(leading);
            tokio::time::sleep(settings.renew).await;
        }
    };
    (rx, fut)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_is_takeable_when_free_ours_or_expired() {
        let now: Timestamp = "2026-01-01T00:01:00Z".parse().unwrap();
        let spec = |holder: &str, renewed: &str| LeaseSpec {
            holder_identity: Some(holder.into()),
            renew_time: Some(MicroTime(renewed.parse().unwrap())),
            lease_duration_seconds: Some(15),
            ..Default::default()
        };
        assert!(takeable(&LeaseSpec::default(), "a", now));
        assert!(takeable(&spec("a", "2026-01-01T00:00:59Z"), "a", now));
        assert!(!takeable(&spec("b", "2026-01-01T00:00:50Z"), "a", now));
        assert!(takeable(&spec("b", "2026-01-01T00:00:40Z"), "a", now));
    }
}
