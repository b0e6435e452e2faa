//! Service options: defaults, and validation that names the option at fault.
//!
//! Options arrive from JavaScript already type-checked by the wrapper (a string is a
//! string); this module checks values: required fields, URLs, integer ranges.

use std::time::Duration;

use url::Url;

use crate::ground::error::ConfigError;
use crate::protocol::client_auth::{ClientAuth, CredentialOptions};
use crate::protocol::grant::{
    GrantKind, GrantMode, ResourceIndicator, TokenExchangeSettings, ACCESS_TOKEN_TYPE,
};
use crate::protocol::ssrf::AllowedDomains;
use crate::protocol::verify::Rules;

mod declaration;
mod id_jag;
mod options;
mod shared;
pub use declaration::{Declaration, Kind};
#[cfg(test)]
pub use id_jag::AuthorizationServerOptions;
pub use id_jag::IdJagConfig;
pub use options::{declarations, Options, RefreshAhead, ValidateAssertion};
use options::{OPTIONS, VALIDATE_ASSERTION};
#[cfg(test)]
pub use shared::SharedCacheOptions;
pub use shared::{ring_keys, RingKey, SharedCacheConfig, SHARED_CACHE};

/// The default `refreshAhead`: a hit after 80 % of the usable lifetime refreshes.
pub const DEFAULT_REFRESH_AHEAD: f64 = 0.8;

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
    pub fn from_options(mut options: Options) -> Result<Self, ConfigError> {
        let issuer = OPTIONS.issuer.required_text(options.issuer.take())?;
        OPTIONS.issuer.http_url(issuer.clone())?;
        let client_auth = client_auth(&issuer, &mut options)?;
        let (grant, id_jag, token_exchange) = grant_settings(&mut options)?;
        let verify = options.validate_assertion.map(verify_rules).transpose()?;
        let request_timeout = Duration::from_millis(
            OPTIONS
                .request_timeout_ms
                .integer(options.request_timeout_ms)?,
        );
        let shared_cache = options
            .shared_cache
            .map(|shared| SharedCacheConfig::from_options(shared, request_timeout))
            .transpose()?;
        Ok(Self {
            issuer,
            client_auth,
            token_endpoint: options
                .token_endpoint
                .map(|url| OPTIONS.token_endpoint.http_url(url))
                .transpose()?,
            request_timeout,
            expiry_buffer: Duration::from_secs(
                OPTIONS
                    .expiry_buffer_seconds
                    .integer(options.expiry_buffer_seconds)?,
            ),
            max_cache_entries: OPTIONS
                .max_cache_entries
                .integer(options.max_cache_entries)?,
            max_retries: OPTIONS.max_retries.integer(options.max_retries)? as u32,
            retry_delay: Duration::from_millis(
                OPTIONS.retry_delay_ms.integer(options.retry_delay_ms)?,
            ),
            proxy: options
                .proxy
                .map(|url| OPTIONS.proxy.http_url(url))
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

/// The client's credential at the IdP (`clientId` and the credential options).
fn client_auth(issuer: &str, options: &mut Options) -> Result<ClientAuth, ConfigError> {
    let client_id = OPTIONS.client_id.required_text(options.client_id.take())?;
    ClientAuth::new(
        client_id,
        issuer,
        CredentialOptions {
            method: options.client_auth_method.as_deref(),
            client_secret: options.client_secret.take(),
            client_assertion_key: options.client_assertion_key.as_deref(),
            client_assertion_key_id: options.client_assertion_key_id.take(),
            client_assertion_certificate: options.client_assertion_certificate.as_deref(),
            assertion_alg: options.client_assertion_alg.as_deref(),
            assertion_audience: options.client_assertion_audience.as_deref(),
        },
    )
}

/// The grant, its ID-JAG side and the RFC 8693 token types, checked against each other.
fn grant_settings(
    options: &mut Options,
) -> Result<(GrantMode, Option<IdJagConfig>, TokenExchangeSettings), ConfigError> {
    let grant = GrantMode::parse(options.grant_type.as_deref())?;
    if grant == GrantMode::Auto && options.token_endpoint.is_some() {
        return Err(OPTIONS.grant_type.error(
            "'auto' reads grant_types_supported from discovery, so it cannot be combined with options.tokenEndpoint; name the grant instead",
        ));
    }
    let (id_jag, subject_token_type) = id_jag::id_jag_config(
        grant,
        options.authorization_server.take(),
        token_type(
            &OPTIONS.subject_token_type,
            options.subject_token_type.take(),
        )?,
        options.validate_assertion.is_some(),
    )?;
    let token_exchange = TokenExchangeSettings {
        subject_token_type,
        requested_token_type: token_type(
            &OPTIONS.requested_token_type,
            options.requested_token_type.take(),
        )?,
    };
    if id_jag.is_some() && token_exchange.requested_token_type.is_some() {
        return Err(OPTIONS.requested_token_type.error(
            "does not apply to grantType 'id_jag', which requests an ID-JAG, then an access token",
        ));
    }
    if grant == GrantMode::Named(GrantKind::OnBehalfOf) || grant == GrantMode::Default {
        for (option, set) in [
            (
                &OPTIONS.subject_token_type,
                token_exchange.subject_token_type != ACCESS_TOKEN_TYPE,
            ),
            (
                &OPTIONS.requested_token_type,
                token_exchange.requested_token_type.is_some(),
            ),
        ] {
            if set {
                return Err(option.error("applies only to grantType 'token_exchange' or 'auto'"));
            }
        }
    }
    Ok((grant, id_jag, token_exchange))
}

/// `refreshAhead`: a fraction strictly between 0 and 1, `true` for the default, `false` for off.
fn refresh_ahead(value: Option<RefreshAhead>) -> Result<Option<f64>, ConfigError> {
    match value {
        None | Some(RefreshAhead::Switch(true)) => Ok(Some(DEFAULT_REFRESH_AHEAD)),
        Some(RefreshAhead::Switch(false)) => Ok(None),
        Some(RefreshAhead::Fraction(f)) if f.is_finite() && f > 0.0 && f < 1.0 => Ok(Some(f)),
        Some(RefreshAhead::Fraction(f)) => Err(OPTIONS.refresh_ahead.error(
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
        return Err(VALIDATE_ASSERTION
            .audiences
            .error("must name at least one audience (the app's client id or application ID URI)"));
    }
    Ok(Rules {
        audiences,
        issuers: options
            .issuers
            .map(clean)
            .filter(|issuers| !issuers.is_empty()),
        leeway_secs: VALIDATE_ASSERTION
            .leeway_seconds
            .integer(options.leeway_seconds)?,
    })
}

/// An RFC 8693 token type: a URI (`urn:ietf:params:oauth:token-type:…` or the IdP's own).
fn token_type(option: &Declaration, value: Option<String>) -> Result<Option<String>, ConfigError> {
    let Some(value) = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if Url::parse(&value).is_err() {
        return Err(option.error(format!(
            "must be a token type URI such as {ACCESS_TOKEN_TYPE}, got '{value}'"
        )));
    }
    Ok(Some(value))
}

#[cfg(test)]
mod tests;
