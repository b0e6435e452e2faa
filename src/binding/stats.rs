//! `NativeStats`: the service's counters as JS numbers.

use napi_derive::napi;

use crate::broker::Stats;
use crate::cache::shared::BreakerState;

/// The shared tier's breaker: `open` while Redis is skipped after repeated failures,
/// `half_open` while one probe is out.
#[napi(string_enum = "snake_case")]
pub enum NativeBreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl From<BreakerState> for NativeBreakerState {
    fn from(state: BreakerState) -> Self {
        match state {
            BreakerState::Closed => Self::Closed,
            BreakerState::Open => Self::Open,
            BreakerState::HalfOpen => Self::HalfOpen,
        }
    }
}

/// Counters of one service; see `broker::Stats`. The `shared*` fields are present only
/// with a shared tier (`sharedCache`).
#[napi(object, object_from_js = false)]
pub struct NativeStats {
    pub hits: i64,
    pub misses: i64,
    pub coalesced: i64,
    pub exchanges: i64,
    pub retries: i64,
    pub failures: i64,
    pub entries: i64,
    pub shared_hits: Option<i64>,
    pub shared_misses: Option<i64>,
    pub shared_errors: Option<i64>,
    pub shared_timeouts: Option<i64>,
    pub shared_decrypt_failures: Option<i64>,
    pub shared_waits: Option<i64>,
    pub shared_leader_exchanges: Option<i64>,
    pub shared_breaker: Option<NativeBreakerState>,
    pub refreshes_started: i64,
    pub refreshes_succeeded: i64,
    pub refreshes_failed: i64,
    pub served_during_refresh: i64,
}

impl From<Stats> for NativeStats {
    fn from(s: Stats) -> Self {
        let on = s.shared_breaker.is_some();
        let shared = |count: u64| on.then_some(count as i64);
        Self {
            hits: s.hits as i64,
            misses: s.misses as i64,
            coalesced: s.coalesced as i64,
            exchanges: s.exchanges as i64,
            retries: s.retries as i64,
            failures: s.failures as i64,
            entries: s.entries as i64,
            shared_hits: shared(s.shared_hits),
            shared_misses: shared(s.shared_misses),
            shared_errors: shared(s.shared_errors),
            shared_timeouts: shared(s.shared_timeouts),
            shared_decrypt_failures: shared(s.shared_decrypt_failures),
            shared_waits: shared(s.shared_waits),
            shared_leader_exchanges: shared(s.shared_leader_exchanges),
            shared_breaker: s.shared_breaker.map(Into::into),
            refreshes_started: s.refreshes_started as i64,
            refreshes_succeeded: s.refreshes_succeeded as i64,
            refreshes_failed: s.refreshes_failed as i64,
            served_during_refresh: s.served_during_refresh as i64,
        }
    }
}
