//! `OboService`, the broker in plain Rust: it answers a call from the local tier, an
//! exchange in flight, or a new exchange with its retries, and counts and logs what
//! it did. No napi types here, so all of it runs under `cargo test`.

mod events;
mod exchange;
mod log;
mod plan;
mod refresh_ahead;
mod request;
mod scheduled;
mod shared;
mod stats;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Once};

use reqwest::Client;

use crate::cache::flights::Flights;
use crate::cache::local::TokenCache;
use crate::cache::shared::SharedTier;
use crate::cache::token::OboToken;
use crate::config::Config;
use crate::ground::error::{BuildError, ExchangeError, RequestError};
use crate::ground::expiry;
use crate::ground::identity::{
    AssertionDigest, IdentitySource, IdentityTuple, Invalidation, Target,
};
use crate::protocol::assertion;
use crate::protocol::discovery::Discovery;
use crate::protocol::grant;
use crate::protocol::http::{self, ClientSettings};
use crate::protocol::id_jag::IdJag;
use crate::protocol::retry::RetryPolicy;
use crate::protocol::ssrf::Guard;
use crate::protocol::verify::Verifier;

#[cfg(test)]
use events::Channel;
pub use events::{Event, EventSink, Outcome};
pub use log::{Level, Logger};
pub use plan::Plan;
pub use refresh_ahead::Hit;
pub use request::{Call, Request};
pub use scheduled::Granted;
pub use stats::Stats;

use events::Events;
use log::Log;
use refresh_ahead::Ahead;
use request::checked_identity;
use stats::Counters;

type ExchangeOutcome = Result<Arc<OboToken>, ExchangeError>;

/// The broker: one per client registration, shared by every request.
#[derive(Clone)]
pub struct OboService {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    http: Client,
    discovery: Discovery,
    retry: RetryPolicy,
    cache: Arc<TokenCache>,
    /// The shared Redis tier, when configured.
    shared: Option<SharedTier>,
    flights: Arc<Flights<Arc<OboToken>, ExchangeError>>,
    counters: Counters,
    log: Log,
    verifier: Option<Verifier>,
    /// `grantType: 'id_jag'`: discovery and both legs.
    id_jag: Option<IdJag>,
    /// Source of `OboToken::id`.
    next_token_id: AtomicU64,
    /// Refresh-ahead (`refresh_ahead.rs`) and the event sink (`events.rs`).
    ahead: Ahead,
    events: Arc<Events>,
    /// `grantType: 'auto'`'s choice is logged once (discovery is kept, so it holds).
    auto_told: Once,
}

impl OboService {
    /// Builds the service; fails only if the HTTP client cannot be built (a proxy URL
    /// reqwest refuses).
    pub fn new(config: Config, logger: Option<Logger>) -> Result<Self, BuildError> {
        let settings = ClientSettings {
            timeout: config.request_timeout,
            proxy: config.proxy.as_ref(),
        };
        let http = http::client(&settings)?;
        let id_jag = match config.id_jag.clone() {
            Some(c) => {
                let allowed = config.allowed_domains.clone();
                let guard = Guard::new(allowed, c.issuer.clone(), http.clone(), &settings)?;
                let subject = config.token_exchange.subject_token_type.clone();
                Some(IdJag::new(c.client_auth, c.issuer, subject, guard))
            }
            None => None,
        };
        let events = Arc::new(Events::default());
        let cache = Arc::new(TokenCache::with_listener(
            config.max_cache_entries,
            config.expiry_buffer,
            Some(events.evict_listener()),
        ));
        let shared = shared::tier(&config, &cache, logger.clone(), &events)?;
        Ok(Self {
            inner: Arc::new(Inner {
                discovery: Discovery::new(config.issuer.clone(), config.token_endpoint.clone()),
                retry: RetryPolicy {
                    max_retries: config.max_retries,
                    delay: config.retry_delay,
                },
                cache,
                shared,
                ahead: Ahead::new(&config),
                events,
                flights: Arc::default(),
                counters: Counters::default(),
                verifier: config.verify.clone().map(Verifier::new),
                id_jag,
                next_token_id: AtomicU64::new(1),
                auto_told: Once::new(),
                log: Log::new(logger),
                http,
                config,
            }),
        })
    }

