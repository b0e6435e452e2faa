//! Refresh-ahead: when a cached token should be renewed before it expires, and the
//! per-key state that keeps one refresh per key at a time and spaces out retries.
//!
//! moka has no refresh-after-write (moka issue 467), so this sits beside the local
//! tier: each token carries its refresh point (`OboToken::refresh_at`, fixed when it
//! is stored, jitter included), and a hit past that point asks `Refreshes::claim`
//! whether it should start the refresh. Only hits past the point touch this table,
//! so an ordinary hit costs one integer comparison more.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use super::token::OboToken;
use super::traffic::Traffic;

/// A refresh point that is never reached: refresh-ahead is off for the token.
pub const NEVER: u64 = u64::MAX;
/// The refresh point moves by up to this share of itself, either way, so that a fleet
/// of processes that obtained their tokens together does not refresh in step.
pub const JITTER: f64 = 0.05;
/// The refresh point is never later than this share of the usable lifetime, so that
/// some hits still fall between it and the end (a `refresh_in` or fraction near 1).
const LATEST: f64 = 0.95;
/// The first wait after a failed refresh is this share of the usable lifetime, within
/// `MIN_BACKOFF..=MAX_FIRST_BACKOFF`, doubling with each failure up to `MAX_BACKOFF`.
const BACKOFF_SHARE: f64 = 0.05;
const MIN_BACKOFF: Duration = Duration::from_secs(1);
const MAX_FIRST_BACKOFF: Duration = Duration::from_secs(60);
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// The slot table is pruned of entries past their token's usable end when it grows past this.
const PRUNE_FROM: usize = 256;

/// When tokens are refreshed: `refreshAhead` and the expiry buffer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RefreshPolicy {
    /// Share of the usable lifetime after which a hit starts a refresh; `None` is off.
    pub fraction: Option<f64>,
    /// `expiryBufferSeconds`: a token stops being served this long before it expires.
    pub buffer: Duration,
}

impl RefreshPolicy {
    /// The refresh point of a token (epoch ms), or `NEVER` when refresh-ahead is off.
    ///
    /// The usable lifetime runs from `obtained_at` to `expires_at - buffer`. The point
    /// is the IdP's `refresh_in` (seconds after issue) when it sent one, else `fraction`
    /// of the usable lifetime; then moved by `jitter` (in -1..=1) times `JITTER` of
    /// itself, and kept at most `LATEST` of the usable lifetime.
    pub fn refresh_at(
        &self,
        obtained_at: u64,
        expires_at: u64,
        refresh_in_secs: Option<f64>,
        jitter: f64,
    ) -> u64 {
        let Some(fraction) = self.fraction else {
            return NEVER;
        };
        let usable = usable_lifetime_ms(obtained_at, expires_at, self.buffer) as f64;
        if usable <= 0.0 {
            return NEVER;
        }
        let base = match declared(refresh_in_secs) {
            Some(secs) => secs * 1000.0,
            None => fraction * usable,
        };
        let jittered = base * (1.0 + JITTER * jitter.clamp(-1.0, 1.0));
        obtained_at + jittered.min(LATEST * usable).max(0.0) as u64
    }

    /// What to record of a token's hits: a point fraction-based is moved later for a
    /// key whose callers keep coming (`Traffic`); the IdP's `refresh_in` is kept as sent.
    pub fn traffic(
        &self,
        obtained_at: u64,
        refresh_in_secs: Option<f64>,
        exchange_ms: u64,
    ) -> Traffic {
        if self.fraction.is_none() || declared(refresh_in_secs).is_some() {
            return Traffic::fixed();
        }
        Traffic::adaptive(obtained_at, exchange_ms)
    }

    /// Whether a hit at `now` (recorded first) should refresh `token`: past its refresh
    /// point, and, for a point its traffic may move, with little time left (`Traffic`).
    pub fn due(&self, token: &OboToken, now: u64) -> bool {
        if token.refresh_at == NEVER {
            return false;
        }
        token.traffic.hit(now);
        now >= token.refresh_at
            && token.traffic.refresh_now(
                now,
                token
                    .expires_at
                    .saturating_sub(self.buffer.as_millis() as u64),
            )
    }

    /// How long to wait before the next attempt after `failures` failed refreshes of
    /// `token` (at least one).
    pub fn backoff(&self, token: &OboToken, failures: u32) -> Duration {
        let usable = usable_lifetime_ms(token.obtained_at(), token.expires_at, self.buffer);
        let first = Duration::from_millis((usable as f64 * BACKOFF_SHARE) as u64)
            .clamp(MIN_BACKOFF, MAX_FIRST_BACKOFF);
        let doublings = failures.saturating_sub(1).min(16);
        first.saturating_mul(1 << doublings).min(MAX_BACKOFF)
    }
}

