//! The local tier: a `moka::sync::Cache` in this process.
//!
//! It is the sync flavour rather than the async one: a hit must be answered on the
//! JavaScript thread, synchronously, without a hop to the tokio pool (an async hop
//! costs tens of microseconds, a sync lookup well under one). Entries expire
//! individually when they stop being usable (lifetime minus buffer).

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::notification::RemovalCause;
use moka::sync::Cache;
use moka::Expiry;

use super::token::OboToken;
use crate::ground::expiry;

/// Cached tokens keyed by `identity::IdentityTuple::cache_key`.
pub struct TokenCache {
    entries: Cache<String, Arc<OboToken>>,
    buffer: Duration,
}

/// Why an entry left the cache (a replaced token is not an eviction: the exchange that
/// replaced it is reported on its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvictCause {
    /// It stopped being usable (lifetime minus buffer).
    Expired,
    /// `maxCacheEntries` was reached.
    Size,
    /// `invalidate` or `clear`.
    Explicit,
}

/// Told of each eviction with the entry's key; runs on the thread that triggered it.
pub type EvictListener = Arc<dyn Fn(&str, EvictCause) + Send + Sync>;

/// Per-entry lifetime: until the token is no longer usable.
struct UntilUnusable {
    buffer: Duration,
}

impl Expiry<String, Arc<OboToken>> for UntilUnusable {
    fn expire_after_create(
        &self,
        _key: &String,
        token: &Arc<OboToken>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(expiry::cache_ttl(
            token.expires_at,
            self.buffer,
            expiry::now_ms(),
        ))
    }

    fn expire_after_update(
        &self,
        key: &String,
        token: &Arc<OboToken>,
        updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        self.expire_after_create(key, token, updated_at)
    }
}

impl TokenCache {
    #[cfg(test)]
    pub fn new(max_entries: u64, buffer: Duration) -> Self {
        Self::with_listener(max_entries, buffer, None)
    }

    /// The cache, with `listener` told of each eviction (`EvictCause`).
    pub fn with_listener(
        max_entries: u64,
        buffer: Duration,
        listener: Option<EvictListener>,
    ) -> Self {
        let mut builder = Cache::builder()
            .max_capacity(max_entries)
            .expire_after(UntilUnusable { buffer });
        if let Some(listener) = listener {
            builder = builder.eviction_listener(move |key: Arc<String>, _, cause| {
                let cause = match cause {
                    RemovalCause::Expired => EvictCause::Expired,
                    RemovalCause::Size => EvictCause::Size,
                    RemovalCause::Explicit => EvictCause::Explicit,
                    RemovalCause::Replaced => return,
                };
                listener(&key, cause);
            });
        }
        Self {
            entries: builder.build(),
            buffer,
        }
    }

    /// A token for `key` that still has more than the buffer to live.
    pub fn get(&self, key: &str) -> Option<Arc<OboToken>> {
        self.get_at(key, expiry::now_ms())
    }

    /// `get` at `now` (epoch ms), for a caller that needs the time too.
    pub fn get_at(&self, key: &str, now: u64) -> Option<Arc<OboToken>> {
        self.entries
            .get(key)
            .filter(|token| expiry::is_usable(token.expires_at, self.buffer, now))
    }

    pub fn insert(&self, key: String, token: Arc<OboToken>) {
        self.entries.insert(key, token);
    }

    pub fn remove(&self, key: &str) {
        self.entries.invalidate(key);
    }

    /// Drops every entry whose key starts with `prefix`; returns the dropped tokens'
    /// ids (the wrapper forgets their JS strings).
    pub fn remove_prefix(&self, prefix: &str) -> Vec<u64> {
        let doomed: Vec<Arc<String>> = self
            .entries
            .iter()
            .map(|(key, _)| key)
            .filter(|key| key.starts_with(prefix))
            .collect();
        doomed
            .iter()
            .filter_map(|key| self.entries.remove(key.as_str()))
            .map(|token| token.id)
            .collect()
    }

    pub fn clear(&self) {
        self.entries.invalidate_all();
        self.entries.run_pending_tasks();
    }

    /// Entries held now (moka counts lazily; pending work is flushed first).
    pub fn len(&self) -> u64 {
        self.entries.run_pending_tasks();
        self.entries.entry_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(expires_at: u64) -> Arc<OboToken> {
        Arc::new(OboToken {
            id: 1,
            access_token: "at".into(),
            expires_in: 3600,
            expires_at,
            refresh_at: super::super::refresh_points::NEVER,
            traffic: super::super::traffic::Traffic::fixed(),
            scope: "s".into(),
            issued_token_type: None,
        })
    }

    #[test]
    fn a_token_inside_the_buffer_is_not_served() {
        let cache = TokenCache::new(10, Duration::from_secs(30));
        cache.insert("fresh".into(), token(expiry::now_ms() + 3_600_000));
        cache.insert("stale".into(), token(expiry::now_ms() + 10_000));
        assert!(cache.get("fresh").is_some());
        assert!(cache.get("stale").is_none());
    }

    #[test]
    fn an_entry_leaves_the_cache_when_it_stops_being_usable() {
        let cache = TokenCache::new(10, Duration::from_secs(30));
        let soon = expiry::now_ms() + 30_300;
        cache.insert("created".into(), token(soon));
        cache.insert("updated".into(), token(expiry::now_ms() + 3_600_000));
        cache.insert("updated".into(), token(soon));
        assert_eq!(cache.len(), 2);
        // moka's timer wheel works in ~1 s buckets: poll, bounded to 5 s.
        let deadline = Instant::now() + Duration::from_secs(5);
        while cache.len() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(cache.len(), 0, "both expired from moka, not only filtered");
    }

    #[test]
    fn evictions_are_told_with_their_cause_and_replacements_are_not() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let listener: EvictListener = {
            let seen = Arc::clone(&seen);
            Arc::new(move |key: &str, cause| seen.lock().unwrap().push((key.to_owned(), cause)))
        };
        let cache = TokenCache::with_listener(1, Duration::from_secs(30), Some(listener));
        let at = expiry::now_ms() + 3_600_000;
        cache.insert("a".into(), token(at));
        cache.insert("a".into(), token(at));
        cache.len();
        assert!(
            seen.lock().unwrap().is_empty(),
            "a replacement is no eviction"
        );
        cache.remove_prefix("a");
        cache.insert("b".into(), token(at));
        cache.insert("c".into(), token(at));
        cache.len();
        let seen = seen.lock().unwrap();
        assert_eq!(seen[0], ("a".to_owned(), EvictCause::Explicit));
        assert!(
            seen[1..]
                .iter()
                .any(|(_, cause)| *cause == EvictCause::Size),
            "{seen:?}"
        );
    }

    #[test]
    fn invalidate_by_prefix_counts_what_it_dropped() {
        let cache = TokenCache::new(10, Duration::from_secs(30));
        let at = expiry::now_ms() + 3_600_000;
        for key in ["u1\u{1f}a", "u1\u{1f}b", "u2\u{1f}a"] {
            cache.insert(key.into(), token(at));
        }
        assert_eq!(cache.remove_prefix("u1\u{1f}"), vec![1, 1]);
        assert_eq!(cache.len(), 1);
        cache.clear();
        assert_eq!(cache.len(), 0);
    }
}
