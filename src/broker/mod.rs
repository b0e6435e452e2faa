//! `OboService`, the broker in plain Rust: it answers a call from the local tier, an
//! exchange in flight, or a new exchange with its retries, and counts and logs what
//! it did. No napi types here, so all of it runs under `cargo test`.

mod events;
mod log;
mod plan;
mod refresh;
mod request;
mod scheduled;
mod shared;
mod stats;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once};

use reqwest::Client;

use crate::cache::flights::{Flight, Flights};
use crate::cache::local::TokenCache;
use crate::cache::refresh::jitter_sample;
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
use crate::protocol::grant::{self, GrantKind, GrantMode};
use crate::protocol::http::{self, ClientSettings};
use crate::protocol::id_jag::{IdJag, IdJagRequest, Idp};
use crate::protocol::retry::RetryPolicy;
use crate::protocol::ssrf::Guard;
use crate::protocol::verify::Verifier;

#[cfg(test)]
use events::Channel;
pub use events::{Event, EventSink, Outcome};
pub use log::{Level, Logger};
pub use plan::Plan;
pub use refresh::Hit;
pub use request::{Call, Request};
pub use scheduled::Granted;
pub use stats::Stats;

use events::Events;
use log::Log;
use refresh::Ahead;
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
    /// Refresh-ahead (`refresh.rs`) and the event sink (`events.rs`).
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
                inner.forced(request).await
            }
        }
    }

    /// Drops the cached tokens of one identity, or of one identity and scope string;
    /// returns the ids of the dropped tokens (the wrapper forgets the JS strings it
    /// keeps under them). Exchanges in flight are not cancelled.
    pub fn invalidate(
        &self,
        user: &IdentitySource,
        context: Option<&IdentitySource>,
        scopes: Option<&str>,
    ) -> Result<Vec<u64>, RequestError> {
        let identity = IdentityTuple::resolve(user, context).ok_or(RequestError::NotOpenIdUser)?;
        let dropped = Invalidation::new(&identity, scopes);
        Ok(self.inner.cache.remove_prefix(dropped.prefix()))
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

impl Inner {
    /// Joins the exchange in flight for the key, or starts one (a cached answer that
    /// arrived meanwhile wins).
    async fn join_or_start(self: Arc<Self>, request: Request) -> ExchangeOutcome {
        let counters = &self.counters;
        let flight = self.flights.join_or_start(
            &request.key,
            || self.cache.get(&request.key),
            || Arc::clone(&self).fill(request.clone()),
        );
        match flight {
            Flight::Ready(token) => {
                Counters::bump(&counters.hits);
                Ok(token)
            }
            Flight::Joined(shared) => {
                Counters::bump(&counters.misses);
                Counters::bump(&counters.coalesced);
                self.log.write(Level::Debug, || {
                    format!(
                        "Joining in-flight OBO exchange for user: {}",
                        request.subject
                    )
                });
                shared.await
            }
            Flight::Started(shared) => {
                Counters::bump(&counters.misses);
                shared.await
            }
        }
    }

    /// One exchange with its retries; a success is cached before it is returned.
    async fn run_exchange(self: Arc<Self>, request: Request) -> ExchangeOutcome {
        let watch = self.events.exchange_started(&request);
        let outcome = self.exchange_watched(&request, &watch).await;
        watch.ended(&outcome);
        outcome
    }

    /// `run_exchange`, telling `watch` the grant it sends.
    async fn exchange_watched(
        &self,
        request: &Request,
        watch: &events::Watch<'_>,
    ) -> ExchangeOutcome {
        if let Err(error) = self.verify(&request.assertion).await {
            return self.failed(request, error);
        }
        Counters::bump(&self.counters.exchanges);
        self.log.write(Level::Debug, || {
            format!(
                "Requesting new OBO token for user: {}, scopes: {}",
                request.subject, request.scopes
            )
        });
        let requested_at = expiry::now_ms();
        let on_retry = |error: &ExchangeError, wait: std::time::Duration| {
            Counters::bump(&self.counters.retries);
            self.log.write(Level::Warn, || {
                format!(
                    "Transient OBO exchange failure for user: {}, retrying in {} ms: {error}",
                    request.subject,
                    wait.as_millis()
                )
            });
        };
        match self
            .retry
            .run(|| self.attempt(request, watch), on_retry)
            .await
        {
            Ok(grant) => Ok(self.store(request, grant, requested_at)),
            Err(error) => self.failed(request, error),
        }
    }

    /// One request to the token endpoint, with the grant the IdP and the call allow.
    async fn attempt(
        &self,
        request: &Request,
        watch: &events::Watch<'_>,
    ) -> Result<grant::GrantResponse, ExchangeError> {
        let endpoint = self.discovery.endpoint(&self.http).await?;
        let kind = self
            .config
            .grant
            .choose(endpoint.grant_types)
            .map_err(ExchangeError::Grant)?;
        if self.config.grant == GrantMode::Auto {
            self.auto_told.call_once(|| {
                let why = self.config.grant.reason(endpoint.grant_types);
                self.log.write(Level::Debug, || {
                    format!(
                        "grantType 'auto' sends {} to {}: {why}",
                        kind.option_name(),
                        endpoint.url
                    )
                });
            });
        }
        watch.grant(kind);
        let send_resource = self.config.resource_indicator.sends(kind);
        if let Some(id_jag) = self.id_jag.as_ref().filter(|_| kind == GrantKind::IdJag) {
            let idp = Idp {
                endpoint: endpoint.url,
                auth: &self.config.client_auth,
            };
            let call = IdJagRequest {
                subject_token: &request.assertion,
                scopes: &request.scopes,
                resource: request.resource.as_deref(),
                audience: request.audience.as_deref(),
                claims: request.claims.as_deref(),
                resource_metadata: request.resource_metadata.as_deref(),
                send_resource,
            };
            return id_jag.obtain(&self.http, idp, &call).await;
        }
        let grant = grant::GrantRequest {
            assertion: &request.assertion,
            scopes: &request.scopes,
            claims: request.claims.as_deref(),
            audience: request.audience.as_deref(),
            resource: request.resource.as_deref().filter(|_| send_resource),
        };
        grant::request_token(
            &self.http,
            endpoint.url,
            &self.config.client_auth,
            kind,
            &self.config.token_exchange,
            &grant,
        )
        .await
    }

    /// Caches a granted token under the request's key, expiry stamped at request time.
    fn store(
        &self,
        request: &Request,
        grant: grant::GrantResponse,
        requested_at: u64,
    ) -> Arc<OboToken> {
        let expires_in = expiry::normalize_expires_in(grant.expires_in.as_ref());
        let expires_at = requested_at + expires_in * 1000;
        let refresh_in = expiry::declared_lifetime_secs(grant.refresh_in.as_ref());
        let policy = &self.ahead.policy;
        let took = expiry::now_ms().saturating_sub(requested_at);
        let token = Arc::new(OboToken {
            id: self.next_token_id.fetch_add(1, Ordering::Relaxed),
            access_token: grant.access_token,
            expires_in,
            expires_at,
            refresh_at: policy.refresh_at(requested_at, expires_at, refresh_in, jitter_sample()),
            traffic: policy.traffic(requested_at, refresh_in, took),
            scope: request.scopes.to_string(),
            issued_token_type: grant.issued_token_type,
        });
        self.cache.insert(request.key.clone(), Arc::clone(&token));
        self.log.write(Level::Debug, || {
            format!(
                "Obtained and cached OBO token for user: {}",
                request.subject
            )
        });
        token
    }

    /// With `validateAssertion`, refuses an assertion that does not verify (once per
    /// flight: joiners share the leader's assertion, so they share its verdict).
    async fn verify(&self, assertion: &str) -> Result<(), ExchangeError> {
        let Some(verifier) = &self.verifier else {
            return Ok(());
        };
        let (jwks_uri, issuer) = self.discovery.keys(&self.http).await?;
        verifier
            .verify(assertion, jwks_uri, issuer, &self.http)
            .await
    }

    fn failed(&self, request: &Request, error: ExchangeError) -> ExchangeOutcome {
        if request.refresh {
            return Err(error); // counted and logged once by `refresh.rs`
        }
        Counters::bump(&self.counters.failures);
        self.log.write(Level::Error, || {
            format!("OBO exchange failed for user: {}: {error}", request.subject)
        });
        Err(error)
    }
}
