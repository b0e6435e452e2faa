//! napi bindings of librechat-obo. Everything that decides anything lives in the
//! modules below; this file converts between JavaScript values and those modules.
//! The JavaScript side (`index.js`, `lib/`) type-checks arguments, turns settled
//! results into resolved promises or thrown errors, and is the package's surface.

mod assertion;
mod cache;
mod client_auth;
mod config;
mod discovery;
mod error;
mod expiry;
mod grant;
mod identity;
mod redact;
mod resolve;
mod retry;
mod service;
#[cfg(test)]
mod test_server;
mod verify;

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt;
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::JsString;
use napi_derive::napi;

use cache::OboToken;
use error::ExchangeError;
use identity::{IdentitySource, Target};
use service::{Call, Level, OboService, RequestError};

/// A JS logger called as `(level, message)`; weak, so it never keeps Node alive.
type LogFn =
    ThreadsafeFunction<FnArgs<(String, String)>, (), FnArgs<(String, String)>, Status, false, true>;

/// Service options as the wrapper passes them (already type-checked).
#[napi(object, object_to_js = false)]
pub struct NativeServiceOptions {
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub client_auth_method: Option<String>,
    pub token_endpoint: Option<String>,
    pub request_timeout_ms: Option<f64>,
    pub expiry_buffer_seconds: Option<f64>,
    pub max_cache_entries: Option<f64>,
    pub max_retries: Option<f64>,
    pub retry_delay_ms: Option<f64>,
    pub proxy: Option<String>,
    pub grant_type: Option<String>,
    pub subject_token_type: Option<String>,
    pub requested_token_type: Option<String>,
    pub client_assertion_key: Option<String>,
    pub client_assertion_key_id: Option<String>,
    pub client_assertion_certificate: Option<String>,
    pub client_assertion_alg: Option<String>,
    pub client_assertion_audience: Option<String>,
    pub validate_assertion: Option<NativeValidateAssertion>,
    #[napi(ts_type = "(level: string, message: string) => void")]
    pub logger: Option<LogFn>,
}

/// `validateAssertion`: what the user's token must satisfy before it is exchanged.
#[napi(object, object_to_js = false)]
pub struct NativeValidateAssertion {
    pub audiences: Vec<String>,
    pub issuers: Option<Vec<String>>,
    pub leeway_seconds: Option<f64>,
}

/// Per-call options of an exchange that goes to the IdP (wrapper-checked).
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct NativeCallOptions {
    /// A claims challenge the client answers; the call bypasses the cache.
    pub claims: Option<String>,
    /// RFC 8693 `audience`.
    pub audience: Option<String>,
    /// RFC 8693 `resource`.
    pub resource: Option<String>,
}

/// LibreChat's token response shape.
#[napi(object, object_from_js = false)]
pub struct OboTokenResponse {
    #[napi(js_name = "access_token")]
    pub access_token: String,
    #[napi(js_name = "token_type")]
    pub token_type: String,
    /// Seconds, as the IdP granted (normalized).
    #[napi(js_name = "expires_in")]
    pub expires_in: f64,
    /// Epoch milliseconds, stamped when the token was requested.
    #[napi(js_name = "expires_at")]
    pub expires_at: f64,
    /// The scopes that were requested.
    pub scope: String,
    /// RFC 8693's type of the issued token, when the IdP sent one.
    #[napi(js_name = "issued_token_type")]
    pub issued_token_type: Option<String>,
}

/// A failed exchange, carried by value; the wrapper throws it as an `Error`.
#[napi(object, object_from_js = false)]
pub struct NativeExchangeError {
    pub message: String,
    pub retryable: bool,
    pub obo_failure_reason: String,
    pub status: Option<u32>,
    pub code: Option<String>,
    pub error: Option<String>,
    #[napi(js_name = "error_description")]
    pub error_description: Option<String>,
    #[napi(js_name = "error_codes")]
    pub error_codes: Option<Vec<i64>>,
    pub suberror: Option<String>,
    pub claims: Option<String>,
    #[napi(js_name = "trace_id")]
    pub trace_id: Option<String>,
    #[napi(js_name = "correlation_id")]
    pub correlation_id: Option<String>,
    /// `Bearer error="insufficient_claims"[, claims="<base64>"]` when the IdP asks for
    /// user interaction; relay it to the client.
    pub www_authenticate: Option<String>,
}

