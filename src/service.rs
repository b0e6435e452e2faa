//! `OboTokenService` in plain Rust: argument checks, cache, single-flight, retry and
//! the exchange itself. No napi types here, so all of it runs under `cargo test`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use reqwest::Client;

use crate::assertion;
use crate::cache::{Flight, Flights, OboToken, TokenCache};
use crate::config::Config;
use crate::discovery::Discovery;
use crate::error::ExchangeError;
use crate::expiry;
use crate::grant;
use crate::identity::{AssertionDigest, IdentitySource, IdentityTuple, Target, SEPARATOR};
use crate::redact::redacted_debug;
use crate::retry::RetryPolicy;
use crate::verify::Verifier;

/// Log levels, named as LibreChat's logger methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Debug,
    Warn,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Debug => "debug",
            Self::Warn => "warn",
            Self::Error => "error",
        }
    }
}

/// Where log lines go. Lines never contain a token, an assertion or a secret.
pub type Logger = Arc<dyn Fn(Level, String) + Send + Sync>;

/// Why a call was refused before any exchange: LibreChat's messages, or ours for
/// values LibreChat never checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("Access token is required for OBO exchange")]
    MissingAccessToken,
    #[error("Scopes are required for OBO exchange")]
    MissingScopes,
    #[error("User must be authenticated via OpenID to perform OBO token exchange")]
    NotOpenIdUser,
    #[error("{0} must not contain the U+001F character")]
    SeparatorInValue(&'static str),
    #[error("digest must be the 64 lowercase hex digits assertionDigest returns")]
    NotADigest,
}

/// LibreChat's checks of the scopes and the identity, in its order; the identity tuple.
fn checked_identity<'a>(
    user: &IdentitySource<'a>,
    context: Option<&IdentitySource<'a>>,
    scopes: &str,
    target: &Target,
) -> Result<IdentityTuple<'a>, RequestError> {
    if scopes.trim().is_empty() {
        return Err(RequestError::MissingScopes);
    }
    if scopes.contains(SEPARATOR) {
        return Err(RequestError::SeparatorInValue("scopes"));
    }
    target
        .check_separators()
        .map_err(|bad| RequestError::SeparatorInValue(bad.0))?;
    let identity = IdentityTuple::resolve(user, context).ok_or(RequestError::NotOpenIdUser)?;
    identity
        .check_separators()
        .map_err(|bad| RequestError::SeparatorInValue(bad.0))?;
    Ok(identity)
}

/// A checked request: its cache key, and what a miss needs to go to the IdP.
pub struct ExchangeRequest<'a> {
    key: String,
    subject: &'a str,
    assertion: &'a str,
    scopes: &'a str,
    claims: Option<&'a str>,
    target: Target<'a>,
    /// False when the caller forces a fresh exchange, or answers a claims challenge.
    from_cache: bool,
}

/// One call as the caller makes it (LibreChat's `exchangeOboToken` arguments, plus
/// the RFC 8693 target).
#[derive(Clone, Copy)]
pub struct Call<'a> {
    pub user: IdentitySource<'a>,
    pub context: Option<IdentitySource<'a>>,
    pub access_token: &'a str,
    pub scopes: &'a str,
    pub target: Target<'a>,
    pub claims: Option<&'a str>,
    /// False when the caller forces a fresh exchange.
    pub from_cache: bool,
}

redacted_debug!(Call<'a> {
    shown: [user, context, scopes, target, from_cache],
    hidden: [access_token, claims],
});

/// A request that missed the cache, owning what the exchange needs across awaits.
#[derive(Clone)]
struct OwnedRequest {
    key: String,
    subject: Arc<str>,
    assertion: Arc<str>,
    scopes: Arc<str>,
    claims: Option<Arc<str>>,
    audience: Option<Arc<str>>,
    resource: Option<Arc<str>>,
}

redacted_debug!(ExchangeRequest<'a> {
    shown: [key, subject, scopes, target, from_cache],
    hidden: [assertion, claims],
});
redacted_debug!(OwnedRequest {
    shown: [key, subject, scopes, audience, resource],
    hidden: [assertion, claims]
});

