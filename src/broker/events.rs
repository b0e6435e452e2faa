//! Events an operator can watch: exchanges, refresh-ahead and evictions, handed to a
//! sink that the bindings connect to `node:diagnostics_channel` (`librechat-obo:*`).
//!
//! An event never carries a token, an assertion, a secret or a raw user id: the user
//! appears as `identity`, the first 16 hex digits of the SHA-256 of the identity tuple
//! (tenant, issuer, subject), and the cache entry as `key`, the same of its cache key
//! (which holds only the assertion's digest). Events are built only when a sink is
//! set and watched, and only for exchanges, refreshes and evictions, never for a hit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use sha2::{Digest, Sha256};

use super::request::Request;
use crate::cache::local::{EvictCause, EvictListener};
use crate::cache::shared::BreakerState;
use crate::ground::error::{ExchangeError, FailureReason};
use crate::ground::identity::SEPARATOR;
use crate::protocol::grant::GrantKind;

/// The channels, named as `librechat-obo:<name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    ExchangeStart,
    ExchangeEnd,
    RefreshStart,
    RefreshEnd,
    CacheEvict,
    SharedBreaker,
}

impl Channel {
    pub fn name(self) -> &'static str {
        match self {
            Self::ExchangeStart => "exchange:start",
            Self::ExchangeEnd => "exchange:end",
            Self::RefreshStart => "refresh:start",
            Self::RefreshEnd => "refresh:end",
            Self::CacheEvict => "cache:evict",
            Self::SharedBreaker => "shared:breaker",
        }
    }
}

/// How an exchange or a refresh ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    /// A refresh that did not run: another exchange for the key was under way.
    Skipped,
}

/// One event; fields a channel does not use stay empty.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub channel: Channel,
    /// Short SHA-256 of the identity tuple: the same user gives the same value.
    pub identity: String,
    /// Short SHA-256 of the cache key.
    pub key: String,
    pub scopes: String,
    /// The exchange is a refresh-ahead (exchange events).
    pub refresh: bool,
    /// The grant sent (`exchange:end`), when one was.
    pub grant: Option<GrantKind>,
    pub outcome: Option<Outcome>,
    pub duration_ms: Option<f64>,
    /// LibreChat's `oboFailureReason` of a failure.
    pub reason: Option<FailureReason>,
    /// The IdP's `error` (e.g. `invalid_grant`), or this package's error code
    /// (`ETIMEDOUT`, `ERR_ASSERTION_EXPIRED`...).
    pub error: Option<String>,
    /// Entra's numeric `error_codes` (AADSTS numbers).
    pub error_codes: Option<Vec<i64>>,
    /// The HTTP status of a failed answer.
    pub status: Option<u16>,
    pub cause: Option<EvictCause>,
    /// The shared tier's breaker after a change (`shared:breaker`).
    pub breaker: Option<BreakerState>,
}

/// Where events go (the bindings: a weak threadsafe function to JS).
pub type EventSink = Arc<dyn Fn(Event) + Send + Sync>;

/// The service's event sink, set at most once after construction, and whether anyone
/// watches it.
#[derive(Default)]
pub struct Events {
    sink: OnceLock<EventSink>,
    /// On with the sink, off while the bindings say nobody listens: an unwatched event
    /// would cost two digests and a hop to the JS thread per exchange for the wrapper to
    /// drop it.
    watched: AtomicBool,
}

impl Events {
    /// Sends the events to `sink` from now on (watched until told otherwise).
    pub fn set(&self, sink: EventSink) {
        if self.sink.set(sink).is_ok() {
            self.watch(true);
        }
    }

    /// Whether the sink has anyone listening, as the bindings last saw it.
    pub fn watch(&self, on: bool) {
        self.watched.store(on, Ordering::Relaxed);
    }

    /// Sends the event `build` makes, if there is a sink and it is watched (else builds
    /// nothing).
    fn emit(&self, build: impl FnOnce() -> Event) {
        if !self.watched.load(Ordering::Relaxed) {
            return;
        }
        if let Some(sink) = self.sink.get() {
            sink(build());
        }
    }

    /// A moka eviction listener that publishes `cache:evict`.
    pub fn evict_listener(self: &Arc<Self>) -> EvictListener {
        let events = Arc::downgrade(self);
        Arc::new(move |key: &str, cause| {
            if let Some(events) = events.upgrade() {
                events.emit(|| Event {
                    cause: Some(cause),
                    ..Event::about(Channel::CacheEvict, key)
                });
            }
        })
    }

    /// Publishes `exchange:start` and returns the watch that publishes its end.
    pub fn exchange_started<'a>(&'a self, request: &'a Request) -> Watch<'a> {
        self.emit(|| Event {
            refresh: request.refresh,
            ..Event::about(Channel::ExchangeStart, &request.key)
        });
        Watch {
            events: self,
            request,
            started: Instant::now(),
            grant: OnceLock::new(),
        }
    }

    /// The shared tier's breaker opened or closed (`shared:breaker`); no entry or user.
    pub fn breaker_changed(&self, state: BreakerState) {
        self.emit(|| Event {
            breaker: Some(state),
            ..Event::bare(Channel::SharedBreaker)
        });
    }

