//! The exchange on the wire: which grant to ask for, one POST to the token endpoint,
//! and its answer.
//!
//! Entra's On-Behalf-Of request is RFC 7523's jwt-bearer grant with
//! `requested_token_use=on_behalf_of`, exactly the parameters LibreChat sends. Other
//! IdPs (Keycloak, Zitadel, Authentik, Okta) speak RFC 8693 token exchange instead:
//! the user's token is the `subject_token`, and the target is named by `audience`,
//! `resource` and/or `scope`.
//!
//! ID-JAG (the MCP spec's Enterprise-Managed Authorization) is both in turn: RFC 8693 at
//! the enterprise IdP for an Identity Assertion JWT Authorization Grant, then RFC 7523's
//! jwt-bearer grant with that assertion at the MCP server's own authorization server
//! (`id_jag.rs` runs the two legs).

use std::time::Duration;

use reqwest::{Client, Response};
use serde_json::{Map, Value};
use url::Url;

use super::assertion::Demand;
use super::client_auth::ClientAuth;
use super::http::{read_body, retry_after, transport_error, BodyError};
use crate::ground::bounds;
use crate::ground::error::{ConfigError, ExchangeError, GrantProblem, IdpErrorBody};
use crate::ground::redact::{redacted_debug, Sensitive};

/// RFC 7523 grant type used by Entra's On-Behalf-Of flow.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// RFC 8693 token exchange.
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// RFC 8693 token type of an OAuth access token, the default `subject_token_type`.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// RFC 8693 token type of an OpenID ID token: the default subject of an ID-JAG request.
pub const ID_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";
/// RFC 8693 token type of a refresh token, which the ID-JAG draft also accepts as subject.
pub const REFRESH_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:refresh_token";
/// The token type of an Identity Assertion JWT Authorization Grant.
pub const ID_JAG_TYPE: &str = "urn:ietf:params:oauth:token-type:id-jag";
/// A token response larger than this is not a token response.
const MAX_BODY_BYTES: usize = 1 << 20;

/// The grant the operator asked for (`grantType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantMode {
    /// Not configured: LibreChat's On-Behalf-Of request, sent without looking at what
    /// the IdP advertises (Entra's discovery document lists no grant types).
    Default,
    /// One grant, named by the operator; refused before any exchange if the IdP
    /// advertises grant types and this one is not among them.
    Named(GrantKind),
    /// Token exchange when the IdP advertises it, else On-Behalf-Of (also when it
    /// advertises no grant types at all, as Entra).
    Auto,
}

impl GrantMode {
    pub fn parse(name: Option<&str>) -> Result<Self, ConfigError> {
        match name.map(str::trim) {
            None => Ok(Self::Default),
            Some("jwt_bearer") => Ok(Self::Named(GrantKind::OnBehalfOf)),
            Some("token_exchange") => Ok(Self::Named(GrantKind::TokenExchange)),
            Some("id_jag") => Ok(Self::Named(GrantKind::IdJag)),
            Some("auto") => Ok(Self::Auto),
            Some(other) => Err(ConfigError::new(
                "grantType",
                format!(
                    "must be 'jwt_bearer', 'token_exchange', 'id_jag' or 'auto', got '{other}'"
                ),
            )),
        }
    }

    /// What the user's token must be before it is sent: a JWS when the grant is
    /// surely On-Behalf-Of, or an ID-JAG request whose subject is an ID token; with
    /// token exchange, `auto` (which may pick either) or a refresh token as subject, any
    /// token, since only the IdP can judge an opaque one.
    pub fn demand(self, subject_token_type: &str) -> Demand {
        match self {
            Self::Default | Self::Named(GrantKind::OnBehalfOf) => Demand::Jws,
            Self::Named(GrantKind::IdJag) if subject_token_type == ID_TOKEN_TYPE => Demand::Jws,
            Self::Named(_) | Self::Auto => Demand::AnyToken,
        }
    }

