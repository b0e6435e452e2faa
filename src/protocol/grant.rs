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

use reqwest::{Client, Response};
use serde_json::{Map, Value};
use url::Url;

use super::assertion::Demand;
use super::client_auth::ClientAuth;
use super::http::{read_body, retry_after, transport_error, BodyError};
use crate::ground::error::{ConfigError, ExchangeError, GrantProblem, IdpErrorBody};
use crate::ground::redact::redacted_debug;

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
    /// Whichever of the two the IdP advertises, token exchange first.
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
        let offers =
            |kind: GrantKind| advertised.is_some_and(|list| list.iter().any(|g| g == kind.urn()));
        match self {
            Self::Default => Ok(GrantKind::OnBehalfOf),
            Self::Named(kind) if advertised.is_none() || offers(kind) => Ok(kind),
            Self::Named(kind) => Err(GrantProblem::NotAdvertised {
                wanted: kind.option_name(),
                wanted_urn: kind.urn(),
                advertised: advertised.unwrap_or_default().to_vec(),
            }),
            Self::Auto => [GrantKind::TokenExchange, GrantKind::OnBehalfOf]
                .into_iter()
                .find(|kind| offers(*kind))
                .ok_or_else(|| GrantProblem::NoneAdvertised {
                    advertised: advertised.map(<[String]>::to_vec),
                }),
        }
    }
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
    let mut form = match kind {
        GrantKind::OnBehalfOf if grant.audience.is_some() => {
            return Err(ExchangeError::Grant(GrantProblem::TargetNeedsTokenExchange));
        }
        GrantKind::OnBehalfOf => on_behalf_of_form(grant),
        GrantKind::TokenExchange => token_exchange_form(settings, grant),
        GrantKind::IdJag => assertion_grant_form(grant),
    };
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
    let mut sensitive = vec![grant.assertion];
    sensitive.extend(auth.sensitive());
    sensitive.extend(client_assertion.as_deref());
    read_response(response, &sensitive).await
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

/// Turns the HTTP answer into a grant or an error; `sensitive` values are scrubbed
/// from any error text the IdP sends back.
async fn read_response(
    response: Response,
    sensitive: &[&str],
) -> Result<GrantResponse, ExchangeError> {
    parse_success(read_fields(response, sensitive).await?)
}

/// The fields of a successful token response, or the error the answer stands for;
/// `sensitive` values are scrubbed from any error text the IdP sends back. Every grant
/// of this crate reads its answer through here, so they fail alike.
pub(super) async fn read_fields(
    response: Response,
    sensitive: &[&str],
) -> Result<Map<String, Value>, ExchangeError> {
    let status = response.status();
    let retry_after = retry_after(&response);
    let body = match read_body(response, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(BodyError::Transport(error)) => return Err(error),
        Err(BodyError::TooLarge) => {
            return Err(ExchangeError::MalformedResponse {
                status: status.as_u16(),
            })
        }
    };
    if !status.is_success() {
        let mut body = IdpErrorBody::parse(&body);
        body.redact(sensitive);
        return Err(ExchangeError::Idp {
            status: status.as_u16(),
            body: Box::new(body),
            retry_after,
        });
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(fields)) => Ok(fields),
        _ => Err(ExchangeError::MalformedResponse {
            status: status.as_u16(),
        }),
    }
}

