//! The circuit breaker in front of Redis: after `threshold` consecutive failures it
//! opens and the tier is skipped for `cooldown`; then one call probes. A success
//! closes it, a failure opens it again. Each state change is reported once, so a
//! Redis outage costs one log line, not one per call.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The breaker's state as `stats()` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One probe is out; everyone else skips Redis until it answers (or, should the
    /// probe never report, until another cooldown has passed).
    HalfOpen {
        until: Instant,
    },
}

pub struct Breaker {
    state: Mutex<State>,
    threshold: u32,
    cooldown: Duration,
}

/// A state change worth one log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Opened,
    Closed,
}

impl Breaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            state: Mutex::new(State::Closed { failures: 0 }),
            threshold: threshold.max(1),
            cooldown,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a call may go to Redis now (an open breaker past its cooldown lets
    /// exactly one through, as the probe).
    pub fn allow(&self) -> bool {
        let mut state = self.lock();
        let now = Instant::now();
        match *state {
            State::Closed { .. } => true,
            State::Open { until } | State::HalfOpen { until } if now >= until => {
                *state = State::HalfOpen {
                    until: now + self.cooldown,
                };
                true
            }
            State::Open { .. } | State::HalfOpen { .. } => false,
        }
    }

    pub fn success(&self) -> Option<Change> {
        let mut state = self.lock();
        let was_closed = matches!(*state, State::Closed { .. });
        *state = State::Closed { failures: 0 };
        (!was_closed).then_some(Change::Closed)
    }

    pub fn failure(&self) -> Option<Change> {
        let mut state = self.lock();
        let open = State::Open {
            until: Instant::now() + self.cooldown,
        };
        match *state {
            State::Closed { failures } if failures + 1 >= self.threshold => {
                *state = open;
                Some(Change::Opened)
            }
            State::Closed { failures } => {
                *state = State::Closed {
                    failures: failures + 1,
                };
                None
            }
            // A failed probe re-opens quietly: the outage was already reported.
            State::HalfOpen { .. } => {
                *state = open;
                None
            }
            State::Open { .. } => None,
        }
    }

    pub fn state(&self) -> BreakerState {
        match *self.lock() {
            State::Closed { .. } => BreakerState::Closed,
            State::Open { .. } => BreakerState::Open,
            State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_probes_once_and_closes() {
        let breaker = Breaker::new(3, Duration::from_millis(30));
        assert_eq!(breaker.failure(), None);
        assert_eq!(breaker.failure(), None);
        assert!(breaker.allow());
        assert_eq!(breaker.failure(), Some(Change::Opened));
        assert_eq!(breaker.state(), BreakerState::Open);
        assert!(!breaker.allow());
        std::thread::sleep(Duration::from_millis(40));
        assert!(breaker.allow(), "the probe");
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        assert!(!breaker.allow(), "only one probe");
        assert_eq!(breaker.failure(), None);
        assert_eq!(breaker.state(), BreakerState::Open);
        std::thread::sleep(Duration::from_millis(40));
        assert!(breaker.allow());
        assert_eq!(breaker.success(), Some(Change::Closed));
        assert_eq!(breaker.success(), None);
        assert_eq!(breaker.state(), BreakerState::Closed);
    }

    #[test]
    fn a_success_resets_the_count() {
        let breaker = Breaker::new(2, Duration::from_secs(60));
        breaker.failure();
        breaker.success();
        assert_eq!(breaker.failure(), None);
        assert_eq!(breaker.failure(), Some(Change::Opened));
    }
}