    /// The grant to send, given the discovery document's `grant_types_supported`
    /// (`None` when the document has none, or discovery was skipped).
    pub fn choose(self, advertised: Option<&[String]>) -> Result<GrantKind, GrantProblem> {
        match self {
            Self::Default => Ok(GrantKind::OnBehalfOf),
            Self::Named(kind) if advertised.is_none() || offers(advertised, kind) => Ok(kind),
            Self::Named(kind) => Err(GrantProblem::NotAdvertised {
                wanted: kind.option_name(),
                wanted_urn: kind.urn(),
                advertised: advertised.unwrap_or_default().to_vec(),
            }),
            Self::Auto if offers(advertised, GrantKind::TokenExchange) => {
                Ok(GrantKind::TokenExchange)
            }
            Self::Auto => Ok(GrantKind::OnBehalfOf),
        }
    }

    /// Why `choose` sends what it sends, in words for the operator (`plan()`, the
    /// doctor, the debug log).
    pub fn reason(self, advertised: Option<&[String]>) -> &'static str {
        match self {
            Self::Default => "grantType is unset: LibreChat's On-Behalf-Of, whatever the IdP advertises",
            Self::Named(_) if advertised.is_none() => "named by grantType; the IdP advertises no grant_types_supported to check it against",
            Self::Named(_) => "named by grantType",
            Self::Auto if offers(advertised, GrantKind::TokenExchange) => {
                "auto: grant_types_supported lists token exchange"
            }
            Self::Auto if advertised.is_some() => {
                "auto: grant_types_supported does not list token exchange, so On-Behalf-Of (jwt-bearer)"
            }
            Self::Auto => "auto: the IdP advertises no grant_types_supported, so On-Behalf-Of (jwt-bearer)",
        }
    }
}

/// Whether `advertised` lists the grant `kind` sends to the IdP.
fn offers(advertised: Option<&[String]>, kind: GrantKind) -> bool {
    advertised.is_some_and(|list| list.iter().any(|g| g == kind.urn()))
}

/// Whether a call's RFC 8707 `resource` is sent (`resourceIndicator`). The MCP
/// authorization spec asks for it and RFC 8693 servers take it, but Entra v2 refuses it
/// next to `scope` (AADSTS9010010, AADSTS901002): it names the resource in the scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceIndicator {
    /// Sent with token exchange and ID-JAG, left out of On-Behalf-Of (the default).
    ByGrant,
    Send,
    Omit,
}

impl ResourceIndicator {
    pub fn parse(name: Option<&str>) -> Result<Self, ConfigError> {
        match name.map(str::trim) {
            None | Some("auto") => Ok(Self::ByGrant),
            Some("send") => Ok(Self::Send),
            Some("omit") => Ok(Self::Omit),
            Some(other) => Err(ConfigError::new(
                "resourceIndicator",
                format!("must be 'auto', 'send' or 'omit', got '{other}'"),
            )),
        }
    }

    /// Whether `resource` goes into a request of grant `kind`.
    pub fn sends(self, kind: GrantKind) -> bool {
        match self {
            Self::ByGrant => kind != GrantKind::OnBehalfOf,
            Self::Send => true,
            Self::Omit => false,
        }
    }
}

/// The grants this package can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantKind {
    OnBehalfOf,
    TokenExchange,
    /// ID-JAG: token exchange at the IdP, then jwt-bearer at the MCP authorization server.
    IdJag,
}

impl GrantKind {
    /// The grant sent to the configured IdP (ID-JAG's first leg is token exchange), which
    /// its `grant_types_supported` must list.
    pub fn urn(self) -> &'static str {
        match self {
            Self::OnBehalfOf => JWT_BEARER,
            Self::TokenExchange | Self::IdJag => TOKEN_EXCHANGE,
        }
    }

    /// The `grantType` option value that names it.
    pub fn option_name(self) -> &'static str {
        match self {
            Self::OnBehalfOf => "jwt_bearer",
            Self::TokenExchange => "token_exchange",
            Self::IdJag => "id_jag",
        }
    }
}

