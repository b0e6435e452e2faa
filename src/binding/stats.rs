//! `NativeStats`: the service's counters as JS numbers.

use napi_derive::napi;

use crate::broker::Stats;

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
    pub refreshes_started: i64,
    pub refreshes_succeeded: i64,
    pub refreshes_failed: i64,
    pub served_during_refresh: i64,
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
            refreshes_started: s.refreshes_started as i64,
            refreshes_succeeded: s.refreshes_succeeded as i64,
            refreshes_failed: s.refreshes_failed as i64,
            served_during_refresh: s.served_during_refresh as i64,
        }
    }
}
