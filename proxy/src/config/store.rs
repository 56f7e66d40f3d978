//! The current config as an atomically swapped, immutable snapshot: a
//! request loads it once and keeps it, so a swap never disturbs requests in
//! flight.

use crate::balance::EndpointRegistry;
use crate::inbound::InboundPolicy;
use crate::outbound::table::{endpoint_identity, Table};
use arc_swap::ArcSwap;
use meshlet_crds::contract::config::ProxyConfig;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// One compiled config.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// The stream's generation (0 for a static file).
    pub generation: u64,
    /// The config as received, served on `/config`.
    pub config: ProxyConfig,
    /// Outbound routing.
    pub outbound: Table,
    /// Inbound ports and policy.
    pub inbound: InboundPolicy,
}

/// Holds the current [`Snapshot`].
#[derive(Debug)]
pub struct ConfigStore {
    current: ArcSwap<Snapshot>,
    registry: Arc<EndpointRegistry>,
    loaded: AtomicBool,
    changed: tokio::sync::watch::Sender<u64>,
}

impl Default for ConfigStore {
    fn default() -> Self {
        Self {
            current: ArcSwap::from_pointee(Snapshot::default()),
            registry: Arc::default(),
            loaded: AtomicBool::new(false),
            changed: tokio::sync::watch::channel(0).0,
        }
    }
}

impl ConfigStore {
    /// The current snapshot.
    pub fn load(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Whether a config was ever applied (readiness).
    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// Notified with the generation after every swap.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Compiles `config` and swaps it in. An invalid config is rejected and
    /// the previous one stays.
    pub fn apply(&self, generation: u64, config: ProxyConfig) -> Result<(), String> {
        self.forget_reidentified(&config);
        let outbound = Table::build(&config.outbound, &self.registry)?;
        let inbound = InboundPolicy::build(&config.inbound)?;
        let keep: HashSet<_> = outbound.endpoint_addrs().collect();
        self.current.store(Arc::new(Snapshot {
            generation,
            config,
            outbound,
            inbound,
        }));
        self.registry.retain(&keep);
        self.loaded.store(true, Ordering::Release);
        self.changed.send_replace(generation);
        tracing::info!(generation, "config applied");
        Ok(())
    }

    /// An address whose expected identity (or meshed-ness) changes gets a
    /// fresh endpoint, so pooled connections made for the old identity (or
    /// in plaintext) are not reused; requests in flight keep the old one.
    fn forget_reidentified(&self, config: &ProxyConfig) {
        let old = self.current.load();
        let known: HashSet<_> = old.outbound.endpoint_addrs().collect();
        let changed: HashSet<_> = config
            .outbound
            .services
            .iter()
            .flat_map(|s| s.ports.iter())
            .flat_map(|p| p.endpoints.iter())
            .filter(|e| {
                let new = endpoint_identity(e, "").ok().flatten();
                known.contains(&e.addr) && old.outbound.server_identity(e.addr) != new.as_ref()
            })
            .map(|e| e.addr)
            .collect();
        if !changed.is_empty() {
            let keep: HashSet<_> = known.difference(&changed).copied().collect();
            self.registry.retain(&keep);
        }
    }

    /// Endpoint state shared across snapshots.
    pub fn registry(&self) -> &Arc<EndpointRegistry> {
        &self.registry
    }
}