/// RFC 8693 settings of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenExchangeSettings {
    pub subject_token_type: String,
    pub requested_token_type: Option<String>,
}

/// A successful token response, as far as the broker needs it.
pub struct GrantResponse {
    pub access_token: String,
    /// Kept raw: it may be a number or a numeric string (see `expiry`).
    pub expires_in: Option<Value>,
    /// RFC 8693's type of the issued token (absent from On-Behalf-Of answers).
    pub issued_token_type: Option<String>,
    /// Entra's `refresh_in` hint (seconds after issue to refresh at), kept raw like
    /// `expires_in`.
    pub refresh_in: Option<Value>,
}

/// What one request asks for.
pub struct GrantRequest<'a> {
    /// The user's upstream access token.
    pub assertion: &'a str,
    pub scopes: &'a str,
    /// A claims challenge the client is answering (Conditional Access), passed on as is.
    pub claims: Option<&'a str>,
    /// RFC 8693's `audience` (token exchange only), and RFC 8707's `resource` when
    /// `ResourceIndicator::sends` it for this grant.
    pub audience: Option<&'a str>,
    pub resource: Option<&'a str>,
}

redacted_debug!(GrantResponse {
    shown: [expires_in, issued_token_type, refresh_in],
    hidden: [access_token]
});

/// Sends one token request with the chosen grant: for `IdJag`, the second leg, which
/// presents the ID-JAG (`grant.assertion`) with the jwt-bearer grant.
pub async fn request_token(
    http: &Client,
    endpoint: &Url,
    auth: &ClientAuth,
    kind: GrantKind,
    settings: &TokenExchangeSettings,
    grant: &GrantRequest<'_>,
) -> Result<GrantResponse, ExchangeError> {
    let form = match kind {
        GrantKind::OnBehalfOf if grant.audience.is_some() => {
            return Err(ExchangeError::Grant(GrantProblem::TargetNeedsTokenExchange));
        }
        GrantKind::OnBehalfOf => on_behalf_of_form(grant),
        GrantKind::TokenExchange => token_exchange_form(settings, grant),
        GrantKind::IdJag => assertion_grant_form(grant),
    };
    parse_success(post_form(http, endpoint, auth, form, grant.assertion).await?)
}

/// One POST of `form` to `endpoint` with the client's authentication, read as the
/// fields of a successful token response. `secret` (the user's token, an ID-JAG or a
/// refresh token) and the client's own credentials, in every form they were sent in,
/// are scrubbed from any error text the server sends back. Every grant of this crate
/// goes through here, so they send and fail alike.
pub(super) async fn post_form(
    http: &Client,
    endpoint: &Url,
    auth: &ClientAuth,
    mut form: Vec<(&'static str, &str)>,
    secret: &str,
) -> Result<Map<String, Value>, ExchangeError> {
    let client_assertion = auth.client_assertion(endpoint)?;
    let request = auth.apply(
        http.post(endpoint.clone()),
        &mut form,
        client_assertion.as_deref(),
    );
    let response = request
        .header(reqwest::header::ACCEPT, "application/json")
        .form(&form)
        .send()
        .await
        .map_err(transport_error)?;
    let mut sensitive = Sensitive::default();
    sensitive.value(secret);
    auth.add_sensitive(&mut sensitive);
    if let Some(jwt) = client_assertion.as_deref() {
        sensitive.value(jwt);
    }
    read_fields(response, &sensitive).await
}

/// Entra's On-Behalf-Of parameters, as LibreChat sends them.
fn on_behalf_of_form<'a>(grant: &GrantRequest<'a>) -> Vec<(&'static str, &'a str)> {
    let mut form = vec![
        ("grant_type", JWT_BEARER),
        ("assertion", grant.assertion),
        ("scope", grant.scopes),
        ("requested_token_use", "on_behalf_of"),
    ];
    form.extend(grant.claims.map(|claims| ("claims", claims)));
    form.extend(grant.resource.map(|resource| ("resource", resource)));
    form
}