    pub fn refresh_started(&self, request: &Request) {
        self.emit(|| Event::about(Channel::RefreshStart, &request.key));
    }

    pub fn refresh_ended(
        &self,
        request: &Request,
        started: Instant,
        outcome: Result<(), &ExchangeError>,
        skipped: bool,
    ) {
        self.emit(|| Event {
            duration_ms: Some(elapsed_ms(started)),
            outcome: Some(match outcome {
                _ if skipped => Outcome::Skipped,
                Ok(()) => Outcome::Success,
                Err(_) => Outcome::Failure,
            }),
            ..Event::about(Channel::RefreshEnd, &request.key).failure(outcome.err())
        });
    }
}

/// An exchange under way: remembers the grant it sent, and publishes `exchange:end`.
pub struct Watch<'a> {
    events: &'a Events,
    request: &'a Request,
    started: Instant,
    grant: OnceLock<GrantKind>,
}

impl Watch<'_> {
    pub fn grant(&self, kind: GrantKind) {
        let _ = self.grant.set(kind);
    }

    pub fn ended<T>(&self, outcome: &Result<T, ExchangeError>) {
        self.events.emit(|| Event {
            refresh: self.request.refresh,
            grant: self.grant.get().copied(),
            outcome: Some(if outcome.is_ok() {
                Outcome::Success
            } else {
                Outcome::Failure
            }),
            duration_ms: Some(elapsed_ms(self.started)),
            ..Event::about(Channel::ExchangeEnd, &self.request.key).failure(outcome.as_ref().err())
        });
    }
}

impl Event {
    /// An event about the entry under `key`, with its digests and scopes.
    fn about(channel: Channel, key: &str) -> Self {
        // The key is `tenant␟issuer␟subject␟scopes␟digest[␟audience␟resource]`.
        let mut parts = key.splitn(5, SEPARATOR);
        let identity_len: usize = parts.by_ref().take(3).map(|p| p.len() + 1).sum();
        let scopes = parts.next().unwrap_or_default();
        Self {
            identity: short_digest(&key[..identity_len.min(key.len())]),
            key: short_digest(key),
            scopes: scopes.to_owned(),
            ..Self::bare(channel)
        }
    }

    /// An event about no entry.
    fn bare(channel: Channel) -> Self {
        Self {
            channel,
            identity: String::new(),
            key: String::new(),
            scopes: String::new(),
            refresh: false,
            grant: None,
            outcome: None,
            duration_ms: None,
            reason: None,
            error: None,
            error_codes: None,
            status: None,
            cause: None,
            breaker: None,
        }
    }

    /// Adds what may be told of a failure: the reason, codes and status, never the
    /// message (an IdP's description can name the user).
    fn failure(mut self, error: Option<&ExchangeError>) -> Self {
        if let Some(error) = error {
            let body = error.idp_body();
            self.reason = Some(error.failure_reason());
            self.error = body
                .and_then(|b| b.error.clone())
                .or_else(|| error.code().map(str::to_owned));
            self.error_codes = body.and_then(|b| b.error_codes.clone());
            self.status = error.status();
        }
        self
    }
}

fn short_digest(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    hex::encode(&digest[..8])
}

fn elapsed_ms(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_names_the_user_and_the_entry_only_by_digest() {
        let key = "tenant\u{1f}https://idp\u{1f}alice\u{1f}api://files/.default\u{1f}abcdef";
        let event = Event::about(Channel::CacheEvict, key);
        assert_eq!(event.scopes, "api://files/.default");
        assert_eq!(
            event.identity,
            short_digest("tenant\u{1f}https://idp\u{1f}alice\u{1f}")
        );
        assert_eq!(event.identity.len(), 16);
        assert_eq!(event.key, short_digest(key));
        assert!(!format!("{event:?}").contains("alice"));
        let other = Event::about(
            Channel::CacheEvict,
            "tenant\u{1f}https://idp\u{1f}alice\u{1f}mail\u{1f}012345",
        );
        assert_eq!(
            other.identity, event.identity,
            "one user, one identity digest"
        );
        assert_ne!(other.key, event.key);
    }

    #[test]
    fn nothing_is_built_without_a_sink() {
        let events = Events::default();
        events.watch(true);
        events.emit(|| panic!("built without a sink"));
    }

    /// A sink that counts what reaches it.
    fn counting() -> (Events, Arc<std::sync::atomic::AtomicUsize>) {
        let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let events = Events::default();
        let seen = Arc::clone(&count);
        events.set(Arc::new(move |_| {
            seen.fetch_add(1, Ordering::Relaxed);
        }));
        (events, count)
    }

    #[test]
    fn a_sink_is_watched_until_told_otherwise_and_nothing_is_built_meanwhile() {
        let (events, count) = counting();
        events.emit(|| Event::bare(Channel::SharedBreaker));
        events.watch(false);
        events.emit(|| panic!("built unwatched"));
        events.watch(true);
        events.emit(|| Event::bare(Channel::SharedBreaker));
        assert_eq!(count.load(Ordering::Relaxed), 2);
    }
}
