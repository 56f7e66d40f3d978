//! Per-endpoint state shared by every request to it, surviving config swaps:
//! latency estimate, requests in flight, outlier state and the connection
//! pool.

use super::{OutlierState, PeakEwma};
use crate::http::pool::ConnPool;
use meshlet_crds::contract::config::OutlierPolicy;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One backend instance.
#[derive(Debug)]
pub struct Endpoint {
    /// Where it listens.
    pub addr: SocketAddr,
    ewma: Mutex<PeakEwma>,
    in_flight: AtomicUsize,
    outlier: Mutex<OutlierState>,
    /// Reusable HTTP connections to it.
    pub pool: ConnPool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Endpoint {
    /// Fresh state for `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            ewma: Mutex::new(PeakEwma::new(Instant::now())),
            in_flight: AtomicUsize::new(0),
            outlier: Mutex::new(OutlierState::default()),
            pool: ConnPool::new(addr),
        }
    }

    /// Latency estimate (ns) × (requests in flight + 1).
    pub fn load(&self, now: Instant) -> f64 {
        let pending = self.in_flight.load(Ordering::Relaxed) as f64;
        lock(&self.ewma).estimate_ns(now) * (pending + 1.0)
    }

    /// Records a response latency.
    pub fn observe_latency(&self, rtt: Duration) {
        lock(&self.ewma).observe(rtt, Instant::now());
    }

    /// Counts a request in flight until the guard drops.
    pub fn start_request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// Whether outlier ejection lets it take traffic now.
    pub fn is_available(&self, now: Instant) -> bool {
        lock(&self.outlier).is_available(now)
    }

    /// Records a success (a response below 500, or a TCP connect).
    pub fn record_success(&self) {
        lock(&self.outlier).record_success();
    }

    /// Records a connect error or a 5xx.
    pub fn record_failure(&self, policy: &OutlierPolicy) {
        if lock(&self.outlier).record_failure(policy, Instant::now()) {
            tracing::info!(endpoint = %self.addr, "endpoint ejected after failures");
        }
    }
}

/// Keeps one request counted in flight on an endpoint.
#[derive(Debug)]
pub struct InFlight(Arc<Endpoint>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// All endpoints by address, so state and pools survive a config swap.
#[derive(Debug, Default)]
pub struct EndpointRegistry {
    endpoints: Mutex<HashMap<SocketAddr, Arc<Endpoint>>>,
}

impl EndpointRegistry {
    /// The endpoint for `addr`, created on first use.
    pub fn get(&self, addr: SocketAddr) -> Arc<Endpoint> {
        lock(&self.endpoints)
            .entry(addr)
            .or_insert_with(|| Arc::new(Endpoint::new(addr)))
            .clone()
    }

    /// Like [`get`](Self::get), but keeps at most `cap` endpoints: when a
    /// new one would exceed it, the others are forgotten (their requests in
    /// flight finish). For destinations outside the config, which are
    /// unbounded.
    pub fn get_bounded(&self, addr: SocketAddr, cap: usize) -> Arc<Endpoint> {
        let mut map = lock(&self.endpoints);
        if map.len() >= cap && !map.contains_key(&addr) {
            map.clear();
        }
        map.entry(addr)
            .or_insert_with(|| Arc::new(Endpoint::new(addr)))
            .clone()
    }

    /// Forgets endpoints not in `keep`; requests still using them finish.
    pub fn retain(&self, keep: &std::collections::HashSet<SocketAddr>) {
        lock(&self.endpoints).retain(|addr, _| keep.contains(addr));
    }

    /// How many endpoints are known.
    pub fn len(&self) -> usize {
        lock(&self.endpoints).len()
    }

    /// Whether no endpoint is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_registry_stays_bounded_and_reuses_state() {
        let r = EndpointRegistry::default();
        let a = SocketAddr::from(([10, 0, 0, 1], 80));
        let first = r.get_bounded(a, 4);
        assert!(Arc::ptr_eq(&first, &r.get_bounded(a, 4)));
        for port in 1..100 {
            r.get_bounded(SocketAddr::from(([10, 0, 0, 2], port)), 4);
            assert!(r.len() <= 4);
        }
    }
}