/// RFC 7523 §2.1 with an ID-JAG as the assertion, and the MCP spec's RFC 8707 `resource`.
fn assertion_grant_form<'a>(grant: &GrantRequest<'a>) -> Vec<(&'static str, &'a str)> {
    let mut form = vec![
        ("grant_type", JWT_BEARER),
        ("assertion", grant.assertion),
        ("scope", grant.scopes),
    ];
    form.extend(grant.resource.map(|resource| ("resource", resource)));
    form
}

/// RFC 8693 §2.1 parameters.
fn token_exchange_form<'a>(
    settings: &'a TokenExchangeSettings,
    grant: &GrantRequest<'a>,
) -> Vec<(&'static str, &'a str)> {
    let mut form = vec![
        ("grant_type", TOKEN_EXCHANGE),
        ("subject_token", grant.assertion),
        ("subject_token_type", settings.subject_token_type.as_str()),
        ("scope", grant.scopes),
    ];
    form.extend(grant.audience.map(|audience| ("audience", audience)));
    form.extend(grant.resource.map(|resource| ("resource", resource)));
    form.extend(
        settings
            .requested_token_type
            .as_deref()
            .map(|kind| ("requested_token_type", kind)),
    );
    form
}

/// The fields of a successful token response, or the error the answer stands for;
/// `sensitive` values are scrubbed from any error text the IdP sends back. A body cut
/// short keeps the answer's status.
async fn read_fields(
    response: Response,
    sensitive: &Sensitive,
) -> Result<Map<String, Value>, ExchangeError> {
    let status = response.status();
    let retry_after = retry_after(&response);
    let body = match read_body(response, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(BodyError::Transport(error)) => {
            return Err(transport_error(error).after_head(status.as_u16(), retry_after))
        }
        Err(BodyError::TooLarge) => {
            return Err(ExchangeError::MalformedResponse {
                status: status.as_u16(),
            })
        }
    };
    answer_fields(status.as_u16(), retry_after, &body, sensitive)
}

/// The fields of a whole answer `body` of `status`, or the error it stands for: the
/// part of reading an answer that is only bytes, apart from the network.
pub(crate) fn answer_fields(
    status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
    sensitive: &Sensitive,
) -> Result<Map<String, Value>, ExchangeError> {
    if !(200..300).contains(&status) {
        return Err(ExchangeError::Idp {
            status,
            body: Box::new(IdpErrorBody::parse(body, sensitive)),
            retry_after,
        });
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(fields)) => Ok(fields),
        _ => Err(ExchangeError::MalformedResponse { status }),
    }
}

/// The token, which must be a bearer token of bounded size, and what else is kept of
/// the answer (`token_type` and `scope` are not read: the package answers `Bearer` and
/// the scopes asked for).
pub(crate) fn parse_success(
    mut fields: Map<String, Value>,
) -> Result<GrantResponse, ExchangeError> {
    let access_token = take_access_token(&mut fields)?;
    let issued_token_type = match fields.remove("issued_token_type") {
        Some(Value::String(kind)) => Some(kind),
        _ => None,
    };
    if let Some(kind) = &issued_token_type {
        bounds::name("The token response", "issued_token_type", kind)
            .map_err(ExchangeError::Answer)?;
    }
    Ok(GrantResponse {
        access_token,
        expires_in: fields.remove("expires_in"),
        issued_token_type,
        refresh_in: fields.remove("refresh_in"),
    })
}

/// The answer's `access_token`, which every token response is read for: a non-empty
/// string (else the answer is empty, and nothing may be cached) that is a bearer token of
/// bounded size (`bounds::bearer_token`).
pub fn take_access_token(fields: &mut Map<String, Value>) -> Result<String, ExchangeError> {
    match fields.remove("access_token") {
        Some(Value::String(token)) if !token.is_empty() => {
            bounds::bearer_token(&token).map_err(ExchangeError::Answer)?;
            Ok(token)
        }
        _ => Err(ExchangeError::EmptyResponse),
    }
}

#[cfg(test)]
#[path = "grant_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "grant_answer_tests.rs"]
mod answer_tests;