/// The outcome of an exchange that went to the IdP: `token` (with its `tokenId`) or
/// `error`.
#[napi(object, object_from_js = false)]
pub struct ExchangeSettled {
    pub token: Option<OboTokenResponse>,
    /// `OboToken::id`, under which the wrapper keeps the token's JS string.
    pub token_id: Option<f64>,
    pub error: Option<NativeExchangeError>,
}

/// Counters of one service; see `service::Stats`.
#[napi(object, object_from_js = false)]
pub struct OboStats {
    pub hits: i64,
    pub misses: i64,
    pub coalesced: i64,
    pub exchanges: i64,
    pub retries: i64,
    pub failures: i64,
    pub entries: i64,
}

/// A token set from the session provider or the user's snapshot (wrapper-sanitized).
#[napi(object, object_to_js = false)]
pub struct NativeUpstreamTokens {
    #[napi(js_name = "access_token")]
    pub access_token: Option<String>,
    /// Epoch seconds.
    #[napi(js_name = "expires_at")]
    pub expires_at: Option<f64>,
}

/// What a resolver answered, without the token itself.
#[napi(object, object_to_js = false)]
pub struct NativeResolverAnswer {
    pub has_access_token: bool,
    pub expires_in: Option<Either<f64, String>>,
    /// Epoch milliseconds.
    pub expires_at: Option<f64>,
}

/// What can be read off a thrown value (wrapper-sanitized).
#[napi(object, object_to_js = false)]
pub struct NativeErrorFacts {
    pub retryable: Option<bool>,
    pub status: Option<f64>,
    pub code: Option<String>,
    pub message: Option<String>,
    pub obo_failure_reason: Option<String>,
}

/// An `OboTokenResolutionError` to be: LibreChat's reason, flag and sentence.
#[napi(object, object_from_js = false)]
pub struct ResolutionFailure {
    pub reason: String,
    pub retryable: bool,
    pub user_message: String,
}

/// Either the expiry stamp of a usable answer, or why it is not usable.
#[napi(object, object_from_js = false)]
pub struct ResolutionStamp {
    pub obtained_at: Option<f64>,
    pub expires_at: Option<f64>,
    pub failure: Option<ResolutionFailure>,
}

/// `null` when the upstream token set is usable for an exchange, else the failure.
#[napi]
pub fn check_upstream_tokens(tokens: Option<NativeUpstreamTokens>) -> Option<ResolutionFailure> {
    let tokens = tokens.map(|t| resolve::UpstreamTokens {
        access_token: t.access_token,
        expires_at_secs: t.expires_at,
    });
    resolve::upstream_assertion(tokens.as_ref(), expiry::now_ms())
        .err()
        .map(resolution_failure)
}

/// Stamps a resolver's answer with LibreChat's expiry rules, or says why it is unusable.
#[napi]
pub fn finish_resolution(answer: NativeResolverAnswer) -> ResolutionStamp {
    let expires_in = answer.expires_in.map(|value| match value {
        Either::A(number) => {
            serde_json::Number::from_f64(number).map_or(serde_json::Value::Null, Into::into)
        }
        Either::B(text) => serde_json::Value::String(text),
    });
    let answer = resolve::ResolverAnswer {
        has_access_token: answer.has_access_token,
        expires_in,
        expires_at_ms: answer.expires_at,
    };
    match resolve::finish(answer, expiry::now_ms()) {
        Ok(stamp) => ResolutionStamp {
            obtained_at: Some(stamp.obtained_at_ms as f64),
            expires_at: Some(stamp.expires_at_ms),
            failure: None,
        },
        Err(failure) => ResolutionStamp {
            obtained_at: None,
            expires_at: None,
            failure: Some(resolution_failure(failure)),
        },
    }
}