impl ExchangeRequest<'_> {
    fn to_owned_request(&self) -> OwnedRequest {
        OwnedRequest {
            key: self.key.clone(),
            subject: self.subject.into(),
            assertion: self.assertion.into(),
            scopes: self.scopes.into(),
            claims: self.claims.map(Into::into),
            audience: self.target.audience.map(Into::into),
            resource: self.target.resource.map(Into::into),
        }
    }
}

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

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    coalesced: AtomicU64,
    exchanges: AtomicU64,
    retries: AtomicU64,
    failures: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

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
    cache: TokenCache,
    flights: Arc<Flights<Arc<OboToken>, ExchangeError>>,
    counters: Counters,
    logger: Option<Logger>,
    verifier: Option<Verifier>,
    /// Source of `OboToken::id`.
    next_token_id: AtomicU64,
}

impl OboService {
    /// Builds the service; fails only if the HTTP client cannot be built (a proxy URL
    /// reqwest refuses).
    pub fn new(config: Config, logger: Option<Logger>) -> Result<Self, String> {
        let http = http_client(&config)?;
        Ok(Self {
            inner: Arc::new(Inner {
                discovery: Discovery::new(config.issuer.clone(), config.token_endpoint.clone()),
                retry: RetryPolicy {
                    max_retries: config.max_retries,
                    delay: config.retry_delay,
                },
                cache: TokenCache::new(config.max_cache_entries, config.expiry_buffer),
                flights: Arc::default(),
                counters: Counters::default(),
                verifier: config.verify.clone().map(Verifier::new),
                next_token_id: AtomicU64::new(1),
                http,
                config,
                logger,
            }),
        })
    }

    /// Checks the arguments in LibreChat's order (access token, scopes, identity) and
    /// builds the cache key. A request that carries `claims` (a client answering a
    /// claims challenge) neither reads the cache nor joins a flight: the cached token is
    /// the one the resource just refused.
    pub fn prepare<'a>(&self, call: Call<'a>) -> Result<ExchangeRequest<'a>, RequestError> {
        let Call {
            user,
            context,
            access_token,
            scopes,
            target,
            claims,
            from_cache,
        } = call;
        if access_token.is_empty() {
            return Err(RequestError::MissingAccessToken);
        }
        let identity = checked_identity(&user, context.as_ref(), scopes, &target)?;
        Ok(ExchangeRequest {
            key: identity.cache_key(scopes, access_token, &target),
            subject: identity.subject,
            assertion: access_token,
            scopes,
            claims,
            target,
            from_cache: from_cache && claims.is_none(),
        })
    }

    /// The hot path, run on the caller's thread: the cached token for an assertion
    /// known by its digest (`AssertionDigest::of`), with the same checks as `prepare`.
    /// `None` means the caller goes on with `prepare` and `exchange`.
    pub fn cached_by_digest(
        &self,
        user: &IdentitySource,
        context: Option<&IdentitySource>,
        digest: &str,
        scopes: &str,
        target: &Target,
    ) -> Result<Option<Arc<OboToken>>, RequestError> {
        let digest = AssertionDigest::parse(digest).ok_or(RequestError::NotADigest)?;
        let identity = checked_identity(user, context, scopes, target)?;
        let token = self
            .inner
            .cache
            .get(&identity.cache_key_with_digest(scopes, &digest, target));
        if token.is_some() {
            bump(&self.inner.counters.hits);
        }
        Ok(token)
    }

    /// Answers `request` from the cache, an exchange in flight, or a new exchange.
    /// With `from_cache` false it neither reads nor joins, but its result is cached.
    pub fn exchange(
        &self,
        request: &ExchangeRequest<'_>,
    ) -> impl std::future::Future<Output = ExchangeOutcome> + Send + 'static {
        let inner = Arc::clone(&self.inner);
        let from_cache = request.from_cache;
        let refused =
            assertion::precheck(request.assertion, (expiry::now_ms() / 1000) as i64).err();
        let request = request.to_owned_request();
        async move {
            if let Some(problem) = refused {
                bump(&inner.counters.failures);
                inner.log(Level::Warn, || {
                    format!(
                        "OBO exchange refused for user: {}: {problem}",
                        request.subject
                    )
                });
                return Err(ExchangeError::Assertion(problem));
            }
            if from_cache {
                inner.join_or_start(request).await
            } else {
                inner.run_exchange(request).await
            }
        }
    }

    /// Drops the cached tokens of one identity, or of one identity and scope string;
    /// returns how many were dropped. Exchanges in flight are not cancelled.
    pub fn invalidate(
        &self,
        user: &IdentitySource,
        context: Option<&IdentitySource>,
        scopes: Option<&str>,
    ) -> Result<u64, RequestError> {
        let identity = IdentityTuple::resolve(user, context).ok_or(RequestError::NotOpenIdUser)?;
        let mut prefix = identity.key_prefix();
        if let Some(scopes) = scopes {
            prefix.push_str(scopes);
            prefix.push(SEPARATOR);
        }
        Ok(self.inner.cache.invalidate_prefix(&prefix))
    }

    pub fn clear(&self) {
        self.inner.cache.clear();
    }

    pub fn stats(&self) -> Stats {
        let c = &self.inner.counters;
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Stats {
            hits: load(&c.hits),
            misses: load(&c.misses),
            coalesced: load(&c.coalesced),
            exchanges: load(&c.exchanges),
            retries: load(&c.retries),
            failures: load(&c.failures),
            entries: self.inner.cache.len(),
        }
    }
}

