//! `NativeServiceOptions`: the service options as the wrapper passes them (already
//! type-checked), converted to `config::Options`, whose validation names the option
//! at fault. The enum-like options stay strings here so that a wrong value gets that
//! message (`options.grantType must be …`), not napi's generic one.

use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;

use super::events::NativeEventFn;
use super::outcome::NativeSettleFn;
use crate::broker::{Level, Logger};
use crate::config::{
    AuthorizationServerOptions, Options, RefreshAhead, SharedCacheOptions, ValidateAssertion,
};

/// A log level as the JS logger receives it (LibreChat's logger method names).
#[napi(string_enum = "lowercase")]
pub enum NativeLogLevel {
    Debug,
    Warn,
    Error,
}

impl From<Level> for NativeLogLevel {
    fn from(level: Level) -> Self {
        match level {
            Level::Debug => Self::Debug,
            Level::Warn => Self::Warn,
            Level::Error => Self::Error,
        }
    }
}

/// A JS logger called as `(level, message)`; weak, so it never keeps Node alive.
pub type NativeLogFn = ThreadsafeFunction<
    FnArgs<(NativeLogLevel, String)>,
    (),
    FnArgs<(NativeLogLevel, String)>,
    Status,
    false,
    true,
>;

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
    /// `'auto'` (the default), `'send'` or `'omit'`.
    pub resource_indicator: Option<String>,
    pub subject_token_type: Option<String>,
    pub requested_token_type: Option<String>,
    pub client_assertion_key: Option<String>,
    pub client_assertion_key_id: Option<String>,
    pub client_assertion_certificate: Option<String>,
    pub client_assertion_alg: Option<String>,
    pub client_assertion_audience: Option<String>,
    pub validate_assertion: Option<NativeValidateAssertion>,
    pub shared_cache: Option<NativeSharedCache>,
    /// `grantType: 'id_jag'`: the client's registration at the MCP authorization server.
    pub authorization_server: Option<NativeAuthorizationServer>,
    /// LibreChat's `mcpSettings.allowedDomains`, for the URLs MCP servers name.
    pub allowed_domains: Option<Vec<String>>,
    #[napi(ts_type = "(level: NativeLogLevel, message: string) => void")]
    pub logger: Option<NativeLogFn>,
    /// `refreshAhead`: a fraction, or `false` (off) / `true` (the default).
    pub refresh_ahead: Option<Either<bool, f64>>,
    /// The wrapper's diagnostics_channel publisher (not a user option).
    #[napi(ts_type = "(channel: string, event: NativeEvent) => void")]
    pub events: Option<NativeEventFn>,
    /// Where exchanges settle (not a user option): see `NativeSettleFn`.
    #[napi(ts_type = "(callId: number, settled: NativeSettled) => void")]
    pub settle: NativeSettleFn,
}

/// `validateAssertion`: what the user's token must satisfy before it is exchanged.
#[napi(object, object_to_js = false)]
pub struct NativeValidateAssertion {
    pub audiences: Vec<String>,
    pub issuers: Option<Vec<String>>,
    pub leeway_seconds: Option<f64>,
}

impl From<NativeValidateAssertion> for ValidateAssertion {
    fn from(v: NativeValidateAssertion) -> Self {
        Self {
            audiences: v.audiences,
            issuers: v.issuers,
            leeway_seconds: v.leeway_seconds,
        }
    }
}

/// `sharedCache`: the shared Redis tier (see `config::SharedCacheOptions`).
#[napi(object, object_to_js = false)]
pub struct NativeSharedCache {
    /// `redis://` or `rediss://` (credentials inside the URL).
    pub url: Option<String>,
    pub key_prefix: Option<String>,
    pub cluster: Option<bool>,
    /// PEM text of the CA (not a path).
    pub ca: Option<String>,
    /// 32-byte keys as hex or base64, optionally `"<id>:<key>"`; the first one writes.
    pub encryption_keys: Vec<String>,
    pub op_timeout_ms: Option<f64>,
    pub lock_ttl_ms: Option<f64>,
    pub max_wait_ms: Option<f64>,
}

impl From<NativeSharedCache> for SharedCacheOptions {
    fn from(v: NativeSharedCache) -> Self {
        Self {
            url: v.url,
            key_prefix: v.key_prefix,
            cluster: v.cluster,
            ca: v.ca,
            encryption_keys: v.encryption_keys,
            op_timeout_ms: v.op_timeout_ms,
            lock_ttl_ms: v.lock_ttl_ms,
            max_wait_ms: v.max_wait_ms,
        }
    }
}

/// `authorizationServer` (see `config::AuthorizationServerOptions`).
#[napi(object, object_to_js = false)]
pub struct NativeAuthorizationServer {
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub client_auth_method: Option<String>,
    pub client_assertion_key: Option<String>,
    pub client_assertion_key_id: Option<String>,
    pub client_assertion_certificate: Option<String>,
    pub client_assertion_alg: Option<String>,
}

impl From<NativeAuthorizationServer> for AuthorizationServerOptions {
    fn from(v: NativeAuthorizationServer) -> Self {
        Self {
            issuer: v.issuer,
            client_id: v.client_id,
            client_secret: v.client_secret,
            client_auth_method: v.client_auth_method,
            client_assertion_key: v.client_assertion_key,
            client_assertion_key_id: v.client_assertion_key_id,
            client_assertion_certificate: v.client_assertion_certificate,
            client_assertion_alg: v.client_assertion_alg,
        }
    }
}

/// The wrapper's functions among the options.
pub struct Hooks {
    pub logger: Option<Logger>,
    pub events: Option<NativeEventFn>,
    pub settle: NativeSettleFn,
}

impl NativeServiceOptions {
    /// Splits the options into the core's and the wrapper's functions.
    pub fn into_parts(self) -> (Options, Hooks) {
        let logger = self.logger.map(|tsfn| {
            let tsfn = Arc::new(tsfn);
            Arc::new(move |level: Level, message: String| {
                tsfn.call(
                    (NativeLogLevel::from(level), message).into(),
                    ThreadsafeFunctionCallMode::NonBlocking,
                );
            }) as Logger
        });
        let options = Options {
            issuer: self.issuer,
            client_id: self.client_id,
            client_secret: self.client_secret,
            client_auth_method: self.client_auth_method,
            token_endpoint: self.token_endpoint,
            request_timeout_ms: self.request_timeout_ms,
            expiry_buffer_seconds: self.expiry_buffer_seconds,
            max_cache_entries: self.max_cache_entries,
            max_retries: self.max_retries,
            retry_delay_ms: self.retry_delay_ms,
            proxy: self.proxy,
            grant_type: self.grant_type,
            resource_indicator: self.resource_indicator,
            subject_token_type: self.subject_token_type,
            requested_token_type: self.requested_token_type,
            client_assertion_key: self.client_assertion_key,
            client_assertion_key_id: self.client_assertion_key_id,
            client_assertion_certificate: self.client_assertion_certificate,
            client_assertion_alg: self.client_assertion_alg,
            client_assertion_audience: self.client_assertion_audience,
            validate_assertion: self.validate_assertion.map(Into::into),
            shared_cache: self.shared_cache.map(Into::into),
            authorization_server: self.authorization_server.map(Into::into),
            allowed_domains: self.allowed_domains,
            refresh_ahead: self.refresh_ahead.map(|value| match value {
                Either::A(on) => RefreshAhead::Switch(on),
                Either::B(fraction) => RefreshAhead::Fraction(fraction),
            }),
        };
        let hooks = Hooks {
            logger,
            events: self.events,
            settle: self.settle,
        };
        (options, hooks)
    }
}