/// Maps a rejection of the session provider (`stage` = "session") or of the resolver
/// (`stage` = "exchange") to LibreChat's failure.
#[napi]
pub fn classify_resolution_failure(
    stage: String,
    facts: NativeErrorFacts,
) -> Result<ResolutionFailure> {
    let facts = resolve::ErrorFacts {
        retryable: facts.retryable,
        status: facts.status,
        code: facts.code,
        message: facts.message,
        obo_failure_reason: facts.obo_failure_reason,
    };
    let failure = match stage.as_str() {
        "session" => resolve::session_failure(&facts),
        "exchange" => resolve::exchange_failure(&facts),
        other => {
            return Err(Error::new(
                Status::InvalidArg,
                format!("stage must be 'session' or 'exchange', got '{other}'"),
            ))
        }
    };
    Ok(resolution_failure(failure))
}

fn resolution_failure(failure: resolve::Failure) -> ResolutionFailure {
    ResolutionFailure {
        reason: failure.reason().to_owned(),
        retryable: failure.retryable(),
        user_message: failure.user_message().to_owned(),
    }
}

/// The native half of `OboTokenService`.
#[napi]
pub struct NativeOboService {
    service: OboService,
}

#[napi]
impl NativeOboService {
    #[napi(constructor)]
    pub fn new(options: NativeServiceOptions) -> Result<Self> {
        let logger = options.logger.map(|tsfn| {
            let tsfn = Arc::new(tsfn);
            Arc::new(move |level: Level, message: String| {
                tsfn.call(
                    (level.as_str().to_owned(), message).into(),
                    ThreadsafeFunctionCallMode::NonBlocking,
                );
            }) as service::Logger
        });
        let config = config::Config::from_options(config::Options {
            issuer: options.issuer,
            client_id: options.client_id,
            client_secret: options.client_secret,
            client_auth_method: options.client_auth_method,
            token_endpoint: options.token_endpoint,
            request_timeout_ms: options.request_timeout_ms,
            expiry_buffer_seconds: options.expiry_buffer_seconds,
            max_cache_entries: options.max_cache_entries,
            max_retries: options.max_retries,
            retry_delay_ms: options.retry_delay_ms,
            proxy: options.proxy,
            grant_type: options.grant_type,
            subject_token_type: options.subject_token_type,
            requested_token_type: options.requested_token_type,
            client_assertion_key: options.client_assertion_key,
            client_assertion_key_id: options.client_assertion_key_id,
            client_assertion_certificate: options.client_assertion_certificate,
            client_assertion_alg: options.client_assertion_alg,
            client_assertion_audience: options.client_assertion_audience,
            validate_assertion: options
                .validate_assertion
                .map(|v| config::ValidateAssertion {
                    audiences: v.audiences,
                    issuers: v.issuers,
                    leeway_seconds: v.leeway_seconds,
                }),
        })
        .map_err(|e| Error::new(Status::InvalidArg, e.to_string()))?;
        let service =
            OboService::new(config, logger).map_err(|e| Error::new(Status::InvalidArg, e))?;
        Ok(Self { service })
    }

