//! Retry budget: retries may add at most `ratio` of the request rate, plus a
//! small floor per second, so retries cannot snowball into an overload.

use std::sync::Mutex;
use std::time::Instant;

/// A token bucket filled by requests and drained by retries.
#[derive(Debug)]
pub struct RetryBudget {
    ratio: f64,
    min_per_second: f64,
    state: Mutex<(f64, Instant)>,
}

impl RetryBudget {
    /// A budget allowing `ratio` retries per request and `min_per_second`.
    pub fn new(ratio: f64, min_per_second: u32) -> Self {
        let min = f64::from(min_per_second);
        Self {
            ratio: ratio.max(0.0),
            min_per_second: min,
            state: Mutex::new((min, Instant::now())),
        }
    }

    fn cap(&self) -> f64 {
        (self.min_per_second + 100.0 * self.ratio).max(1.0)
    }

    /// Called once per request.
    pub fn deposit(&self) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.0 = (s.0 + self.ratio).min(self.cap());
    }

    /// Takes one retry from the budget; false when exhausted.
    pub fn withdraw(&self) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let refill = now.duration_since(s.1).as_secs_f64() * self.min_per_second;
        s.1 = now;
        s.0 = (s.0 + refill).min(self.cap());
        if s.0 >= 1.0 {
            s.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_are_bounded_by_the_ratio() {
        let b = RetryBudget::new(0.5, 0);
        assert!(!b.withdraw());
        b.deposit();
        assert!(!b.withdraw());
        b.deposit();
        assert!(b.withdraw());
        assert!(!b.withdraw());
    }

    #[test]
    fn the_floor_allows_some_retries_without_traffic() {
        let b = RetryBudget::new(0.0, 2);
        assert!(b.withdraw());
        assert!(b.withdraw());
        assert!(!b.withdraw());
    }
}
