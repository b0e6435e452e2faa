//! Service options: defaults, and validation that names the option at fault.
//!
//! Options arrive from JavaScript already type-checked by the wrapper (a string is a
//! string); this module checks values: required fields, URLs, integer ranges.

use std::time::Duration;

use url::Url;

use crate::ground::error::ConfigError;
use crate::ground::redact::redacted_debug;
use crate::protocol::client_auth::{ClientAuth, CredentialOptions};
use crate::protocol::grant::{
    GrantKind, GrantMode, ResourceIndicator, TokenExchangeSettings, ACCESS_TOKEN_TYPE,
};
use crate::protocol::ssrf::AllowedDomains;
use crate::protocol::verify::Rules;

mod id_jag;
mod shared;
pub use id_jag::{AuthorizationServerOptions, IdJagConfig};
pub use shared::{ring_keys, RingKey, SharedCacheConfig, SharedCacheOptions};

/// Options as given, before validation. Numbers are `f64` because that is what
/// JavaScript hands over; ranges and integrality are checked here.
#[derive(Default, Clone)]
pub struct Options {
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
    pub resource_indicator: Option<String>,
    pub subject_token_type: Option<String>,
    pub requested_token_type: Option<String>,
    pub client_assertion_key: Option<String>,
    pub client_assertion_key_id: Option<String>,
    pub client_assertion_certificate: Option<String>,
    pub client_assertion_alg: Option<String>,
    pub client_assertion_audience: Option<String>,
    pub validate_assertion: Option<ValidateAssertion>,
    pub shared_cache: Option<SharedCacheOptions>,
    pub refresh_ahead: Option<RefreshAhead>,
    /// The MCP authorization server of `grantType: 'id_jag'`.
    pub authorization_server: Option<AuthorizationServerOptions>,
    /// LibreChat's `mcpSettings.allowedDomains`, for the URLs MCP servers name.
    pub allowed_domains: Option<Vec<String>>,
}

/// `refreshAhead` as given: `true`, `false` or a number.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RefreshAhead {
    Switch(bool),
    Fraction(f64),
}

/// The default `refreshAhead`: a hit after 80 % of the usable lifetime refreshes.
pub const DEFAULT_REFRESH_AHEAD: f64 = 0.8;

/// `validateAssertion` as given.
#[derive(Debug, Default, Clone)]
pub struct ValidateAssertion {
    pub audiences: Vec<String>,
    pub issuers: Option<Vec<String>>,
    pub leeway_seconds: Option<f64>,
}

redacted_debug!(Options {
    shown: [
        issuer,
        client_id,
        client_auth_method,
        token_endpoint,
        request_timeout_ms,
        expiry_buffer_seconds,
        max_cache_entries,
        max_retries,
        retry_delay_ms,
        proxy,
        grant_type,
        resource_indicator,
        subject_token_type,
        requested_token_type,
        client_assertion_key_id,
        client_assertion_certificate,
        client_assertion_alg,
        client_assertion_audience,
        validate_assertion,
        shared_cache,
        refresh_ahead,
        authorization_server,
        allowed_domains,
    ],
    hidden: [client_secret, client_assertion_key],
});

/// Validated configuration of one service.
#[derive(Debug, Clone)]
pub struct Config {
    /// As configured (trimmed): discovery compares it byte for byte with the
    /// document's `issuer`, so it is not normalized into a `Url`.
    pub issuer: String,
    pub client_auth: ClientAuth,
    pub token_endpoint: Option<Url>,
    pub request_timeout: Duration,
    pub expiry_buffer: Duration,
    pub max_cache_entries: u64,
    pub max_retries: u32,
    pub retry_delay: Duration,
    pub proxy: Option<Url>,
    pub grant: GrantMode,
    pub resource_indicator: ResourceIndicator,
    pub token_exchange: TokenExchangeSettings,
    /// Full verification of assertions before they are exchanged, when asked for.
    pub verify: Option<Rules>,
    /// The shared Redis tier, when configured.
    pub shared_cache: Option<SharedCacheConfig>,
    /// `refreshAhead`: the share of a token's usable lifetime after which a hit starts
    /// a background refresh; `None` when off.
    pub refresh_ahead: Option<f64>,
    /// `grantType: 'id_jag'`: the MCP authorization server's side.
    pub id_jag: Option<IdJagConfig>,
    /// `allowedDomains` (`None` when unset or empty): the SSRF policy's list.
    pub allowed_domains: Option<AllowedDomains>,
}