    /// The hot path: `[id, expires_in, expires_at]` of a cached token for an assertion
    /// known by its digest (`assertionDigest`), or `null`. Synchronous, on the JS thread;
    /// only numbers cross the boundary: the wrapper keeps the token's JS string under its
    /// `id` (from `ExchangeSettled.tokenId`, or `cachedToken` when it has forgotten it) and
    /// builds the response object itself (a JS literal is far cheaper than five napi
    /// property sets). Invalid arguments throw. `identity` is packed (see `unpack_identity`).
    #[napi(ts_return_type = "[number, number, number] | null")]
    pub fn cached_id(
        &self,
        identity: String,
        digest: String,
        scopes: String,
        audience: Option<String>,
        resource: Option<String>,
    ) -> Result<Option<(f64, f64, f64)>> {
        Ok(self
            .lookup(
                &identity,
                &digest,
                &scopes,
                audience.as_deref(),
                resource.as_deref(),
            )?
            .map(|token| {
                (
                    token.id as f64,
                    token.expires_in as f64,
                    token.expires_at as f64,
                )
            }))
    }

    /// The same lookup, answering `[id, access_token, issued_token_type]` for a wrapper
    /// that no longer remembers the token's string.
    #[napi(ts_return_type = "[number, string, string | undefined] | null")]
    pub fn cached_token<'env>(
        &self,
        env: &'env Env,
        identity: String,
        digest: String,
        scopes: String,
        audience: Option<String>,
        resource: Option<String>,
    ) -> Result<Option<(f64, JsString<'env>, Option<String>)>> {
        let Some(token) = self.lookup(
            &identity,
            &digest,
            &scopes,
            audience.as_deref(),
            resource.as_deref(),
        )?
        else {
            return Ok(None);
        };
        let access_token = js_string(env, &token.access_token)?;
        Ok(Some((
            token.id as f64,
            access_token,
            token.issued_token_type.clone(),
        )))
    }

    /// A promise of the settled exchange: from an exchange in flight for the same key,
    /// the cache if it was filled meanwhile, or a new exchange (always a new one when
    /// `fromCache` is false or `claims` is given). Invalid arguments throw.
    #[napi]
    pub fn exchange<'env>(
        &self,
        env: &'env Env,
        identity: String,
        access_token: String,
        scopes: String,
        from_cache: bool,
        options: Option<NativeCallOptions>,
    ) -> Result<PromiseRaw<'env, ExchangeSettled>> {
        let (user, context) = unpack_identity(&identity)?;
        let options = options.unwrap_or_default();
        let request = self
            .service
            .prepare(Call {
                user,
                context: Some(context),
                access_token: &access_token,
                scopes: &scopes,
                target: Target {
                    audience: options.audience.as_deref(),
                    resource: options.resource.as_deref(),
                },
                claims: options.claims.as_deref(),
                from_cache,
            })
            .map_err(invalid_arg)?;
        let exchange = AssertUnwindSafe(self.service.exchange(&request));
        env.spawn_future(async move {
            Ok(match exchange.catch_unwind().await {
                Ok(outcome) => settle(outcome),
                Err(_) => settle(Err(ExchangeError::Transport {
                    kind: error::TransportKind::Other,
                    detail: "internal error in the OBO exchange".into(),
                })),
            })
        })
    }

    fn lookup(
        &self,
        identity: &str,
        digest: &str,
        scopes: &str,
        audience: Option<&str>,
        resource: Option<&str>,
    ) -> Result<Option<Arc<OboToken>>> {
        let (user, context) = unpack_identity(identity)?;
        let target = Target { audience, resource };
        self.service
            .cached_by_digest(&user, Some(&context), digest, scopes, &target)
            .map_err(invalid_arg)
    }

    /// Drops the cached tokens of a user (all scopes, or one scope string); returns
    /// how many were dropped.
    #[napi]
    pub fn invalidate(&self, identity: String, scopes: Option<String>) -> Result<u32> {
        let (user, context) = unpack_identity(&identity)?;
        let dropped = self
            .service
            .invalidate(&user, Some(&context), scopes.as_deref())
            .map_err(invalid_arg)?;
        Ok(dropped as u32)
    }

    #[napi]
    pub fn clear(&self) {
        self.service.clear();
    }

    #[napi]
    pub fn stats(&self) -> OboStats {
        let s = self.service.stats();
        OboStats {
            hits: s.hits as i64,
            misses: s.misses as i64,
            coalesced: s.coalesced as i64,
            exchanges: s.exchanges as i64,
            retries: s.retries as i64,
            failures: s.failures as i64,
            entries: s.entries as i64,
        }
    }
}

