//! Subscribers of the config stream, grouped by [`Workload`]: proxies with
//! the same workload get the same config, so it is computed and serialized
//! once per group. Each group holds only the latest snapshot (a
//! `tokio::sync::watch`), so a slow subscriber skips to the newest config
//! and memory per subscriber stays bounded. A group is pushed to only when
//! its serialized config changed. The trust anchors bundle is part of every
//! config; a bundle change pushes to every group.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use meshlet_crds::contract::config::{IdentityConfig, CONFIG_VERSION};
use tokio::sync::watch;

use crate::config::{Computed, Workload};
use crate::metrics::Metrics;

/// One line of the stream, ready to write: a `ConfigMessage` as JSON + `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The message's generation.
    pub generation: u64,
    /// The serialized line.
    pub line: Bytes,
}

struct Group {
    tx: watch::Sender<Option<Arc<Snapshot>>>,
    subscribers: usize,
    /// Serialized (outbound, inbound, identity) of the last push, to
    /// detect changes.
    last: Option<(Bytes, Bytes, Bytes)>,
}

/// All subscriber groups and the latest computation.
pub struct Registry {
    groups: Mutex<HashMap<Workload, Group>>,
    latest: Mutex<Option<Arc<Computed>>>,
    /// The serialized `IdentityConfig` every config carries.
    identity: Mutex<Bytes>,
    generation: AtomicU64,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

/// A live subscription; dropping it unsubscribes.
pub struct Subscription {
    registry: Arc<Registry>,
    workload: Workload,
    /// Receives the group's snapshots; marked changed at subscribe time when
    /// a snapshot exists, so the first `changed()` yields the current config.
    pub rx: watch::Receiver<Option<Arc<Snapshot>>>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.registry.metrics.subscribers.dec();
        let mut groups = self.registry.groups.lock().expect("not poisoned");
        if let Some(group) = groups.get_mut(&self.workload) {
            group.subscribers -= 1;
            if group.subscribers == 0 {
                groups.remove(&self.workload);
            }
        }
    }
}

/// Splices a config's serialized parts into a message line, so the
/// outbound half (the same for a whole namespace) and the identity part
/// (the same for everyone) are serialized once.
fn line(generation: u64, outbound: &[u8], inbound: &[u8], identity: &[u8]) -> Bytes {
    let head = format!(
        "{{\"version\":{CONFIG_VERSION},\"generation\":{generation},\"config\":{{\"outbound\":"
    );
    let mut out =
        Vec::with_capacity(head.len() + outbound.len() + inbound.len() + identity.len() + 32);
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(outbound);
    out.extend_from_slice(b",\"inbound\":");
    out.extend_from_slice(inbound);
    out.extend_from_slice(b",\"identity\":");
    out.extend_from_slice(identity);
    out.extend_from_slice(b"}}\n");
    Bytes::from(out)
}

/// Per-publish cache of serialized outbound halves by namespace.
#[derive(Default)]
struct OutboundCache(HashMap<String, Bytes>);

impl OutboundCache {
    fn get(&mut self, computed: &Computed, namespace: &str) -> Bytes {
        self.0
            .entry(namespace.to_string())
            .or_insert_with(|| {
                Bytes::from(
                    serde_json::to_vec(&computed.outbound_for(namespace))
                        .expect("configs serialize"),
                )
            })
            .clone()
    }
}

impl Registry {
    /// An empty registry. Generations start at the current Unix time in
    /// milliseconds, so they keep growing across operator restarts.
    pub fn new(metrics: Arc<Metrics>) -> Arc<Registry> {
        let start = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(1);
        Arc::new(Registry {
            groups: Mutex::default(),
            latest: Mutex::default(),
            identity: Mutex::new(Bytes::from(
                serde_json::to_vec(&IdentityConfig::default()).expect("configs serialize"),
            )),
            generation: AtomicU64::new(start),
            metrics,
        })
    }