impl Config {
    /// Validates `options`, filling in LibreChat's defaults.
    pub fn from_options(options: Options) -> Result<Self, ConfigError> {
        let issuer = required("issuer", options.issuer)?;
        http_url("issuer", issuer.clone())?;
        let client_id = required("clientId", options.client_id)?;
        let client_auth = ClientAuth::new(
            client_id,
            &issuer,
            CredentialOptions {
                method: options.client_auth_method.as_deref(),
                client_secret: options.client_secret,
                client_assertion_key: options.client_assertion_key.as_deref(),
                client_assertion_key_id: options.client_assertion_key_id,
                client_assertion_certificate: options.client_assertion_certificate.as_deref(),
                assertion_alg: options.client_assertion_alg.as_deref(),
                assertion_audience: options.client_assertion_audience.as_deref(),
            },
        )?;
        let grant = GrantMode::parse(options.grant_type.as_deref())?;
        if grant == GrantMode::Auto && options.token_endpoint.is_some() {
            return Err(ConfigError::new(
                "grantType",
                "'auto' reads grant_types_supported from discovery, so it cannot be combined with options.tokenEndpoint; name the grant instead",
            ));
        }
        let (id_jag, subject_token_type) = id_jag::id_jag_config(
            grant,
            options.authorization_server,
            token_type("subjectTokenType", options.subject_token_type)?,
            options.validate_assertion.is_some(),
        )?;
        let token_exchange = TokenExchangeSettings {
            subject_token_type,
            requested_token_type: token_type("requestedTokenType", options.requested_token_type)?,
        };
        if id_jag.is_some() && token_exchange.requested_token_type.is_some() {
            return Err(ConfigError::new(
                "requestedTokenType",
                "does not apply to grantType 'id_jag', which requests an ID-JAG, then an access token",
            ));
        }
        if grant == GrantMode::Named(GrantKind::OnBehalfOf) || grant == GrantMode::Default {
            for (option, set) in [
                (
                    "subjectTokenType",
                    token_exchange.subject_token_type != ACCESS_TOKEN_TYPE,
                ),
                (
                    "requestedTokenType",
                    token_exchange.requested_token_type.is_some(),
                ),
            ] {
                if set {
                    return Err(ConfigError::new(
                        option,
                        "applies only to grantType 'token_exchange' or 'auto'",
                    ));
                }
            }
        }
        let verify = options.validate_assertion.map(verify_rules).transpose()?;
        let request_timeout = Duration::from_millis(integer(
            "requestTimeoutMs",
            options.request_timeout_ms,
            30_000,
            1..=600_000,
        )?);
        let shared_cache = options
            .shared_cache
            .map(|shared| SharedCacheConfig::from_options(shared, request_timeout))
            .transpose()?;
        Ok(Self {
            issuer,
            client_auth,
            token_endpoint: options
                .token_endpoint
                .map(|url| http_url("tokenEndpoint", url))
                .transpose()?,
            request_timeout,
            expiry_buffer: Duration::from_secs(integer(
                "expiryBufferSeconds",
                options.expiry_buffer_seconds,
                30,
                0..=86_400,
            )?),
            max_cache_entries: integer(
                "maxCacheEntries",
                options.max_cache_entries,
                100_000,
                1..=100_000_000,
            )?,
            max_retries: integer("maxRetries", options.max_retries, 1, 0..=10)? as u32,
            retry_delay: Duration::from_millis(integer(
                "retryDelayMs",
                options.retry_delay_ms,
                300,
                0..=10_000,
            )?),
            proxy: options
                .proxy
                .map(|url| http_url("proxy", url))
                .transpose()?,
            grant,
            resource_indicator: ResourceIndicator::parse(options.resource_indicator.as_deref())?,
            token_exchange,
            verify,
            shared_cache,
            refresh_ahead: refresh_ahead(options.refresh_ahead)?,
            id_jag,
            allowed_domains: id_jag::allowed_domains(options.allowed_domains.as_deref())?,
        })
    }