impl Inner {
    /// Joins the exchange in flight for the key, or starts one (a cached answer that
    /// arrived meanwhile wins).
    async fn join_or_start(self: Arc<Self>, request: OwnedRequest) -> ExchangeOutcome {
        let counters = &self.counters;
        let flight = self.flights.join_or_start(
            &request.key,
            || self.cache.get(&request.key),
            || Arc::clone(&self).run_exchange(request.clone()),
        );
        match flight {
            Flight::Ready(token) => {
                bump(&counters.hits);
                Ok(token)
            }
            Flight::Joined(shared) => {
                bump(&counters.misses);
                bump(&counters.coalesced);
                self.log(Level::Debug, || {
                    format!(
                        "Joining in-flight OBO exchange for user: {}",
                        request.subject
                    )
                });
                shared.await
            }
            Flight::Started(shared) => {
                bump(&counters.misses);
                shared.await
            }
        }
    }

    fn log(&self, level: Level, message: impl FnOnce() -> String) {
        if let Some(logger) = &self.logger {
            logger(level, format!("[OboTokenService] {}", message()));
        }
    }

    /// One exchange with its retries; a success is cached before it is returned.
    async fn run_exchange(self: Arc<Self>, request: OwnedRequest) -> ExchangeOutcome {
        if let Err(error) = self.verify(&request.assertion).await {
            return self.failed(&request, error);
        }
        bump(&self.counters.exchanges);
        self.log(Level::Debug, || {
            format!(
                "Requesting new OBO token for user: {}, scopes: {}",
                request.subject, request.scopes
            )
        });
        let requested_at = expiry::now_ms();
        let attempt = || async {
            let endpoint = self.discovery.endpoint(&self.http).await?;
            let kind = self
                .config
                .grant
                .choose(endpoint.grant_types)
                .map_err(ExchangeError::Grant)?;
            let grant = grant::GrantRequest {
                assertion: &request.assertion,
                scopes: &request.scopes,
                claims: request.claims.as_deref(),
                audience: request.audience.as_deref(),
                resource: request.resource.as_deref(),
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
        };
        let on_retry = |error: &ExchangeError, wait: std::time::Duration| {
            bump(&self.counters.retries);
            self.log(Level::Warn, || {
                format!(
                    "Transient OBO exchange failure for user: {}, retrying in {} ms: {error}",
                    request.subject,
                    wait.as_millis()
                )
            });
        };
        match self.retry.run(attempt, on_retry).await {
            Ok(grant) => {
                let expires_in = expiry::normalize_expires_in(grant.expires_in.as_ref());
                let token = Arc::new(OboToken {
                    id: self.next_token_id.fetch_add(1, Ordering::Relaxed),
                    access_token: grant.access_token,
                    expires_in,
                    expires_at: requested_at + expires_in * 1000,
                    scope: request.scopes.to_string(),
                    issued_token_type: grant.issued_token_type,
                });
                self.cache.insert(request.key, Arc::clone(&token));
                self.log(Level::Debug, || {
                    format!(
                        "Obtained and cached OBO token for user: {}",
                        request.subject
                    )
                });
                Ok(token)
            }
            Err(error) => self.failed(&request, error),
        }
    }

    /// With `validateAssertion`, refuses an assertion that does not verify (once per
    /// flight: joiners share the leader's assertion, so they share its verdict).
    async fn verify(&self, assertion: &str) -> Result<(), ExchangeError> {
        let Some(verifier) = &self.verifier else {
            return Ok(());
        };
        let metadata = self.discovery.metadata(&self.http).await?;
        verifier
            .verify(assertion, &metadata.jwks_uri, &self.http)
            .await
    }

    fn failed(&self, request: &OwnedRequest, error: ExchangeError) -> ExchangeOutcome {
        bump(&self.counters.failures);
        self.log(Level::Error, || {
            format!("OBO exchange failed for user: {}: {error}", request.subject)
        });
        Err(error)
    }
}

/// One pooled client per service: rustls, no redirects (a token endpoint that
/// redirects is misconfigured, and following would resend the credential), no proxy
/// unless configured, as LibreChat ignores HTTP(S)_PROXY and honours only `PROXY`.
fn http_client(config: &Config) -> Result<Client, String> {
    let builder = Client::builder()
        .use_rustls_tls()
        .timeout(config.request_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("librechat-obo/", env!("CARGO_PKG_VERSION")));
    let builder = match &config.proxy {
        Some(proxy) => builder
            .proxy(reqwest::Proxy::all(proxy.as_str()).map_err(|e| format!("options.proxy: {e}"))?),
        None => builder.no_proxy(),
    };
    builder.build().map_err(|e| format!("HTTP client: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Options;
    use crate::test_server::{json, Reply, TestServer};
    use std::time::{Duration, Instant};

    const OK: &str =
        r#"{"access_token":"downstream-at","token_type":"Bearer","expires_in":"3599"}"#;
    /// {"alg":"RS256","typ":"JWT"}.{"sub":"alice","exp":4102444800}.signature
    const ASSERTION: &str =
        "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6NDEwMjQ0NDgwMH0.c2ln";

    fn service(server: &TestServer, tweak: impl FnOnce(&mut Options)) -> OboService {
        let mut options = Options {
            issuer: Some(server.url.clone()),
            client_id: Some("middle-tier".into()),
            client_secret: Some("middle-secret".into()),
            token_endpoint: Some(format!("{}/token", server.url)),
            retry_delay_ms: Some(1.0),
            ..Options::default()
        };
        tweak(&mut options);
        OboService::new(Config::from_options(options).unwrap(), None).unwrap()
    }

    fn user(subject: &str) -> IdentitySource<'_> {
        IdentitySource {
            subject: Some(subject),
            ..IdentitySource::default()
        }
    }

    fn call<'a>(subject: &'a str, access_token: &'a str) -> Call<'a> {
        Call {
            user: user(subject),
            context: None,
            access_token,
            scopes: "api://mcp/.default",
            target: Target::default(),
            claims: None,
            from_cache: true,
        }
    }

    fn request<'a>(svc: &OboService, subject: &'a str, from_cache: bool) -> ExchangeRequest<'a> {
        svc.prepare(Call {
            from_cache,
            ..call(subject, ASSERTION)
        })
        .unwrap()
    }

