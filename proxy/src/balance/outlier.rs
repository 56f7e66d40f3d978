//! Outlier ejection: an endpoint that fails too often in a row is skipped
//! for a while, then probed with one request; a failed probe ejects it again
//! for twice as long.

use meshlet_crds::contract::config::OutlierPolicy;
use std::time::{Duration, Instant};

/// Failure accounting for one endpoint.
#[derive(Debug, Default, Clone)]
pub struct OutlierState {
    consecutive_failures: u32,
    ejected_until: Option<Instant>,
    ejections: u32,
}

impl OutlierState {
    /// Whether the endpoint may get traffic now.
    pub fn is_available(&self, now: Instant) -> bool {
        self.ejected_until.is_none_or(|t| now >= t)
    }

    /// Records a success: the endpoint is healthy again.
    pub fn record_success(&mut self) {
        self.consecutive_failures = 0;
        self.ejections = 0;
        self.ejected_until = None;
    }

    /// Records a connect error or 5xx. Returns true when this ejected it.
    pub fn record_failure(&mut self, policy: &OutlierPolicy, now: Instant) -> bool {
        if !self.is_available(now) {
            return false;
        }
        self.consecutive_failures += 1;
        let probing = self.ejections > 0;
        if probing || self.consecutive_failures >= policy.consecutive_failures.max(1) {
            let factor = 1u64 << self.ejections.min(16);
            let ms = policy
                .base_ejection_ms
                .saturating_mul(factor)
                .min(policy.max_ejection_ms.max(policy.base_ejection_ms));
            self.ejected_until = Some(now + Duration::from_millis(ms));
            self.ejections += 1;
            self.consecutive_failures = 0;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> OutlierPolicy {
        OutlierPolicy {
            consecutive_failures: 3,
            base_ejection_ms: 100,
            max_ejection_ms: 1000,
        }
    }

    #[test]
    fn ejects_after_consecutive_failures_and_recovers() {
        let t = Instant::now();
        let mut s = OutlierState::default();
        assert!(!s.record_failure(&policy(), t));
        assert!(!s.record_failure(&policy(), t));
        assert!(s.record_failure(&policy(), t));
        assert!(!s.is_available(t + Duration::from_millis(99)));
        assert!(s.is_available(t + Duration::from_millis(100)));
        s.record_success();
        assert!(!s.record_failure(&policy(), t));
    }

    #[test]
    fn a_failed_probe_ejects_again_for_longer() {
        let t = Instant::now();
        let mut s = OutlierState::default();
        for _ in 0..3 {
            s.record_failure(&policy(), t);
        }
        let probe = t + Duration::from_millis(100);
        assert!(s.record_failure(&policy(), probe));
        assert!(!s.is_available(probe + Duration::from_millis(199)));
        assert!(s.is_available(probe + Duration::from_millis(200)));
    }

    #[test]
    fn a_success_in_between_resets_the_count() {
        let t = Instant::now();
        let mut s = OutlierState::default();
        s.record_failure(&policy(), t);
        s.record_failure(&policy(), t);
        s.record_success();
        assert!(!s.record_failure(&policy(), t));
        assert!(s.is_available(t));
    }
}
