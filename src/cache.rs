//! The token cache and the single-flight table.
//!
//! The cache is `moka::sync::Cache` rather than the async flavour: a hit must be
//! answered on the JavaScript thread, synchronously, without a hop to the tokio pool
//! (an async hop costs tens of microseconds, a sync lookup well under one). Entries
//! expire individually when they stop being usable (lifetime minus buffer).
//!
//! The single-flight table makes concurrent misses for one key share one exchange:
//! joiners get the leader's result or its failure, and the slot is freed as soon as
//! the exchange ends (after a success has been written to the cache, so a late caller
//! finds either the flight or the cached token, never neither).

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::future::{BoxFuture, FutureExt, Shared};
use moka::sync::Cache;
use moka::Expiry;

use crate::expiry;
use crate::redact::redacted_debug;

/// An exchanged token as LibreChat's `exchangeOboToken` returns it.
#[derive(Clone, PartialEq, Eq)]
pub struct OboToken {
    /// Unique per exchanged token in this process: the wrapper keeps the JS string of a
    /// token it has seen under this id, so a hit need not build the string again.
    pub id: u64,
    pub access_token: String,
    pub expires_in: u64,
    /// Epoch milliseconds, stamped when the token was requested.
    pub expires_at: u64,
    /// The scopes that were requested (LibreChat echoes the request, not the grant).
    pub scope: String,
    /// RFC 8693's `issued_token_type`, when the IdP sent one.
    pub issued_token_type: Option<String>,
}

redacted_debug!(OboToken {
    shown: [id, expires_in, expires_at, scope, issued_token_type],
    hidden: [access_token]
});

/// Cached tokens keyed by `identity::IdentityTuple::cache_key`.
pub struct TokenCache {
    entries: Cache<String, Arc<OboToken>>,
    buffer: Duration,
}

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
    pub fn new(max_entries: u64, buffer: Duration) -> Self {
        Self {
            entries: Cache::builder()
                .max_capacity(max_entries)
                .expire_after(UntilUnusable { buffer })
                .build(),
            buffer,
        }
    }

    /// A token for `key` that still has more than the buffer to live.
    pub fn get(&self, key: &str) -> Option<Arc<OboToken>> {
        self.entries
            .get(key)
            .filter(|token| expiry::is_usable(token.expires_at, self.buffer, expiry::now_ms()))
    }

    pub fn insert(&self, key: String, token: Arc<OboToken>) {
        self.entries.insert(key, token);
    }

    /// Drops every entry whose key starts with `prefix`; returns how many.
    pub fn invalidate_prefix(&self, prefix: &str) -> u64 {
        let doomed: Vec<Arc<String>> = self
            .entries
            .iter()
            .map(|(key, _)| key)
            .filter(|key| key.starts_with(prefix))
            .collect();
        doomed
            .iter()
            .filter(|key| self.entries.remove(key.as_str()).is_some())
            .count() as u64
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

type SharedFlight<T, E> = Shared<BoxFuture<'static, Result<T, E>>>;
/// Key → (flight id, flight): the id tells a finished flight whether the slot is still its own.
type Slots<T, E> = HashMap<String, (u64, SharedFlight<T, E>)>;

/// Exchanges in flight, one per key.
pub struct Flights<T, E> {
    slots: Mutex<Slots<T, E>>,
    next_id: AtomicU64,
}

/// What a caller gets from `Flights::join_or_start`.
pub enum Flight<T, E> {
    /// The cache had the answer after all (filled while the caller was on its way).
    Ready(T),
    /// An exchange for this key was already running; the caller shares it.
    Joined(SharedFlight<T, E>),
    /// The caller started the exchange.
    Started(SharedFlight<T, E>),
}

impl<T, E> Default for Flights<T, E> {
    fn default() -> Self {
        Self {
            slots: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
        }
    }
}

impl<T, E> Flights<T, E>
where
    T: Clone + Send + Sync + 'static,
    E: Clone + Send + Sync + 'static,
{
    /// Joins the flight for `key`, or, when there is none, asks `recheck` (the cache)
    /// once more and only then starts `exchange`. All three happen under one lock, so
    /// two callers can never both start an exchange for the same key.
    pub fn join_or_start<F>(
        self: &Arc<Self>,
        key: &str,
        recheck: impl FnOnce() -> Option<T>,
        exchange: impl FnOnce() -> F,
    ) -> Flight<T, E>
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
    {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, flight)) = slots.get(key) {
            return Flight::Joined(flight.clone());
        }
        if let Some(ready) = recheck() {
            return Flight::Ready(ready);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let flights = Arc::clone(self);
        let owned_key = key.to_owned();
        let exchange = exchange();
        let flight = async move {
            let outcome = exchange.await;
            flights.finish(&owned_key, id);
            outcome
        }
        .boxed()
        .shared();
        slots.insert(key.to_owned(), (id, flight.clone()));
        Flight::Started(flight)
    }

    /// Frees the slot, unless another flight has taken it meanwhile.
    fn finish(&self, key: &str, id: u64) {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if slots.get(key).is_some_and(|(slot_id, _)| *slot_id == id) {
            slots.remove(key);
        }
    }

    #[cfg(test)]
    fn in_flight(&self) -> usize {
        self.slots.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn token(expires_at: u64) -> Arc<OboToken> {
        Arc::new(OboToken {
            id: 1,
            access_token: "at".into(),
            expires_in: 3600,
            expires_at,
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
    fn invalidate_by_prefix_counts_what_it_dropped() {
        let cache = TokenCache::new(10, Duration::from_secs(30));
        let at = expiry::now_ms() + 3_600_000;
        for key in ["u1\u{1f}a", "u1\u{1f}b", "u2\u{1f}a"] {
            cache.insert(key.into(), token(at));
        }
        assert_eq!(cache.invalidate_prefix("u1\u{1f}"), 2);
        assert_eq!(cache.len(), 1);
        cache.clear();
        assert_eq!(cache.len(), 0);
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_exchange_and_its_failure() {
        let flights: Arc<Flights<u32, String>> = Arc::default();
        let started = Arc::new(AtomicUsize::new(0));
        let (release, gate) = tokio::sync::oneshot::channel::<()>();
        let run = {
            let started = Arc::clone(&started);
            move || {
                started.fetch_add(1, Ordering::SeqCst);
                async move {
                    gate.await.ok();
                    Err::<u32, _>("invalid_grant".to_string())
                }
            }
        };
        let Flight::Started(leader) = flights.join_or_start("k", || None, run) else {
            panic!("first caller must start");
        };
        let Flight::Joined(joiner) = flights.join_or_start("k", || None, || async { Ok(1) }) else {
            panic!("second caller must join");
        };
        release.send(()).unwrap();
        let (a, b) = tokio::join!(leader, joiner);
        assert_eq!(a, Err("invalid_grant".to_string()));
        assert_eq!(b, a);
        assert_eq!(started.load(Ordering::SeqCst), 1);
        assert_eq!(flights.in_flight(), 0);
    }

    #[tokio::test]
    async fn recheck_answers_when_no_flight_is_running() {
        let flights: Arc<Flights<u32, String>> = Arc::default();
        let flight = flights.join_or_start("k", || Some(7), || async { Ok(1) });
        assert!(matches!(flight, Flight::Ready(7)));
        assert_eq!(flights.in_flight(), 0);
    }
}
