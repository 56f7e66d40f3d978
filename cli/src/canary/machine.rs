//! The canary's decisions as a pure state machine: from the canary's share
//! and one interval's observation to the next share, a promotion or a
//! rollback. No clock, no network: the driver feeds it.

/// The limits and pace of a canary.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Percent added to the canary per healthy interval (1–100).
    pub step: u64,
    /// Highest tolerated failure rate (0–1).
    pub max_failure_rate: f64,
    /// Highest tolerated p99 latency, ms.
    pub max_p99_ms: f64,
    /// Requests an interval needs to count.
    pub min_requests: u64,
    /// Intervals in a row without enough requests before rolling back.
    pub max_idle_intervals: u32,
}

/// Where a canary stands.
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    /// The canary gets `canary` percent; `idle` intervals in a row had too
    /// few requests to judge.
    Progressing {
        /// The canary's share, percent (1–100).
        canary: u64,
        /// Intervals in a row without enough requests.
        idle: u32,
    },
    /// The canary was healthy at 100%: done.
    Promoted,
    /// A limit was breached; all traffic back to the primary.
    RolledBack {
        /// Why, in words.
        reason: String,
    },
}

/// What the canary did in one interval.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Observation {
    /// Responses in the interval.
    pub requests: u64,
    /// Failed responses in the interval.
    pub failures: u64,
    /// 99th percentile latency, ms, when there was traffic.
    pub p99_ms: Option<f64>,
}

impl State {
    /// The canary's and the primary's share, percent.
    pub fn weights(&self) -> (u64, u64) {
        match self {
            State::Progressing { canary, .. } => (*canary, 100 - canary),
            State::Promoted => (100, 0),
            State::RolledBack { .. } => (0, 100),
        }
    }

    /// Whether the canary is over (promoted or rolled back).
    pub fn is_final(&self) -> bool {
        !matches!(self, State::Progressing { .. })
    }
}

impl Policy {
    /// The first state, given the canary's current share: a canary with no
    /// traffic yet starts at one step; one already under way (a resumed
    /// run) carries on from where it is.
    pub fn start(&self, current_canary: u64) -> State {
        let canary = if current_canary == 0 {
            self.step.clamp(1, 100)
        } else {
            current_canary.min(100)
        };
        State::Progressing { canary, idle: 0 }
    }

    /// The state after one interval with `observed` traffic.
    pub fn next(&self, state: &State, observed: &Observation) -> State {
        let State::Progressing { canary, idle } = *state else {
            return state.clone();
        };
        if observed.requests < self.min_requests.max(1) {
            let idle = idle + 1;
            if idle >= self.max_idle_intervals {
                return State::RolledBack {
                    reason: format!(
                        "fewer than {} requests reached the canary in {idle} intervals in a row",
                        self.min_requests.max(1)
                    ),
                };
            }
            return State::Progressing { canary, idle };
        }
        let failure_rate = observed.failures as f64 / observed.requests as f64;
        if failure_rate > self.max_failure_rate {
            return State::RolledBack {
                reason: format!(
                    "failure rate {:.2}% ({} of {}) above the limit {:.2}%",
                    failure_rate * 100.0,
                    observed.failures,
                    observed.requests,
                    self.max_failure_rate * 100.0
                ),
            };
        }
        if let Some(p99) = observed.p99_ms.filter(|p99| *p99 > self.max_p99_ms) {
            return State::RolledBack {
                reason: format!("p99 latency {p99}ms above the limit {}ms", self.max_p99_ms),
            };
        }
        if canary >= 100 {
            return State::Promoted;
        }
        State::Progressing {
            canary: (canary + self.step).min(100),
            idle: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            step: 30,
            max_failure_rate: 0.01,
            max_p99_ms: 500.0,
            min_requests: 10,
            max_idle_intervals: 2,
        }
    }

    fn ok() -> Observation {
        Observation {
            requests: 100,
            failures: 1,
            p99_ms: Some(499.0),
        }
    }

    #[test]
    fn healthy_canary_steps_to_100_then_is_promoted() {
        let p = policy();
        let mut state = p.start(0);
        let mut shares = vec![state.weights().0];
        while !state.is_final() {
            state = p.next(&state, &ok());
            shares.push(state.weights().0);
        }
        assert_eq!(state, State::Promoted);
        assert_eq!(shares, [30, 60, 90, 100, 100]);
        assert_eq!(state.weights(), (100, 0));
    }

    #[test]
    fn a_failure_rate_above_the_limit_rolls_back() {
        let p = policy();
        let state = p.next(
            &p.start(0),
            &Observation {
                requests: 100,
                failures: 2,
                p99_ms: Some(1.0),
            },
        );
        let State::RolledBack { reason } = &state else {
            panic!("{state:?}")
        };
        assert!(reason.contains("failure rate 2.00%"), "{reason}");
        assert_eq!(state.weights(), (0, 100));
        // Final states stay final.
        assert_eq!(p.next(&state, &ok()), state);
    }

    #[test]
    fn a_p99_above_the_limit_rolls_back_even_at_100() {
        let p = policy();
        let state = p.next(
            &p.start(100),
            &Observation {
                requests: 100,
                failures: 0,
                p99_ms: Some(501.0),
            },
        );
        assert!(
            matches!(state, State::RolledBack { ref reason } if reason.contains("p99")),
            "{state:?}"
        );
    }

    #[test]
    fn too_little_traffic_holds_then_rolls_back() {
        let p = policy();
        let quiet = Observation {
            requests: 9,
            failures: 0,
            p99_ms: Some(1.0),
        };
        let held = p.next(&p.start(0), &quiet);
        assert_eq!(
            held,
            State::Progressing {
                canary: 30,
                idle: 1
            }
        );
        // Traffic again resets the idle count and advances.
        assert_eq!(
            p.next(&held, &ok()),
            State::Progressing {
                canary: 60,
                idle: 0
            }
        );
        let rolled = p.next(&held, &quiet);
        assert!(
            matches!(rolled, State::RolledBack { ref reason } if reason.contains("2 intervals")),
            "{rolled:?}"
        );
    }

    #[test]
    fn a_resumed_canary_carries_on_from_its_share() {
        let p = policy();
        assert_eq!(
            p.start(45),
            State::Progressing {
                canary: 45,
                idle: 0
            }
        );
        assert_eq!(
            p.next(&p.start(45), &ok()),
            State::Progressing {
                canary: 75,
                idle: 0
            }
        );
        assert_eq!(
            p.start(0),
            State::Progressing {
                canary: 30,
                idle: 0
            }
        );
    }

    #[test]
    fn limits_are_inclusive() {
        let p = policy();
        let at_limits = Observation {
            requests: 100,
            failures: 1,
            p99_ms: Some(500.0),
        };
        assert_eq!(
            p.next(&p.start(0), &at_limits),
            State::Progressing {
                canary: 60,
                idle: 0
            }
        );
    }
}