fn parse_success(mut fields: Map<String, Value>) -> Result<GrantResponse, ExchangeError> {
    match fields.remove("access_token") {
        Some(Value::String(access_token)) if !access_token.is_empty() => Ok(GrantResponse {
            access_token,
            expires_in: fields.remove("expires_in"),
            issued_token_type: match fields.remove("issued_token_type") {
                Some(Value::String(kind)) => Some(kind),
                _ => None,
            },
            refresh_in: fields.remove("refresh_in"),
        }),
        _ => Err(ExchangeError::EmptyResponse),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(grants: &[&str]) -> Vec<String> {
        grants.iter().map(|g| g.to_string()).collect()
    }

    #[test]
    fn choosing_a_grant() {
        let both = list(&[JWT_BEARER, TOKEN_EXCHANGE]);
        let obo_only = list(&["authorization_code", JWT_BEARER]);
        let te = GrantMode::Named(GrantKind::TokenExchange);
        let obo = GrantMode::Named(GrantKind::OnBehalfOf);
        assert_eq!(
            GrantMode::Default.choose(Some(&list(&["authorization_code"]))),
            Ok(GrantKind::OnBehalfOf)
        );
        assert_eq!(
            GrantMode::Auto.choose(Some(&both)),
            Ok(GrantKind::TokenExchange)
        );
        assert_eq!(
            GrantMode::Auto.choose(Some(&obo_only)),
            Ok(GrantKind::OnBehalfOf)
        );
        assert!(GrantMode::Auto.choose(None).is_err());
        assert_eq!(
            te.choose(None),
            Ok(GrantKind::TokenExchange),
            "nothing advertised: trust the operator"
        );
        assert_eq!(te.choose(Some(&both)), Ok(GrantKind::TokenExchange));
        assert_eq!(obo.choose(Some(&obo_only)), Ok(GrantKind::OnBehalfOf));
        let refused = te.choose(Some(&obo_only)).unwrap_err();
        assert!(refused.to_string().contains(TOKEN_EXCHANGE), "{refused}");
        assert!(
            refused.to_string().contains(JWT_BEARER),
            "lists what is advertised: {refused}"
        );
    }

    #[test]
    fn on_behalf_of_and_an_id_token_subject_demand_a_jws() {
        let demand = |mode: GrantMode, subject| mode.demand(subject);
        assert_eq!(demand(GrantMode::Default, ACCESS_TOKEN_TYPE), Demand::Jws);
        let named = GrantMode::Named;
        assert_eq!(
            demand(named(GrantKind::OnBehalfOf), ACCESS_TOKEN_TYPE),
            Demand::Jws
        );
        assert_eq!(
            demand(named(GrantKind::TokenExchange), ID_TOKEN_TYPE),
            Demand::AnyToken
        );
        assert_eq!(demand(GrantMode::Auto, ACCESS_TOKEN_TYPE), Demand::AnyToken);
        assert_eq!(demand(named(GrantKind::IdJag), ID_TOKEN_TYPE), Demand::Jws);
        assert_eq!(
            demand(named(GrantKind::IdJag), REFRESH_TOKEN_TYPE),
            Demand::AnyToken
        );
    }

    #[test]
    fn id_jag_is_token_exchange_at_the_idp_and_sends_its_resource() {
        assert_eq!(
            GrantMode::parse(Some("id_jag")),
            Ok(GrantMode::Named(GrantKind::IdJag))
        );
        assert_eq!(GrantKind::IdJag.urn(), TOKEN_EXCHANGE);
        assert_eq!(
            GrantMode::Named(GrantKind::IdJag).choose(Some(&list(&[JWT_BEARER]))),
            Err(GrantProblem::NotAdvertised {
                wanted: "id_jag",
                wanted_urn: TOKEN_EXCHANGE,
                advertised: list(&[JWT_BEARER]),
            })
        );
        assert!(ResourceIndicator::ByGrant.sends(GrantKind::IdJag));
        assert!(!ResourceIndicator::Omit.sends(GrantKind::IdJag));
    }

    #[test]
    fn the_second_id_jag_leg_presents_the_assertion_with_jwt_bearer() {
        let grant = GrantRequest {
            assertion: "id.jag.jwt",
            scopes: "files.read",
            claims: Some("{}"),
            audience: Some("https://as.example"),
            resource: Some("https://mcp.example/mcp"),
        };
        assert_eq!(
            assertion_grant_form(&grant),
            [
                ("grant_type", JWT_BEARER),
                ("assertion", "id.jag.jwt"),
                ("scope", "files.read"),
                ("resource", "https://mcp.example/mcp"),
            ]
        );
    }

    #[test]
    fn parsing_the_mode_names_the_option() {
        assert_eq!(GrantMode::parse(Some("auto")), Ok(GrantMode::Auto));
        let err = GrantMode::parse(Some("password")).unwrap_err();
        assert_eq!(err.option, "grantType");
    }

    #[test]
    fn the_resource_indicator_names_its_option_and_decides_by_grant() {
        let by_grant = ResourceIndicator::parse(None).unwrap();
        assert_eq!(ResourceIndicator::parse(Some(" auto ")), Ok(by_grant));
        assert!(by_grant.sends(GrantKind::TokenExchange));
        assert!(!by_grant.sends(GrantKind::OnBehalfOf));
        let send = ResourceIndicator::parse(Some("send")).unwrap();
        assert!(send.sends(GrantKind::OnBehalfOf) && send.sends(GrantKind::TokenExchange));
        let omit = ResourceIndicator::parse(Some("omit")).unwrap();
        assert!(!omit.sends(GrantKind::OnBehalfOf) && !omit.sends(GrantKind::TokenExchange));
        let err = ResourceIndicator::parse(Some("always")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "options.resourceIndicator must be 'auto', 'send' or 'omit', got 'always'"
        );
    }

    #[test]
    fn token_exchange_form_has_only_what_was_given() {
        let settings = TokenExchangeSettings {
            subject_token_type: "urn:ietf:params:oauth:token-type:jwt".into(),
            requested_token_type: Some(ACCESS_TOKEN_TYPE.into()),
        };
        let grant = GrantRequest {
            assertion: "a.b.c",
            scopes: "files",
            claims: Some("{}"),
            audience: None,
            resource: None,
        };
        let form = token_exchange_form(&settings, &grant);
        let names: Vec<&str> = form.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "grant_type",
                "subject_token",
                "subject_token_type",
                "scope",
                "requested_token_type"
            ]
        );
    }
}
