//! How a cached token's hits have come: what lets refresh-ahead renew a busy key late
//! in its life without making any of its callers wait.
//!
//! A fixed refresh point (`refreshAhead` of the usable lifetime) costs `1 / fraction`
//! exchanges per lifetime: 1.25 at the default 0.8. For a key whose callers keep coming,
//! renewing it just before its end is as safe and costs one. So from the fixed point on, a
//! hit refreshes only once the time left is short against the key's own traffic: under
//! `SILENCE_FACTOR` times the longest silence between two hits of this token, plus time
//! for the exchange. A key with bursts and pauses has a long silence on record and is
//! refreshed at the fixed point, as before; a steady one, near its end. The traffic is a
//! pair of atomics on the token: a hit updates them without a lock.

use std::sync::atomic::{AtomicU64, Ordering};

/// The time left must stay above this many times the longest silence seen, so that the
/// next hit, which starts the refresh, comes before the token stops being usable.
const SILENCE_FACTOR: f64 = 1.5;
/// A refresh is given this many times the exchange that obtained the token.
const EXCHANGE_FACTOR: u64 = 2;
/// The exchange time assumed for a token obtained by another process (the shared tier).
pub const UNKNOWN_EXCHANGE_MS: u64 = 1_000;

/// The hits on one cached token.
#[derive(Debug)]
pub struct Traffic {
    /// Time to leave for a refresh to complete (ms); `None` when the refresh point is not
    /// ours to move (the IdP's `refresh_in`, or refresh-ahead off).
    allowance_ms: Option<u64>,
    /// The latest hit (epoch ms); the token's obtained time before the first.
    last_hit: AtomicU64,
    /// The longest time between two hits, or between obtaining the token and its first hit.
    longest_silence: AtomicU64,
}

impl Traffic {
    /// A token refreshed at its fixed point whatever its traffic.
    pub fn fixed() -> Self {
        Self {
            allowance_ms: None,
            last_hit: AtomicU64::new(0),
            longest_silence: AtomicU64::new(0),
        }
    }

    /// A token obtained at `obtained_at` by an exchange that took `exchange_ms`.
    pub fn adaptive(obtained_at: u64, exchange_ms: u64) -> Self {
        Self {
            allowance_ms: Some(exchange_ms.saturating_mul(EXCHANGE_FACTOR)),
            last_hit: AtomicU64::new(obtained_at),
            longest_silence: AtomicU64::new(0),
        }
    }

    /// Records a hit at `now` (epoch ms): on the hot path, so plain loads and a store,
    /// and a read-modify-write only when a silence is the longest yet. Hits come from
    /// JS's one thread; should two ever race, the next silence is read long, which only
    /// makes the refresh come earlier.
    pub fn hit(&self, now: u64) {
        let previous = self.last_hit.load(Ordering::Relaxed);
        self.last_hit.store(now, Ordering::Relaxed);
        let silence = now.saturating_sub(previous);
        if silence > self.longest_silence.load(Ordering::Relaxed) {
            self.longest_silence.fetch_max(silence, Ordering::Relaxed);
        }
    }

    /// Whether a hit at `now`, past the fixed refresh point, should refresh a token
    /// usable until `usable_end` (epoch ms): always for a fixed point, else once the
    /// time left is under the longest silence times `SILENCE_FACTOR` plus the allowance.
    pub fn refresh_now(&self, now: u64, usable_end: u64) -> bool {
        let Some(allowance) = self.allowance_ms else {
            return true;
        };
        let silence = self.longest_silence.load(Ordering::Relaxed) as f64;
        let needed = (silence * SILENCE_FACTOR) as u64 + allowance;
        usable_end.saturating_sub(now) <= needed
    }
}

impl Clone for Traffic {
    fn clone(&self) -> Self {
        Self {
            allowance_ms: self.allowance_ms,
            last_hit: AtomicU64::new(self.last_hit.load(Ordering::Relaxed)),
            longest_silence: AtomicU64::new(self.longest_silence.load(Ordering::Relaxed)),
        }
    }
}

/// Two tokens are equal whatever hits they have seen: the traffic is bookkeeping.
impl PartialEq for Traffic {
    fn eq(&self, other: &Self) -> bool {
        self.allowance_ms == other.allowance_ms
    }
}

impl Eq for Traffic {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_point_refreshes_at_any_hit() {
        let traffic = Traffic::fixed();
        traffic.hit(1_000);
        assert!(traffic.refresh_now(1_000, u64::MAX));
    }

    #[test]
    fn a_steady_key_waits_until_its_end_draws_near() {
        // Obtained at 0 in 100 ms; a hit every 200 ms: the longest silence is 200 ms, so
        // the window is 1.5 × 200 + 2 × 100 = 500 ms before the usable end.
        let traffic = Traffic::adaptive(0, 100);
        for at in (200..=8_000).step_by(200) {
            traffic.hit(at);
        }
        assert!(!traffic.refresh_now(8_000, 8_501));
        assert!(traffic.refresh_now(8_000, 8_500));
        assert!(traffic.refresh_now(8_600, 8_500), "past the end");
    }

    #[test]
    fn one_long_pause_makes_the_window_wide() {
        let traffic = Traffic::adaptive(0, 100);
        traffic.hit(100);
        traffic.hit(4_100); // 4 s of silence
        traffic.hit(4_200);
        assert!(traffic.refresh_now(4_200, 4_200 + 6_200));
        assert!(!traffic.refresh_now(4_200, 4_200 + 6_201));
    }

    #[test]
    fn the_silence_before_the_first_hit_counts() {
        let traffic = Traffic::adaptive(1_000, 0);
        traffic.hit(3_000);
        assert!(traffic.refresh_now(3_000, 6_000));
        assert!(!traffic.refresh_now(3_000, 6_001));
    }

    #[test]
    fn a_clone_keeps_what_was_seen_and_equality_ignores_it() {
        let traffic = Traffic::adaptive(0, 10);
        traffic.hit(1_000);
        let copy = traffic.clone();
        assert!(copy.refresh_now(0, 1_520));
        assert!(!copy.refresh_now(0, 1_521));
        assert_eq!(copy, Traffic::adaptive(5, 10));
        assert_ne!(copy, Traffic::fixed());
    }
}
