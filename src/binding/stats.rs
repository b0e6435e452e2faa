//! `NativeStats`: the service's counters as JS numbers.

use napi_derive::napi;

use crate::broker::Stats;
use crate::cache::shared::BreakerState;

/// The shared tier's breaker; `off` without a shared tier.
#[napi(string_enum = "snake_case")]
pub enum NativeBreakerState {
    Off,
    Closed,
    Open,
    HalfOpen,
}

impl From<Option<BreakerState>> for NativeBreakerState {
    fn from(state: Option<BreakerState>) -> Self {
        match state {
            None => Self::Off,
            Some(BreakerState::Closed) => Self::Closed,
            Some(BreakerState::Open) => Self::Open,
            Some(BreakerState::HalfOpen) => Self::HalfOpen,
        }
    }
}

/// Counters of one service; see `broker::Stats`.
#[napi(object, object_from_js = false)]
pub struct NativeStats {
    pub hits: i64,
    pub misses: i64,
    pub coalesced: i64,
    pub exchanges: i64,
    pub retries: i64,
    pub failures: i64,
    pub entries: i64,
    pub shared_hits: i64,
    pub shared_misses: i64,
    pub shared_errors: i64,
    pub shared_timeouts: i64,
    pub shared_decrypt_failures: i64,
    pub shared_waits: i64,
    pub shared_leader_exchanges: i64,
    pub shared_breaker: NativeBreakerState,
}

impl From<Stats> for NativeStats {
    fn from(s: Stats) -> Self {
        Self {
            hits: s.hits as i64,
            misses: s.misses as i64,
            coalesced: s.coalesced as i64,
            exchanges: s.exchanges as i64,
            retries: s.retries as i64,
            failures: s.failures as i64,
            entries: s.entries as i64,
            shared_hits: s.shared_hits as i64,
            shared_misses: s.shared_misses as i64,
            shared_errors: s.shared_errors as i64,
            shared_timeouts: s.shared_timeouts as i64,
            shared_decrypt_failures: s.shared_decrypt_failures as i64,
            shared_waits: s.shared_waits as i64,
            shared_leader_exchanges: s.shared_leader_exchanges as i64,
            shared_breaker: s.shared_breaker.into(),
        }
    }
}
