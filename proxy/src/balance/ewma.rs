//! Peak-EWMA latency estimate: jumps up to any slower observation at once,
//! decays towards faster ones (and towards zero while idle, so a slow
//! endpoint is tried again after a while).

use std::time::{Duration, Instant};

/// How fast the estimate forgets: the decay time constant.
const DECAY: Duration = Duration::from_secs(10);

/// Estimate used before the first observation (Linkerd's default RTT).
const DEFAULT_RTT: Duration = Duration::from_millis(30);

/// A peak-sensitive moving average of response latency.
#[derive(Debug, Clone)]
pub struct PeakEwma {
    estimate_ns: f64,
    updated: Instant,
}

impl PeakEwma {
    /// A fresh estimate at the default RTT.
    pub fn new(now: Instant) -> Self {
        Self {
            estimate_ns: DEFAULT_RTT.as_nanos() as f64,
            updated: now,
        }
    }

    fn decay_weight(&self, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.updated).as_nanos() as f64;
        (-elapsed / DECAY.as_nanos() as f64).exp()
    }

    /// Records one observed latency.
    pub fn observe(&mut self, rtt: Duration, now: Instant) {
        let rtt = rtt.as_nanos() as f64;
        if rtt > self.estimate_ns {
            self.estimate_ns = rtt;
        } else {
            let w = self.decay_weight(now);
            self.estimate_ns = self.estimate_ns * w + rtt * (1.0 - w);
        }
        self.updated = now;
    }

    /// The estimate in nanoseconds, decayed towards zero for the idle time.
    pub fn estimate_ns(&self, now: Instant) -> f64 {
        self.estimate_ns * self.decay_weight(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jumps_to_peaks_and_decays_to_fast_observations() {
        let t0 = Instant::now();
        let mut e = PeakEwma::new(t0);
        e.observe(Duration::from_millis(100), t0);
        assert!((e.estimate_ns(t0) - 100e6).abs() < 1.0);
        let t1 = t0 + Duration::from_secs(5);
        e.observe(Duration::from_millis(1), t1);
        let v = e.estimate_ns(t1);
        assert!(v < 100e6 && v > 1e6, "{v}");
    }

    #[test]
    fn decays_while_idle() {
        let t0 = Instant::now();
        let e = PeakEwma::new(t0);
        assert!(e.estimate_ns(t0 + Duration::from_secs(60)) < 1e6);
    }
}
