//! Exponential backoff with full jitter for reconnecting.

use std::time::Duration;

/// Doubles from `min` to `max`; each delay is uniformly random up to the
/// current bound, so many proxies do not reconnect in lockstep.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// A backoff between `min` and `max`.
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max,
            attempt: 0,
        }
    }

    /// The upper bound of the next delay.
    pub fn bound(&self) -> Duration {
        self.min
            .saturating_mul(1u32 << self.attempt.min(20))
            .min(self.max)
    }

    /// The next delay.
    pub fn next_delay(&mut self) -> Duration {
        let bound = self.bound();
        self.attempt += 1;
        let ms = bound.as_millis() as u64;
        Duration::from_millis(fastrand::u64(ms / 2..=ms.max(1)))
    }

    /// Back to `min` after a success.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let mut last = Duration::ZERO;
        for _ in 0..10 {
            let d = b.next_delay();
            assert!(d <= Duration::from_secs(1));
            last = d;
        }
        assert!(last >= Duration::from_millis(500));
        assert_eq!(b.bound(), Duration::from_secs(1));
        b.reset();
        assert_eq!(b.bound(), Duration::from_millis(100));
    }
}