/// The IdP's `refresh_in`, when it is one to follow.
fn declared(refresh_in_secs: Option<f64>) -> Option<f64> {
    refresh_in_secs.filter(|secs| secs.is_finite() && *secs > 0.0)
}

fn usable_lifetime_ms(obtained_at: u64, expires_at: u64, buffer: Duration) -> u64 {
    expires_at
        .saturating_sub(buffer.as_millis() as u64)
        .saturating_sub(obtained_at)
}

/// A sample in -1..=1 for the jitter: std's randomly keyed SipHash of a counter, so no
/// random-number crate is needed for something this modest.
pub fn jitter_sample() -> f64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(crate::ground::expiry::now_ms());
    (hasher.finish() as f64 / u64::MAX as f64) * 2.0 - 1.0
}

/// What a hit past the refresh point should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshClaim {
    /// This hit starts the refresh (the key is now marked as refreshing).
    Start,
    /// A refresh of this token is running: serve, and do nothing else.
    Running,
    /// A refresh failed, or cannot be made (the assertion is about to expire, or the
    /// IdP refused it for good): serve, and do not try before the backoff ends.
    Wait,
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// A hit claimed the refresh; its caller is to start it (`Refreshes::start`).
    /// A claim nobody starts only means no refresh for this token.
    Claimed {
        failures: u32,
    },
    Running {
        failures: u32,
    },
    Waiting {
        next_attempt: u64,
        failures: u32,
    },
    /// No refresh for this token any more.
    Off,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    /// The token the state is about: a slot of a replaced token is stale.
    token_id: u64,
    /// When that token stops being usable: the slot is worthless after that.
    until: u64,
    state: State,
}

/// Refresh state per cache key, only for keys whose token went past its refresh point.
pub struct Refreshes {
    slots: Mutex<HashMap<String, Slot>>,
    buffer: Duration,
}

impl Refreshes {
    pub fn new(buffer: Duration) -> Self {
        Self {
            slots: Mutex::new(HashMap::new()),
            buffer,
        }
    }

    /// Called on a hit on `token` (under `key`) past its refresh point: claims the
    /// refresh unless one is running or waiting for its backoff.
    pub fn claim(&self, key: &str, token: &OboToken, now: u64) -> RefreshClaim {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let failures = match slots.get(key) {
            Some(slot) if slot.token_id == token.id => match slot.state {
                State::Claimed { .. } | State::Running { .. } => return RefreshClaim::Running,
                State::Off => return RefreshClaim::Wait,
                State::Waiting { next_attempt, .. } if now < next_attempt => {
                    return RefreshClaim::Wait
                }
                State::Waiting { failures, .. } => failures,
            },
            _ => 0,
        };
        if slots.len() >= PRUNE_FROM && !slots.contains_key(key) {
            slots.retain(|_, slot| slot.until > now);
        }
        let until = token
            .expires_at
            .saturating_sub(self.buffer.as_millis() as u64);
        slots.insert(
            key.to_owned(),
            Slot {
                token_id: token.id,
                until,
                state: State::Claimed { failures },
            },
        );
        RefreshClaim::Start
    }

    /// Turns the claim on `token_id` under `key` into a running refresh; false when
    /// there is no such claim (none was made, or its refresh already started).
    pub fn start(&self, key: &str, token_id: u64) -> bool {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        match slots.get_mut(key) {
            Some(slot) if slot.token_id == token_id => match slot.state {
                State::Claimed { failures } => {
                    slot.state = State::Running { failures };
                    true
                }
                _ => false,
            },
            _ => false,
        }
    }

    /// The refresh ended without a failure to remember (it succeeded, or found another
    /// exchange for the key running): the slot is freed.
    pub fn release(&self, key: &str, token_id: u64) {
        self.update(key, token_id, |_| None);
    }

    /// The refresh failed; returns the wait before the next attempt, or `None` when
    /// there will be none for this token (`permanent`: the IdP refused the assertion).
    pub fn failed(
        &self,
        key: &str,
        token: &OboToken,
        now: u64,
        permanent: bool,
        policy: &RefreshPolicy,
    ) -> Option<Duration> {
        let mut wait = None;
        self.update(key, token.id, |state| {
            if permanent {
                return Some(State::Off);
            }
            let failures = match state {
                State::Claimed { failures }
                | State::Running { failures }
                | State::Waiting { failures, .. } => failures + 1,
                State::Off => return Some(State::Off),
            };
            let backoff = policy.backoff(token, failures);
            wait = Some(backoff);
            Some(State::Waiting {
                next_attempt: now.saturating_add(backoff.as_millis() as u64),
                failures,
            })
        });
        wait
    }

