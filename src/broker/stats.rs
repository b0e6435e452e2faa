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
        }
    }
}