    /// What the user's token must be before it is sent (see `GrantMode::demand`).
    pub fn demand(&self) -> crate::protocol::assertion::Demand {
        self.grant.demand(&self.token_exchange.subject_token_type)
    }
}

/// `refreshAhead`: a fraction strictly between 0 and 1, `true` for the default, `false` for off.
fn refresh_ahead(value: Option<RefreshAhead>) -> Result<Option<f64>, ConfigError> {
    match value {
        None | Some(RefreshAhead::Switch(true)) => Ok(Some(DEFAULT_REFRESH_AHEAD)),
        Some(RefreshAhead::Switch(false)) => Ok(None),
        Some(RefreshAhead::Fraction(f)) if f.is_finite() && f > 0.0 && f < 1.0 => Ok(Some(f)),
        Some(RefreshAhead::Fraction(f)) => Err(ConfigError::new(
            "refreshAhead",
            format!("must be a fraction of the token lifetime above 0 and below 1 (e.g. 0.8), or false to turn it off, got {f}"),
        )),
    }
}

/// `validateAssertion` checked: at least one audience, issuers default to the one
/// discovery accepts (the configured one, or Entra's template with the token's tenant), leeway at most five minutes (default 60 s).
fn verify_rules(options: ValidateAssertion) -> Result<Rules, ConfigError> {
    let clean = |values: Vec<String>| -> Vec<String> {
        values
            .into_iter()
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .collect()
    };
    let audiences = clean(options.audiences);
    if audiences.is_empty() {
        return Err(ConfigError::new(
            "validateAssertion.audiences",
            "must name at least one audience (the app's client id or application ID URI)",
        ));
    }
    Ok(Rules {
        audiences,
        issuers: options
            .issuers
            .map(clean)
            .filter(|issuers| !issuers.is_empty()),
        leeway_secs: integer(
            "validateAssertion.leewaySeconds",
            options.leeway_seconds,
            60,
            0..=300,
        )?,
    })
}

/// An RFC 8693 token type: a URI (`urn:ietf:params:oauth:token-type:…` or the IdP's own).
fn token_type(option: &'static str, value: Option<String>) -> Result<Option<String>, ConfigError> {
    let Some(value) = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if Url::parse(&value).is_err() {
        return Err(ConfigError::new(
            option,
            format!("must be a token type URI such as {ACCESS_TOKEN_TYPE}, got '{value}'"),
        ));
    }
    Ok(Some(value))
}

fn required(option: &'static str, value: Option<String>) -> Result<String, ConfigError> {
    match value {
        Some(v) if !v.trim().is_empty() => Ok(v.trim().to_owned()),
        _ => Err(ConfigError::new(option, "is required")),
    }
}

fn http_url(option: &'static str, value: String) -> Result<Url, ConfigError> {
    let url = Url::parse(value.trim())
        .map_err(|e| ConfigError::new(option, format!("must be an absolute URL ({e})")))?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(ConfigError::new(
            option,
            format!("must be an http(s) URL, not {other}:"),
        )),
    }
}

fn integer(
    option: &'static str,
    value: Option<f64>,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, ConfigError> {
    let Some(value) = value else {
        return Ok(default);
    };
    let problem = || {
        ConfigError::new(
            option,
            format!(
                "must be an integer from {} to {}, got {value}",
                range.start(),
                range.end()
            ),
        )
    };
    if !value.is_finite() || value.fract() != 0.0 || value < 0.0 {
        return Err(problem());
    }
    let value = value as u64;
    range.contains(&value).then_some(value).ok_or_else(problem)
}

#[cfg(test)]
mod tests;