    /// No refresh for this token (its assertion expires too soon to be exchanged).
    pub fn disable(&self, key: &str, token_id: u64) {
        self.update(key, token_id, |_| Some(State::Off));
    }

    fn update(&self, key: &str, token_id: u64, next: impl FnOnce(State) -> Option<State>) {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(slot) = slots.get_mut(key).filter(|slot| slot.token_id == token_id) else {
            return;
        };
        match next(slot.state) {
            Some(state) => slot.state = state,
            None => {
                slots.remove(key);
            }
        }
    }

    /// Forgets every slot (`clear`).
    pub fn clear(&self) {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.slots.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: u64 = 3_600_000;

    fn policy(fraction: Option<f64>) -> RefreshPolicy {
        RefreshPolicy {
            fraction,
            buffer: Duration::from_secs(30),
        }
    }

    fn token(id: u64, obtained_at: u64, lifetime_ms: u64) -> OboToken {
        OboToken {
            id,
            access_token: "at".into(),
            expires_in: lifetime_ms / 1000,
            expires_at: obtained_at + lifetime_ms,
            refresh_at: NEVER,
            traffic: super::super::traffic::Traffic::fixed(),
            scope: "s".into(),
            issued_token_type: None,
        }
    }

    #[test]
    fn the_refresh_point_is_the_fraction_of_the_usable_lifetime() {
        let usable = HOUR - 30_000;
        let at = policy(Some(0.8)).refresh_at(1_000, 1_000 + HOUR, None, 0.0);
        assert_eq!(at, 1_000 + (0.8 * usable as f64) as u64);
        assert_eq!(
            policy(None).refresh_at(1_000, 1_000 + HOUR, None, 0.0),
            NEVER
        );
    }

    #[test]
    fn jitter_stays_within_a_few_percent_either_way() {
        let p = policy(Some(0.8));
        let base = p.refresh_at(0, HOUR, None, 0.0) as f64;
        let low = p.refresh_at(0, HOUR, None, -1.0) as f64;
        let high = p.refresh_at(0, HOUR, None, 1.0) as f64;
        assert!(
            (low - base * (1.0 - JITTER)).abs() <= 1.0,
            "{low} vs {base}"
        );
        assert!(
            (high - base * (1.0 + JITTER)).abs() <= 1.0,
            "{high} vs {base}"
        );
        // Samples are spread over the whole range and never leave it.
        let samples: Vec<f64> = (0..2_000).map(|_| jitter_sample()).collect();
        assert!(samples.iter().all(|s| (-1.0..=1.0).contains(s)));
        assert!(samples.iter().any(|s| *s < -0.5) && samples.iter().any(|s| *s > 0.5));
        let points: Vec<u64> = samples
            .iter()
            .map(|s| p.refresh_at(0, HOUR, None, *s))
            .collect();
        let (min, max) = (points.iter().min().unwrap(), points.iter().max().unwrap());
        assert!(*min as f64 >= base * (1.0 - JITTER) - 1.0);
        assert!(*max as f64 <= base * (1.0 + JITTER) + 1.0);
        assert!(
            max - min > (base * JITTER) as u64,
            "jitter actually spreads"
        );
    }

    #[test]
    fn refresh_in_from_the_idp_wins_and_the_point_stays_before_the_end() {
        let p = policy(Some(0.8));
        assert_eq!(p.refresh_at(0, HOUR, Some(1800.0), 0.0), 1_800_000);
        let usable = (HOUR - 30_000) as f64;
        assert_eq!(
            p.refresh_at(0, HOUR, Some(7200.0), 0.0),
            (LATEST * usable) as u64
        );
        assert_eq!(
            p.refresh_at(0, HOUR, Some(-5.0), 0.0),
            (0.8 * usable) as u64,
            "a nonsense refresh_in is ignored"
        );
        assert_eq!(
            p.refresh_at(0, HOUR, Some(0.0), 0.0),
            (0.8 * usable) as u64,
            "refresh_in 0 would refresh on every hit: ignored"
        );
        assert_eq!(policy(None).refresh_at(0, HOUR, Some(1800.0), 0.0), NEVER);
        assert_eq!(
            p.refresh_at(0, 20_000, None, 0.0),
            NEVER,
            "a token shorter than the buffer is never usable"
        );
    }

    #[test]
    fn backoff_grows_and_is_bounded() {
        let p = policy(Some(0.8));
        let t = token(1, 0, HOUR);
        assert_eq!(p.backoff(&t, 1), Duration::from_secs(60));
        assert_eq!(p.backoff(&t, 2), Duration::from_secs(120));
        assert_eq!(p.backoff(&t, 9), MAX_BACKOFF);
        assert_eq!(p.backoff(&token(2, 0, 40_000), 1), MIN_BACKOFF);
    }

    #[test]
    fn one_claim_per_token_and_a_failure_waits_for_its_backoff() {
        let p = policy(Some(0.8));
        let table = Refreshes::new(p.buffer);
        let t = token(1, 0, HOUR);
        assert_eq!(table.claim("k", &t, 100), RefreshClaim::Start);
        assert_eq!(table.claim("k", &t, 100), RefreshClaim::Running);
        assert!(table.start("k", 1));
        assert!(!table.start("k", 1), "a claim starts one refresh");
        assert_eq!(table.claim("k", &t, 100), RefreshClaim::Running);
        let wait = table.failed("k", &t, 1_000, false, &p).unwrap();
        assert_eq!(wait, Duration::from_secs(60));
        assert_eq!(table.claim("k", &t, 1_000 + 59_999), RefreshClaim::Wait);
        assert_eq!(table.claim("k", &t, 1_000 + 60_000), RefreshClaim::Start);
        assert!(table.start("k", 1));
        let wait = table.failed("k", &t, 70_000, false, &p).unwrap();
        assert_eq!(wait, Duration::from_secs(120), "second failure doubles");
        // A new token under the key starts afresh.
        assert_eq!(
            table.claim("k", &token(2, 0, HOUR), 70_001),
            RefreshClaim::Start
        );
        table.release("k", 2);
        assert_eq!(table.len(), 0);
    }

    #[test]
    fn a_permanent_failure_or_a_short_assertion_stops_refreshes_of_that_token() {
        let p = policy(Some(0.8));
        let table = Refreshes::new(p.buffer);
        let t = token(1, 0, HOUR);
        assert_eq!(table.claim("a", &t, 0), RefreshClaim::Start);
        assert_eq!(table.failed("a", &t, 0, true, &p), None);
        assert_eq!(table.claim("a", &t, HOUR), RefreshClaim::Wait);
        assert_eq!(table.claim("b", &t, 0), RefreshClaim::Start);
        table.disable("b", 1);
        assert_eq!(table.claim("b", &t, HOUR), RefreshClaim::Wait);
        assert!(!table.start("b", 1));
    }

    #[test]
    fn slots_of_dead_tokens_are_pruned_once_the_table_is_large() {
        let table = Refreshes::new(Duration::ZERO);
        table.claim("dead", &token(1, 0, 1_000), 0);
        table.claim("new", &token(2, 0, HOUR), 5_000);
        assert_eq!(table.len(), 2, "a small table is not pruned");
        table.release("dead", 1);
        table.release("new", 2);
        let live = token(500, 0, HOUR);
        assert_eq!(table.claim("live", &live, 0), RefreshClaim::Start);
        // Ends exactly when the late claim comes: dead by then.
        table.claim("exact", &token(501, 0, 5_000), 0);
        for i in 0..PRUNE_FROM as u64 - 2 {
            let t = token(i, 0, 1_000);
            assert_eq!(table.claim(&format!("k{i}"), &t, 0), RefreshClaim::Start);
        }
        assert_eq!(table.len(), PRUNE_FROM);
        table.claim("late", &token(999, 5_000, HOUR), 5_000);
        assert_eq!(table.len(), 2, "the live slot and the new one");
        assert_eq!(
            table.claim("live", &live, 5_000),
            RefreshClaim::Running,
            "the live claim survived"
        );
    }

    #[test]
    fn only_the_claimed_token_starts() {
        let table = Refreshes::new(Duration::ZERO);
        assert_eq!(table.claim("k", &token(1, 0, HOUR), 0), RefreshClaim::Start);
        assert!(!table.start("k", 2), "another token under the key");
        assert!(!table.start("other", 1), "another key");
        assert!(table.start("k", 1));
        table.clear();
        assert_eq!(table.len(), 0);
        assert_eq!(table.claim("k", &token(1, 0, HOUR), 0), RefreshClaim::Start);
    }
}