    fn next_generation(&self) -> u64 {
        self.generation.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Pushes into `group` if its config under `computed` differs from the
    /// last one pushed; returns whether it pushed.
    fn refresh(
        &self,
        computed: &Computed,
        workload: &Workload,
        group: &mut Group,
        cache: &mut OutboundCache,
        generation: u64,
    ) -> bool {
        let outbound = cache.get(computed, &workload.namespace);
        let inbound = Bytes::from(
            serde_json::to_vec(&computed.inbound_for(workload)).expect("configs serialize"),
        );
        let identity = self.identity.lock().expect("not poisoned").clone();
        let parts = (outbound, inbound, identity);
        if group.last.as_ref() == Some(&parts) {
            return false;
        }
        let snapshot = Snapshot {
            generation,
            line: line(generation, &parts.0, &parts.1, &parts.2),
        };
        group.last = Some(parts);
        group.tx.send_replace(Some(Arc::new(snapshot)));
        self.metrics.config_pushes.inc();
        true
    }

    /// Subscribes a proxy of `workload`. If a config was computed already,
    /// the subscription's first message is it.
    pub fn subscribe(self: &Arc<Self>, workload: Workload) -> Subscription {
        let latest = self.latest.lock().expect("not poisoned").clone();
        let mut groups = self.groups.lock().expect("not poisoned");
        let group = groups.entry(workload.clone()).or_insert_with(|| Group {
            tx: watch::Sender::new(None),
            subscribers: 0,
            last: None,
        });
        group.subscribers += 1;
        if group.last.is_none() {
            if let Some(computed) = latest {
                let generation = self.next_generation();
                self.refresh(
                    &computed,
                    &workload,
                    group,
                    &mut OutboundCache::default(),
                    generation,
                );
            }
        }
        let mut rx = group.tx.subscribe();
        if rx.borrow().is_some() {
            rx.mark_changed();
        }
        self.metrics.subscribers.inc();
        Subscription {
            registry: self.clone(),
            workload,
            rx,
        }
    }

    /// Makes `computed` the current state and pushes to every group whose
    /// config changed; returns how many groups were pushed to.
    pub fn publish(&self, computed: Arc<Computed>) -> usize {
        *self.latest.lock().expect("not poisoned") = Some(computed.clone());
        let generation = self.next_generation();
        let mut cache = OutboundCache::default();
        let mut groups = self.groups.lock().expect("not poisoned");
        let mut pushed = 0;
        for (workload, group) in groups.iter_mut() {
            if self.refresh(&computed, workload, group, &mut cache, generation) {
                pushed += 1;
            }
        }
        pushed
    }

    /// Makes `identity` part of every config and pushes it to every group;
    /// returns how many groups were pushed to.
    pub fn set_identity(&self, identity: &IdentityConfig) -> usize {
        let serialized = Bytes::from(serde_json::to_vec(identity).expect("configs serialize"));
        {
            let mut current = self.identity.lock().expect("not poisoned");
            if *current == serialized {
                return 0;
            }
            *current = serialized;
        }
        let latest = self.latest.lock().expect("not poisoned").clone();
        match latest {
            Some(computed) => self.publish(computed),
            None => 0,
        }
    }

    /// Number of subscriber groups (distinct workloads).
    pub fn groups(&self) -> usize {
        self.groups.lock().expect("not poisoned").len()
    }

    /// Whether a computation has been published yet.
    pub fn has_state(&self) -> bool {
        self.latest.lock().expect("not poisoned").is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MeshSettings;
    use crate::fixtures::*;
    use crate::state::ClusterState;
    use meshlet_crds::contract::config::ConfigMessage;

    fn state(weight: u64) -> ClusterState {
        ClusterState {
            services: vec![
                Arc::new(service("ns", "web", &[("", 80, 80)])),
                Arc::new(service("ns", "web-v1", &[("", 80, 80)])),
            ],
            traffic_splits: vec![Arc::new(traffic_split(
                "ns",
                "s",
                "web",
                &[("web-v1", weight)],
            ))],
            ..Default::default()
        }
    }

    fn computed(weight: u64) -> Arc<Computed> {
        Arc::new(Computed::new(&state(weight), &MeshSettings::default()))
    }

    fn workload(namespace: &str, sa: &str) -> Workload {
        Workload {
            namespace: namespace.into(),
            service_account: sa.into(),
            ports: vec![8080],
            probes: vec![],
        }
    }

    fn decode(s: &Snapshot) -> ConfigMessage {
        serde_json::from_slice(&s.line).expect("a valid ConfigMessage")
    }

    fn weight(s: &Snapshot) -> u32 {
        let msg = decode(s);
        let web = msg
            .config
            .outbound
            .services
            .iter()
            .find(|s| s.name == "web")
            .unwrap();
        web.split.as_ref().unwrap().backends[0].weight
    }

    #[test]
    fn spliced_line_is_the_contract_message() {
        let c = computed(5);
        let w = workload("ns", "a");
        let identity = IdentityConfig {
            trust_anchors_pem: "PEM".into(),
        };
        let l = line(
            42,
            &serde_json::to_vec(&c.outbound_for("ns")).unwrap(),
            &serde_json::to_vec(&c.inbound_for(&w)).unwrap(),
            &serde_json::to_vec(&identity).unwrap(),
        );
        assert!(l.ends_with(b"}\n"));
        let msg: ConfigMessage = serde_json::from_slice(&l).unwrap();
        assert_eq!(msg.version, CONFIG_VERSION);
        assert_eq!(msg.generation, 42);
        let mut want = c.proxy_config(&w);
        want.identity = identity;
        assert_eq!(msg.config, want);
    }

    #[tokio::test]
    async fn a_trust_anchors_change_pushes_to_every_group() {
        let registry = Registry::new(Arc::default());
        registry.publish(computed(1));
        let mut a = registry.subscribe(workload("ns", "a"));
        let mut b = registry.subscribe(workload("other", "b"));
        a.rx.borrow_and_update();
        b.rx.borrow_and_update();
        let bundle = IdentityConfig {
            trust_anchors_pem: "ANCHORS".into(),
        };
        assert_eq!(registry.set_identity(&bundle), 2);
        for sub in [&mut a, &mut b] {
            assert!(sub.rx.has_changed().unwrap());
            let snapshot = sub.rx.borrow_and_update().clone().unwrap();
            assert_eq!(decode(&snapshot).config.identity, bundle);
        }
        assert_eq!(registry.set_identity(&bundle), 0, "same bundle: no push");
        // New subscribers get it too.
        let c = registry.subscribe(workload("ns", "c"));
        let snapshot = c.rx.borrow().clone().unwrap();
        assert_eq!(decode(&snapshot).config.identity, bundle);
    }

    #[tokio::test]
    async fn pushes_only_changed_groups_and_keeps_only_the_latest() {
        let registry = Registry::new(Arc::default());
        let mut a = registry.subscribe(workload("ns", "a"));
        assert!(a.rx.borrow().is_none(), "nothing computed yet");
        assert_eq!(registry.publish(computed(1)), 1);
        a.rx.changed().await.unwrap();
        let first = a.rx.borrow_and_update().clone().unwrap();
        assert_eq!(weight(&first), 1);

        // Same config again: no push.
        assert_eq!(registry.publish(computed(1)), 0);
        assert!(!a.rx.has_changed().unwrap());

        // A late subscriber of another workload gets the current config at once.
        let mut b = registry.subscribe(workload("other", "b"));
        assert!(b.rx.has_changed().unwrap());
        let b_first = b.rx.borrow_and_update().clone().unwrap();
        assert!(b_first.generation > first.generation);

        // Three changes while `a` does not read: it sees only the last.
        for w in [2, 3, 4] {
            assert_eq!(registry.publish(computed(w)), 2);
        }
        a.rx.changed().await.unwrap();
        let last = a.rx.borrow_and_update().clone().unwrap();
        assert_eq!(weight(&last), 4);
        assert!(last.generation > b_first.generation);
        assert!(!a.rx.has_changed().unwrap());
    }

    #[tokio::test]
    async fn groups_are_shared_and_dropped_with_their_last_subscriber() {
        let registry = Registry::new(Arc::default());
        registry.publish(computed(1));
        let a1 = registry.subscribe(workload("ns", "a"));
        let a2 = registry.subscribe(workload("ns", "a"));
        assert_eq!(registry.groups(), 1);
        assert_eq!(
            a1.rx.borrow().as_ref().unwrap().generation,
            a2.rx.borrow().as_ref().unwrap().generation
        );
        drop(a1);
        assert_eq!(registry.groups(), 1);
        drop(a2);
        assert_eq!(registry.groups(), 0);
    }
}