/// Identity fields as the wrapper packs them: the user's `openidId`, `tenantId` and
/// `openidIssuer`, then the identity context's `openidSubject`, `tenantId` and
/// `openidIssuer`, joined with U+001F; an empty field is an absent one (LibreChat
/// treats blank values as absent too). One string crosses the boundary instead of two
/// objects, which makes a cache hit several times cheaper. The wrapper refuses fields
/// that contain U+001F, so the split is unambiguous.
fn unpack_identity(packed: &str) -> Result<(IdentitySource<'_>, IdentitySource<'_>)> {
    let wrong_shape = || {
        Error::new(
            Status::InvalidArg,
            "identity must have 6 fields separated by U+001F".to_owned(),
        )
    };
    let mut parts = packed.split(identity::SEPARATOR);
    let mut fields = [None; 6];
    for field in &mut fields {
        let part = parts.next().ok_or_else(wrong_shape)?;
        *field = (!part.is_empty()).then_some(part);
    }
    if parts.next().is_some() {
        return Err(wrong_shape());
    }
    let [user_subject, user_tenant, user_issuer, subject, tenant, issuer] = fields;
    let source = |subject, tenant_id, openid_issuer| IdentitySource {
        subject,
        tenant_id,
        openid_issuer,
    };
    Ok((
        source(user_subject, user_tenant, user_issuer),
        source(subject, tenant, issuer),
    ))
}

/// A JS string of a token. Tokens are ASCII in practice (JWS, or RFC 6750's b64token),
/// and V8 copies a Latin-1 string without the UTF-8 decoding pass.
fn js_string<'env>(env: &'env Env, text: &str) -> Result<JsString<'env>> {
    if text.is_ascii() {
        env.create_string_latin1(text.as_bytes())
    } else {
        env.create_string(text)
    }
}

/// The SHA-256 (64 lowercase hex digits) of an upstream access token, as cache keys
/// hold it. The wrapper keeps it per assertion string, so hits skip the hashing.
#[napi]
pub fn assertion_digest(access_token: String) -> String {
    identity::AssertionDigest::of(&access_token)
        .as_str()
        .to_owned()
}

fn invalid_arg(error: RequestError) -> Error {
    Error::new(Status::InvalidArg, error.to_string())
}

fn token_response(token: &OboToken) -> OboTokenResponse {
    OboTokenResponse {
        access_token: token.access_token.clone(),
        token_type: "Bearer".to_owned(),
        expires_in: token.expires_in as f64,
        expires_at: token.expires_at as f64,
        scope: token.scope.clone(),
        issued_token_type: token.issued_token_type.clone(),
    }
}

fn settle(outcome: std::result::Result<Arc<OboToken>, ExchangeError>) -> ExchangeSettled {
    match outcome {
        Ok(token) => ExchangeSettled {
            token: Some(token_response(&token)),
            token_id: Some(token.id as f64),
            error: None,
        },
        Err(error) => ExchangeSettled {
            token: None,
            token_id: None,
            error: Some(native_error(&error)),
        },
    }
}

fn native_error(error: &ExchangeError) -> NativeExchangeError {
    let body = error.idp_body().cloned().unwrap_or_default();
    NativeExchangeError {
        message: error.to_string(),
        retryable: error.is_retryable(),
        obo_failure_reason: error.failure_reason().to_owned(),
        status: error.status().map(u32::from),
        code: error.code().map(str::to_owned),
        error: body.error,
        error_description: body.error_description,
        error_codes: body.error_codes,
        suberror: body.suberror,
        claims: body.claims,
        trace_id: body.trace_id,
        correlation_id: body.correlation_id,
        www_authenticate: error.www_authenticate(),
    }
}
