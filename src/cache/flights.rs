//! The single-flight table: concurrent misses for one key share one exchange.
//!
//! Joiners get the leader's result or its failure, and the slot is freed as soon as
//! the exchange ends (after a success has been written to the cache, so a late caller
//! finds either the flight or the cached token, never neither).
//!
//! This is the one single-flight of a process (DESIGN: the cache layer owns what is
//! served and when). It sits beside the local tier and is keyed by the full cache key,
//! so it sees calls exactly as the cache does: two calls that differ only in how their
//! identity is spelled share one flight. The wrapper (lib/front.js) joins calls with
//! identical arguments before they cross, only to save the crossing (its doc says what
//! that costs); equal arguments mean one key here, so it adds no rule. The shared tier's
//! Redis lease (`cache/shared/lease.rs`) is the same rule one level up,
//! across processes: a flight's leader takes it, so N processes make one IdP request.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::future::{BoxFuture, FutureExt, Shared};

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
