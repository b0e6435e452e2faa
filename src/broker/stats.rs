//! The service's counters, as `stats()` reports them.

use std::sync::atomic::{AtomicU64, Ordering};

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

    /// A snapshot, with the cache's current size.
    pub fn snapshot(&self, entries: u64) -> Stats {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Stats {
            hits: load(&self.hits),
            misses: load(&self.misses),
            coalesced: load(&self.coalesced),
            exchanges: load(&self.exchanges),
            retries: load(&self.retries),
            failures: load(&self.failures),
            entries,
            refreshes_started: load(&self.refreshes_started),
            refreshes_succeeded: load(&self.refreshes_succeeded),
            refreshes_failed: load(&self.refreshes_failed),
            served_during_refresh: load(&self.served_during_refresh),
        }
    }
}