    /// Sends the service's events (`events.rs`) to `sink`, from now on; once.
    pub fn observe(&self, sink: EventSink) {
        self.inner.events.set(sink);
    }

    /// Whether anyone listens to the events `observe` sends (the bindings ask the
    /// wrapper); nothing is built or sent while nobody does.
    pub fn watch_events(&self, on: bool) {
        self.inner.events.watch(on);
    }

    /// Checks a call in LibreChat's order and builds its request (see `Request::new`).
    pub fn prepare(&self, call: Call<'_>) -> Result<Request, RequestError> {
        Request::new(call)
    }

    /// The hot path, run on the caller's thread: the cached token for an assertion
    /// known by its digest (`AssertionDigest::of`), with the same checks as `prepare`.
    /// `None` means the caller goes on with `prepare` and `exchange`; a hit past its
    /// token's refresh point may ask the caller to start the refresh (`Hit`).
    pub fn cached_by_digest(
        &self,
        user: &IdentitySource,
        context: Option<&IdentitySource>,
        digest: &str,
        scopes: &str,
        target: &Target,
    ) -> Result<Option<Hit>, RequestError> {
        let digest = AssertionDigest::parse(digest).ok_or(RequestError::NotADigest)?;
        let identity = checked_identity(user, context, scopes, target)?;
        let key = identity.cache_key_with_digest(scopes, &digest, target);
        let now = expiry::now_ms();
        let Some(token) = self.inner.cache.get_at(&key, now) else {
            return Ok(None);
        };
        Counters::bump(&self.inner.counters.hits);
        let refresh_due = self.inner.refresh_due(&key, &token, now);
        Ok(Some(Hit { token, refresh_due }))
    }

    /// Answers `request` from the cache, an exchange in flight, or a new exchange.
    /// With `from_cache` false it neither reads nor joins, but its result is cached.
    pub fn exchange(
        &self,
        request: Request,
    ) -> impl Future<Output = ExchangeOutcome> + Send + 'static {
        let inner = Arc::clone(&self.inner);
        let refused = assertion::precheck(
            &request.assertion,
            (expiry::now_ms() / 1000) as i64,
            inner.config.demand(),
        )
        .err();
        async move {
            if let Some(problem) = refused {
                Counters::bump(&inner.counters.failures);
                inner.log.write(Level::Warn, || {
                    format!(
                        "OBO exchange refused for user: {}: {problem}",
                        request.subject
                    )
                });
                return Err(ExchangeError::Assertion(problem));
            }
            if request.from_cache {
                inner.join_or_start(request).await
            } else {
                inner.forced_exchange(request).await
            }
        }
    }

    /// Drops the cached tokens of one identity, or of one identity and scope string;
    /// returns the ids of the dropped tokens (the wrapper forgets the JS strings it
    /// keeps under them) and what was dropped, for `invalidate_shared`. Exchanges in
    /// flight are not cancelled.
    pub fn invalidate(
        &self,
        user: &IdentitySource,
        context: Option<&IdentitySource>,
        scopes: Option<&str>,
    ) -> Result<(Vec<u64>, Invalidation), RequestError> {
        let identity = IdentityTuple::resolve(user, context).ok_or(RequestError::NotOpenIdUser)?;
        let dropped = Invalidation::new(&identity, scopes);
        Ok((self.inner.cache.remove_prefix(dropped.prefix()), dropped))
    }

    pub fn clear(&self) {
        self.inner.cache.clear();
        self.inner.ahead.table.clear();
    }

    /// The field of the user's token set this service exchanges: `access_token`, or with
    /// `grantType: 'id_jag'` the `id_token` (or `refresh_token`, as `subjectTokenType` says).
    pub fn subject_field(&self) -> &'static str {
        let config = &self.inner.config;
        match config.token_exchange.subject_token_type.as_str() {
            _ if config.id_jag.is_none() => "access_token",
            grant::REFRESH_TOKEN_TYPE => "refresh_token",
            _ => "id_token",
        }
    }

    pub fn stats(&self) -> Stats {
        let shared = self.inner.shared.as_ref().map(SharedTier::stats);
        self.inner.counters.snapshot(self.inner.cache.len(), shared)
    }
}
