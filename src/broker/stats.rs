//! The service's counters, as `stats()` reports them.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::cache::shared::{BreakerState, SharedStats};

/// Counters since the service was created (`entries` is the current size).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Calls answered from the cache.
    pub hits: u64,
    /// Calls with `fromCache` that found no usable token.
    pub misses: u64,
    /// Misses that joined an exchange already in flight instead of starting one.
    pub coalesced: u64,
    /// Exchanges started (each is one IdP request plus its retries).
    pub exchanges: u64,
    /// Extra IdP requests made after transient failures.
    pub retries: u64,
    /// Exchanges that ended in an error, and assertions refused before the network.
    pub failures: u64,
    /// Tokens in the cache now.
    pub entries: u64,
    /// Misses answered from the shared tier.
    pub shared_hits: u64,
    /// Misses the shared tier could not answer (this process then exchanged).
    pub shared_misses: u64,
    /// Redis commands that failed, and that got no answer within `opTimeoutMs`.
    pub shared_errors: u64,
    pub shared_timeouts: u64,
    /// Shared records that did not open (tampered, copied, unknown key id): misses.
    pub shared_decrypt_failures: u64,
    /// Times a miss waited for another process's exchange.
    pub shared_waits: u64,
    /// Exchanges made holding the cross-process lease.
    pub shared_leader_exchanges: u64,
    /// The breaker in front of Redis; `None` without a shared tier.
    pub shared_breaker: Option<BreakerState>,
    /// Refresh-ahead: background exchanges started, and how they ended (one that found
    /// another exchange for its key under way is neither).
    pub refreshes_started: u64,
    pub refreshes_succeeded: u64,
    pub refreshes_failed: u64,
    /// Hits answered from a token whose refresh was under way (the one that started it included).
    pub served_during_refresh: u64,
}

/// The live counters; relaxed atomics, since each is read on its own.
#[derive(Default)]
pub struct Counters {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub coalesced: AtomicU64,
    pub exchanges: AtomicU64,
    pub retries: AtomicU64,
    pub failures: AtomicU64,
    pub refreshes_started: AtomicU64,
    pub refreshes_succeeded: AtomicU64,
    pub refreshes_failed: AtomicU64,
    pub served_during_refresh: AtomicU64,
}

impl Counters {
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A snapshot, with the cache's current size and the shared tier's counters.
    pub fn snapshot(&self, entries: u64, shared: Option<SharedStats>) -> Stats {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Stats {
            hits: load(&self.hits),
            misses: load(&self.misses),
            coalesced: load(&self.coalesced),
            exchanges: load(&self.exchanges),
            retries: load(&self.retries),
            failures: load(&self.failures),
            entries,
            shared_hits: shared.map_or(0, |s| s.hits),
            shared_misses: shared.map_or(0, |s| s.misses),
            shared_errors: shared.map_or(0, |s| s.errors),
            shared_timeouts: shared.map_or(0, |s| s.timeouts),
            shared_decrypt_failures: shared.map_or(0, |s| s.decrypt_failures),
            shared_waits: shared.map_or(0, |s| s.waits),
            shared_leader_exchanges: shared.map_or(0, |s| s.leader_exchanges),
            shared_breaker: shared.map(|s| s.breaker),
            refreshes_started: load(&self.refreshes_started),
            refreshes_succeeded: load(&self.refreshes_succeeded),
            refreshes_failed: load(&self.refreshes_failed),
            served_during_refresh: load(&self.served_during_refresh),
        }
    }
}