    /// The cached token of `subject` for `ASSERTION`, as the wrapper's hot path asks.
    fn hit(svc: &OboService, subject: &str) -> Option<Arc<OboToken>> {
        let digest = AssertionDigest::of(ASSERTION);
        svc.cached_by_digest(
            &user(subject),
            None,
            digest.as_str(),
            "api://mcp/.default",
            &Target::default(),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn sends_librechats_grant_and_caches_the_answer() {
        let server = TestServer::start(vec![json(200, OK)]).await;
        let svc = service(&server, |_| {});
        let before = expiry::now_ms();
        let token = svc.exchange(&request(&svc, "alice", true)).await.unwrap();
        assert_eq!(token.access_token, "downstream-at");
        assert_eq!(token.expires_in, 3599);
        assert!(
            token.expires_at >= before + 3_599_000
                && token.expires_at <= expiry::now_ms() + 3_599_000
        );
        assert_eq!(token.scope, "api://mcp/.default");

        let sent = server.received();
        assert_eq!(sent.len(), 1);
        let form: Vec<(String, String)> = url::form_urlencoded::parse(sent[0].body.as_bytes())
            .into_owned()
            .collect();
        let field = |name: &str| {
            form.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(field("grant_type"), Some(grant::JWT_BEARER));
        assert_eq!(field("assertion"), Some(ASSERTION));
        assert_eq!(field("scope"), Some("api://mcp/.default"));
        assert_eq!(field("requested_token_use"), Some("on_behalf_of"));
        assert_eq!(field("client_id"), Some("middle-tier"));
        assert_eq!(field("client_secret"), Some("middle-secret"));

        assert_eq!(hit(&svc, "alice"), Some(token));
        assert_eq!(hit(&svc, "bob"), None);
        let stats = svc.stats();
        assert_eq!(
            (stats.hits, stats.misses, stats.exchanges, stats.entries),
            (1, 1, 1, 1)
        );
    }

    #[tokio::test]
    async fn digest_lookup_finds_what_the_exchange_cached() {
        let server = TestServer::start(vec![json(200, OK)]).await;
        let svc = service(&server, |_| {});
        let token = svc.exchange(&request(&svc, "alice", true)).await.unwrap();
        let digest = AssertionDigest::of(ASSERTION);
        let lookup = |subject: &str, digest: &str, scopes: &str| {
            svc.cached_by_digest(&user(subject), None, digest, scopes, &Target::default())
        };
        assert_eq!(
            lookup("alice", digest.as_str(), "api://mcp/.default"),
            Ok(Some(token))
        );
        assert_eq!(
            lookup("bob", digest.as_str(), "api://mcp/.default"),
            Ok(None)
        );
        let other = AssertionDigest::of("another-assertion");
        assert_eq!(
            lookup("alice", other.as_str(), "api://mcp/.default"),
            Ok(None)
        );
        assert_eq!(
            lookup("alice", ASSERTION, "api://mcp/.default"),
            Err(RequestError::NotADigest)
        );
        assert_eq!(
            lookup(" ", digest.as_str(), "s"),
            Err(RequestError::NotOpenIdUser)
        );
        assert_eq!(svc.stats().hits, 1);
    }

    #[tokio::test]
    async fn concurrent_misses_make_one_request() {
        let server =
            TestServer::start(vec![json(200, OK).delayed(Duration::from_millis(100))]).await;
        let svc = service(&server, |_| {});
        let calls = (0..50).map(|_| svc.exchange(&request(&svc, "alice", true)));
        let results = futures_util::future::join_all(calls).await;
        assert!(results
            .iter()
            .all(|r| r.as_ref().unwrap().access_token == "downstream-at"));
        assert_eq!(server.received().len(), 1);
        let stats = svc.stats();
        assert_eq!(
            (stats.misses, stats.coalesced, stats.exchanges),
            (50, 49, 1)
        );
    }

    #[tokio::test]
    async fn forced_exchange_neither_reads_nor_joins_but_writes() {
        let server = TestServer::start(vec![json(200, OK)]).await;
        let svc = service(&server, |_| {});
        svc.exchange(&request(&svc, "alice", true)).await.unwrap();
        svc.exchange(&request(&svc, "alice", false)).await.unwrap();
        assert_eq!(server.received().len(), 2);
        assert!(hit(&svc, "alice").is_some());
    }

    #[tokio::test]
    async fn claims_are_sent_and_bypass_the_cache() {
        let server = TestServer::start(vec![json(200, OK)]).await;
        let svc = service(&server, |_| {});
        svc.exchange(&request(&svc, "alice", true)).await.unwrap();
        let claims = r#"{"access_token":{"capolids":{"essential":true,"values":["p1"]}}}"#;
        let answering = svc
            .prepare(Call {
                claims: Some(claims),
                ..call("alice", ASSERTION)
            })
            .unwrap();
        svc.exchange(&answering).await.unwrap();
        let sent = server.received();
        assert_eq!(sent.len(), 2);
        let form: Vec<(String, String)> = url::form_urlencoded::parse(sent[1].body.as_bytes())
            .into_owned()
            .collect();
        assert!(form.contains(&("claims".to_owned(), claims.to_owned())));
    }

    #[tokio::test]
    async fn an_assertion_that_is_not_a_jwt_never_reaches_the_idp() {
        let server = TestServer::start(vec![json(200, OK)]).await;
        let svc = service(&server, |_| {});
        let request = svc.prepare(call("alice", "opaque")).unwrap();
        let error = svc.exchange(&request).await.unwrap_err();
        assert_eq!(error.code(), Some("ERR_ASSERTION_NOT_JWS"));
        assert!(!error.is_retryable());
        assert!(server.received().is_empty());
        assert_eq!((svc.stats().exchanges, svc.stats().failures), (0, 1));
    }

    #[tokio::test]
    async fn transient_failure_then_success_makes_two_requests() {
        let unavailable = json(503, r#"{"error":"temporarily_unavailable"}"#);
        let server = TestServer::start(vec![unavailable, json(200, OK)]).await;
        let svc = service(&server, |_| {});
        svc.exchange(&request(&svc, "alice", true)).await.unwrap();
        assert_eq!(server.received().len(), 2);
        assert_eq!(svc.stats().retries, 1);
    }

    #[tokio::test]
    async fn dropped_connection_is_retried() {
        let server = TestServer::start(vec![Reply::Drop, json(200, OK)]).await;
        let svc = service(&server, |_| {});
        svc.exchange(&request(&svc, "alice", true)).await.unwrap();
        assert_eq!(server.received().len(), 2);
    }

    #[tokio::test]
    async fn permanent_failure_is_returned_at_once_and_not_cached() {
        let body = r#"{"error":"invalid_grant","error_description":"AADSTS50013: Assertion failed signature validation.","error_codes":[50013]}"#;
        let server = TestServer::start(vec![json(400, body), json(200, OK)]).await;
        let svc = service(&server, |o| o.max_retries = Some(3.0));
        let error = svc
            .exchange(&request(&svc, "alice", true))
            .await
            .unwrap_err();
        assert!(!error.is_retryable());
        assert_eq!(error.status(), Some(400));
        assert_eq!(error.idp_body().unwrap().error_codes, Some(vec![50013]));
        assert_eq!(server.received().len(), 1);
        assert_eq!(svc.stats().entries, 0);
        assert_eq!(svc.stats().failures, 1);
    }

    #[tokio::test]
    async fn retry_after_is_honoured() {
        let throttled = json(429, "{}").header("retry-after", "1");
        let server = TestServer::start(vec![throttled, json(200, OK)]).await;
        let svc = service(&server, |_| {});
        let started = Instant::now();
        svc.exchange(&request(&svc, "alice", true)).await.unwrap();
        assert!(started.elapsed() >= Duration::from_secs(1));
        assert_eq!(server.received().len(), 2);
    }

    #[tokio::test]
    async fn a_response_without_access_token_caches_nothing() {
        let server = TestServer::start(vec![json(200, r#"{"token_type":"Bearer"}"#)]).await;
        let svc = service(&server, |_| {});
        let error = svc
            .exchange(&request(&svc, "alice", true))
            .await
            .unwrap_err();
        assert_eq!(error.failure_reason(), "empty_exchange_response");
        assert_eq!(svc.stats().entries, 0);
    }

    /// A discovery document for `url` advertising `grants` (a JSON array, or none).
    fn discovery_document(url: &str, grants: Option<&str>) -> String {
        let grants = grants.map_or(String::new(), |g| {
            format!(r#","grant_types_supported":{g}"#)
        });
        format!(
            r#"{{"issuer":"{url}","authorization_endpoint":"{url}/auth",
            "token_endpoint":"{url}/token","jwks_uri":"{url}/jwks",
            "response_types_supported":["code"],"subject_types_supported":["public"],
            "id_token_signing_alg_values_supported":["RS256"]{grants}}}"#
        )
    }

    fn form_of(received: &crate::test_server::Received) -> Vec<(String, String)> {
        url::form_urlencoded::parse(received.body.as_bytes())
            .into_owned()
            .collect()
    }

    #[tokio::test]
    async fn auto_picks_token_exchange_sends_rfc_8693_and_keeps_the_issued_type() {
        let server = TestServer::start_with(|url| {
            vec![
                json(200, &discovery_document(url, Some(&format!(r#"["authorization_code","{}","{}"]"#, grant::JWT_BEARER, grant::TOKEN_EXCHANGE)))),
                json(200, r#"{"keys":[]}"#),
                json(200, r#"{"access_token":"te-at","issued_token_type":"urn:ietf:params:oauth:token-type:access_token","token_type":"Bearer","expires_in":300}"#),
            ]
        })
        .await;
        let svc = service(&server, |o| {
            o.token_endpoint = None;
            o.grant_type = Some("auto".into());
        });
        let request = svc
            .prepare(Call {
                target: Target {
                    audience: Some("mcp-files"),
                    resource: Some("https://mcp.example/"),
                },
                ..call("alice", ASSERTION)
            })
            .unwrap();
        let token = svc.exchange(&request).await.unwrap();
        assert_eq!(
            token.issued_token_type.as_deref(),
            Some(grant::ACCESS_TOKEN_TYPE)
        );
        let sent = server.received();
        let form = form_of(&sent[2]);
        let expected = [
            ("grant_type", grant::TOKEN_EXCHANGE),
            ("subject_token", ASSERTION),
            ("subject_token_type", grant::ACCESS_TOKEN_TYPE),
            ("scope", "api://mcp/.default"),
            ("audience", "mcp-files"),
            ("resource", "https://mcp.example/"),
            ("client_id", "middle-tier"),
            ("client_secret", "middle-secret"),
        ];
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(form, expected);
        assert!(hit(&svc, "alice").is_none(), "a target is part of the key");
    }

    #[tokio::test]
    async fn a_grant_the_idp_does_not_advertise_fails_before_any_token_request() {
        for (mode, grants, code) in [
            (
                "token_exchange",
                Some(format!(r#"["{}"]"#, grant::JWT_BEARER)),
                "ERR_GRANT_NOT_ADVERTISED",
            ),
            (
                "auto",
                Some(r#"["authorization_code"]"#.to_owned()),
                "ERR_GRANT_NOT_ADVERTISED",
            ),
            ("auto", None, "ERR_GRANT_NOT_ADVERTISED"),
        ] {
            let server = TestServer::start_with(|url| {
                vec![
                    json(200, &discovery_document(url, grants.as_deref())),
                    json(200, r#"{"keys":[]}"#),
                ]
            })
            .await;
            let svc = service(&server, |o| {
                o.token_endpoint = None;
                o.grant_type = Some(mode.into());
            });
            let error = svc
                .exchange(&request(&svc, "alice", true))
                .await
                .unwrap_err();
            assert_eq!(error.code(), Some(code), "{mode}: {error}");
            assert!(!error.is_retryable());
            assert!(
                error.to_string().contains("grant_types_supported"),
                "{error}"
            );
            assert_eq!(server.received().len(), 2, "{mode}: discovery only");
        }
    }

    #[tokio::test]
    async fn the_default_grant_ignores_advertised_types_and_refuses_a_target() {
        let server = TestServer::start_with(|url| {
            vec![
                json(
                    200,
                    &discovery_document(url, Some(r#"["authorization_code"]"#)),
                ),
                json(200, r#"{"keys":[]}"#),
                json(200, OK),
            ]
        })
        .await;
        let svc = service(&server, |o| o.token_endpoint = None);
        svc.exchange(&request(&svc, "alice", true)).await.unwrap();
        let with_target = svc
            .prepare(Call {
                target: Target {
                    audience: Some("x"),
                    resource: None,
                },
                ..call("alice", ASSERTION)
            })
            .unwrap();
        let error = svc.exchange(&with_target).await.unwrap_err();
        assert_eq!(error.code(), Some("ERR_TARGET_NEEDS_TOKEN_EXCHANGE"));
        assert_eq!(server.received().len(), 3);
    }

    #[tokio::test]
    async fn a_failed_discovery_is_retried_on_the_next_call() {
        let server = TestServer::start_with(|url| {
            let document = format!(
                r#"{{"issuer":"{url}","authorization_endpoint":"{url}/auth",
                "token_endpoint":"{url}/token","jwks_uri":"{url}/jwks",
                "response_types_supported":["code"],"subject_types_supported":["public"],
                "id_token_signing_alg_values_supported":["RS256"]}}"#
            );
            vec![
                json(503, "{}"),
                json(200, &document),
                json(200, r#"{"keys":[]}"#),
                json(200, OK),
            ]
        })
        .await;
        let svc = service(&server, |o| {
            o.token_endpoint = None;
            o.max_retries = Some(0.0);
        });
        let first = svc
            .exchange(&request(&svc, "alice", true))
            .await
            .unwrap_err();
        assert!(
            matches!(
                first,
                ExchangeError::Discovery {
                    retryable: true,
                    ..
                }
            ),
            "{first}"
        );
        svc.exchange(&request(&svc, "alice", true)).await.unwrap();
        svc.exchange(&request(&svc, "bob", true)).await.unwrap();
        let paths: Vec<String> = server
            .received()
            .iter()
            .map(|r| r.head.split(' ').nth(1).unwrap_or_default().to_owned())
            .collect();
        let expected = [
            "/.well-known/openid-configuration",
            "/.well-known/openid-configuration",
            "/jwks",
            "/token",
            "/token",
        ];
        assert_eq!(paths, expected);
    }

    #[test]
    fn arguments_are_checked_in_librechats_order() {
        let svc = OboService::new(
            Config::from_options(Options {
                issuer: Some("https://idp.example".into()),
                client_id: Some("c".into()),
                client_secret: Some("s".into()),
                ..Options::default()
            })
            .unwrap(),
            None,
        )
        .unwrap();
        let check = |subject: &str, token: &str, scopes: &str| {
            svc.prepare(Call {
                scopes,
                ..call(subject, token)
            })
            .unwrap_err()
        };
        assert_eq!(check("", "", ""), RequestError::MissingAccessToken);
        assert_eq!(check("", "t", " "), RequestError::MissingScopes);
        assert_eq!(check(" ", "t", "s"), RequestError::NotOpenIdUser);
        assert_eq!(
            check("a", "t", "s\u{1f}x"),
            RequestError::SeparatorInValue("scopes")
        );
        let alice = svc.prepare(call("a", "t1")).unwrap();
        let other_token = svc.prepare(call("a", "t2")).unwrap();
        assert_ne!(alice.key, other_token.key);
        assert!(!alice.key.contains("t1"));
    }
}
