//! The MCP authorization metadata chain, read before an ID-JAG exchange: from the MCP
//! server's URL to its protected resource metadata (RFC 9728), which names its
//! authorization servers, and from the chosen one to its metadata (RFC 8414). Nothing
//! is sent to a token endpoint until the whole chain checks out, so a misconfigured
//! server costs no assertion.
//!
//! The authorization server's lists are read as the specs write them: a list that is
//! absent says nothing, and only a list that is present without what ID-JAG needs
//! refuses the server. The ID-JAG draft says a server SHOULD list its grant profile in
//! `authorization_grant_profiles_supported`, and the MCP extension that a client *can*
//! check it; neither makes it a precondition. `grant_types_supported` must name the
//! jwt-bearer grant when it is present. `token_endpoint_auth_methods_supported` is kept
//! for choosing how the client authenticates (`client_auth::ServerClientAuth`).
//!
//! Every document must name what it describes exactly (RFC 9728 §3.3, RFC 8414 §3.3):
//! a metadata document that names another resource or issuer could redirect the user's
//! grant, and is refused. Every URL of the chain must be https (plain http only on a
//! loopback host, for local set-ups): the chain decides where the client's credentials
//! and the user's grant go, so it must not be open to a man in the middle.

use reqwest::Client;
use serde::Deserialize;
use url::Url;

use super::document::{fetch_json, DocumentError};
use super::grant::JWT_BEARER;
use super::ssrf::Guard;
use crate::ground::bounds;
use crate::ground::error::{ExchangeError, MetadataProblem};

/// The grant profile an authorization server advertises when it takes ID-JAGs.
pub const ID_JAG_PROFILE: &str = "urn:ietf:params:oauth:grant-profile:id-jag";
/// RFC 9728 §3's well-known suffix.
pub(crate) const RESOURCE_SUFFIX: &str = "oauth-protected-resource";
/// RFC 8414 §3's well-known suffix, then OpenID Connect's, which the MCP spec also reads.
pub(crate) const SERVER_SUFFIXES: [&str; 2] =
    ["oauth-authorization-server", "openid-configuration"];

/// Where ID-JAG exchanges for one MCP server end: its authorization server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationServer {
    pub issuer: String,
    pub token_endpoint: Url,
    /// `token_endpoint_auth_methods_supported`; `None` when the document has none.
    pub auth_methods: Option<Vec<String>>,
}

#[derive(Deserialize)]
pub(crate) struct ResourceDocument {
    resource: Option<String>,
    #[serde(default)]
    authorization_servers: Vec<String>,
}

#[derive(Deserialize)]
pub(crate) struct ServerDocument {
    issuer: Option<String>,
    token_endpoint: Option<String>,
    grant_types_supported: Option<Vec<String>>,
    authorization_grant_profiles_supported: Option<Vec<String>>,
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
}

/// Reads and checks the chain for `resource`. The authorization server is `expected`
/// when the operator named one (it must be listed), else the first one listed. `hint` is
/// the `resource_metadata` of a 401 (RFC 9728 §5.1), read before the well-known paths.
/// The resource's own URLs go out on `http`; every URL the chain names passes `guard`.
pub async fn discover(
    http: &Client,
    guard: &Guard,
    resource: &str,
    expected: Option<&str>,
    hint: Option<&str>,
) -> Result<AuthorizationServer, ExchangeError> {
    let resource_url = metadata_base(resource, "the MCP server's resource")?;
    let hinted = match hint {
        Some(hint) => {
            let url = metadata_base(hint, "the resource_metadata of the server's challenge")?;
            Some((guard.admit(None, &url, hint).await?, url))
        }
        None => None,
    };
    let own = well_known(&resource_url, RESOURCE_SUFFIX, true);
    let candidates: Vec<(&Client, Url)> = hinted
        .into_iter()
        .chain(own.into_iter().map(|url| (http, url)))
        .collect();
    let (url, document): (_, ResourceDocument) = fetch_first(&candidates)
        .await?
        .map_err(|(url, detail)| ExchangeError::NoResourceMetadata { url, detail })?;
    let issuer = resource_issuer(&url, &document, resource, expected)?;
    authorization_server(guard, issuer).await
}

/// The authorization server that the protected resource metadata read from `url` names
/// for `resource`, once the document is checked (bounds, the exact resource).
pub(crate) fn resource_issuer<'a>(
    url: &Url,
    document: &'a ResourceDocument,
    resource: &str,
    expected: Option<&str>,
) -> Result<&'a str, ExchangeError> {
    let source = format!("The protected resource metadata at {url}");
    bounds::urls(
        &source,
        "authorization_servers",
        &document.authorization_servers,
    )
    .map_err(ExchangeError::Answer)?;
    if document.resource.as_deref() != Some(resource) {
        return Err(refused(
            url,
            MetadataProblem::ResourceMismatch,
            format!(
                "The protected resource metadata names the resource {}, not {resource}; it must name it exactly",
                bounds::quoted(document.resource.as_deref().unwrap_or("(none)"))
            ),
        ));
    }
    choose(&document.authorization_servers, expected)
        .map_err(|(problem, detail)| refused(url, problem, detail))
}

/// The operator's authorization server if listed, else the first one.
fn choose<'a>(
    listed: &'a [String],
    expected: Option<&str>,
) -> Result<&'a str, (MetadataProblem, String)> {
    let found = match expected {
        Some(expected) => listed.iter().find(|issuer| *issuer == expected),
        None => listed.first(),
    };
    found.map(String::as_str).ok_or_else(|| match expected {
        Some(expected) => (
            MetadataProblem::ServerNotListed,
            format!(
                "The protected resource metadata does not list the authorization server {expected} in authorization_servers [{}]",
                listed.join(", ")
            ),
        ),
        None => (
            MetadataProblem::NoAuthorizationServers,
            "The protected resource metadata lists no authorization_servers".to_owned(),
        ),
    })
}

/// RFC 8414 metadata of `issuer`, checked for what ID-JAG needs (`check_profile`); the
/// issuer and the token endpoint pass `guard`.
async fn authorization_server(
    guard: &Guard,
    issuer: &str,
) -> Result<AuthorizationServer, ExchangeError> {
    let base = metadata_base(issuer, "the authorization server's issuer")?;
    let http = guard.admit(Some(issuer), &base, issuer).await?;
    let candidates: Vec<(&Client, Url)> = SERVER_SUFFIXES
        .iter()
        .flat_map(|suffix| well_known(&base, suffix, false))
        .map(|url| (http, url))
        .collect();
    let (url, document): (_, ServerDocument) = fetch_first(&candidates)
        .await?
        .map_err(|(url, detail)| refused_str(&url, MetadataProblem::NotFound, &detail))?;
    let token_endpoint = server_token_endpoint(&url, &document, issuer)?;
    let written = document.token_endpoint.as_deref().unwrap_or_default();
    guard.admit(Some(issuer), &token_endpoint, written).await?;
    Ok(AuthorizationServer {
        issuer: issuer.to_owned(),
        token_endpoint,
        auth_methods: document.token_endpoint_auth_methods_supported,
    })
}

/// The token endpoint of the authorization server metadata read from `url`, once the
/// document is checked: bounds, the exact issuer, ID-JAG's lists, an https endpoint.
pub(crate) fn server_token_endpoint(
    url: &Url,
    document: &ServerDocument,
    issuer: &str,
) -> Result<Url, ExchangeError> {
    server_within_bounds(url, document)?;
    if document.issuer.as_deref() != Some(issuer) {
        return Err(refused(
            url,
            MetadataProblem::IssuerMismatch,
            format!(
                "The authorization server metadata names the issuer {}, not {issuer}; it must name it exactly",
                bounds::quoted(document.issuer.as_deref().unwrap_or("(none)"))
            ),
        ));
    }
    check_profile(document).map_err(|(problem, detail)| refused(url, problem, detail))?;
    document
        .token_endpoint
        .as_deref()
        .and_then(|endpoint| bounds::parse_url(endpoint).ok())
        .filter(secure)
        .ok_or_else(|| {
            refused(
                url,
                MetadataProblem::NoTokenEndpoint,
                "The authorization server metadata has no https token_endpoint".into(),
            )
        })
}

/// The URL and the lists of the document must fit `bounds`, as the IdP's discovery
/// document's must.
fn server_within_bounds(url: &Url, document: &ServerDocument) -> Result<(), ExchangeError> {
    let source = format!("The authorization server metadata at {url}");
    let grants = document
        .grant_types_supported
        .as_deref()
        .unwrap_or_default();
    let profiles = document
        .authorization_grant_profiles_supported
        .as_deref()
        .unwrap_or_default();
    let endpoint = document.token_endpoint.as_deref().unwrap_or_default();
    bounds::url(&source, "token_endpoint", endpoint)
        .and_then(|()| bounds::names(&source, "grant_types_supported", grants))
        .and_then(|()| bounds::names(&source, "authorization_grant_profiles_supported", profiles))
        .map_err(ExchangeError::Answer)
}

/// Lists that are present must include ID-JAG's grant profile and the jwt-bearer grant;
/// absent ones say nothing (see the module's doc).
fn check_profile(document: &ServerDocument) -> Result<(), (MetadataProblem, String)> {
    if let Some(profiles) = &document.authorization_grant_profiles_supported {
        if !profiles.iter().any(|p| p == ID_JAG_PROFILE) {
            return Err((
                MetadataProblem::NoIdJagProfile,
                format!(
                    "The authorization server does not advertise the ID-JAG grant profile ({ID_JAG_PROFILE}) in authorization_grant_profiles_supported [{}]",
                    profiles.join(", ")
                ),
            ));
        }
    }
    match &document.grant_types_supported {
        Some(grants) if !grants.iter().any(|g| g == JWT_BEARER) => Err((
            MetadataProblem::NoJwtBearer,
            format!(
                "The authorization server does not advertise the jwt-bearer grant ({JWT_BEARER}) in grant_types_supported [{}]",
                grants.join(", ")
            ),
        )),
        _ => Ok(()),
    }
}

/// A secure URL without a fragment, or a refusal naming `what`.
pub(crate) fn metadata_base(value: &str, what: &str) -> Result<Url, ExchangeError> {
    bounds::parse_url(value)
        .ok()
        .filter(|url| secure(url) && url.fragment().is_none())
        .ok_or_else(|| ExchangeError::Metadata {
            url: value.to_owned(),
            problem: MetadataProblem::InsecureUrl,
            detail: format!(
                "{what} must be an https URL (http only on a loopback host) without a fragment"
            ),
            retryable: false,
            cause: None,
        })
}

/// https, or http to this machine (`localhost`, 127.0.0.0/8, `::1`).
pub fn secure(url: &Url) -> bool {
    match (url.scheme(), url.host()) {
        ("https", _) => true,
        ("http", Some(url::Host::Domain(domain))) => domain.eq_ignore_ascii_case("localhost"),
        ("http", Some(url::Host::Ipv4(ip))) => ip.is_loopback(),
        ("http", Some(url::Host::Ipv6(ip))) => ip.is_loopback(),
        _ => false,
    }
}

/// The well-known URLs of `base`: the suffix inserted between host and path (RFC 9728
/// §3.1 drops only a slash right after the host, RFC 8414 §3.1 a terminating one); for a resource with a path, then the host's own document (the
/// MCP spec's fallback); for an issuer, then the suffix after its path (OpenID's form).
pub(crate) fn well_known(base: &Url, suffix: &str, resource: bool) -> Vec<Url> {
    let path = match base.path() {
        "/" => "",
        path if resource => path,
        path => path.strip_suffix('/').unwrap_or(path),
    };
    let mut inserted = base.clone();
    inserted.set_path(&format!("/.well-known/{suffix}{path}"));
    let mut urls = vec![inserted];
    if path.is_empty() {
        return urls;
    }
    let mut other = base.clone();
    other.set_query(None);
    if resource {
        other.set_path(&format!("/.well-known/{suffix}"));
    } else if suffix == "openid-configuration" {
        other.set_path(&format!("{path}/.well-known/{suffix}"));
    } else {
        return urls;
    }
    urls.push(other);
    urls
}

/// The first of `urls` that answers (a client error passes to the next, as the MCP SDK
/// does), parsed; any other failure stops the search, transient as the fetcher judges. When every one answers a client error, the inner `Err` is the first
/// URL and a text listing every URL tried, for the caller to say what was missing.
async fn fetch_first<T: serde::de::DeserializeOwned>(
    urls: &[(&Client, Url)],
) -> Result<Result<(Url, T), (String, String)>, ExchangeError> {
    let mut missing = Vec::new();
    for (http, url) in urls {
        match fetch_json(http, url).await {
            Ok(document) => return Ok(Ok((url.clone(), document))),
            Err(DocumentError::Absent { status }) => {
                missing.push(format!("HTTP {status} at {url}"))
            }
            Err(error) => {
                return Err(ExchangeError::Metadata {
                    url: url.to_string(),
                    problem: problem_of(&error),
                    detail: error.describe("The metadata"),
                    retryable: error.is_transient(),
                    cause: error.cause(),
                })
            }
        }
    }
    Ok(Err((
        urls.first()
            .map(|(_, url)| url.to_string())
            .unwrap_or_default(),
        format!("No metadata document was found ({})", missing.join(", ")),
    )))
}

/// What a failed fetch says about the metadata: a body that is not the document is
/// unreadable; no whole answer, or a 5xx/429, is an unavailable server.
fn problem_of(error: &DocumentError) -> MetadataProblem {
    match error {
        DocumentError::TooLarge | DocumentError::Unreadable(_) => MetadataProblem::Unreadable,
        _ => MetadataProblem::Unavailable,
    }
}

fn refused(url: &Url, problem: MetadataProblem, detail: String) -> ExchangeError {
    refused_str(url.as_str(), problem, &detail)
}

fn refused_str(url: &str, problem: MetadataProblem, detail: &str) -> ExchangeError {
    ExchangeError::Metadata {
        url: url.to_owned(),
        problem,
        detail: detail.to_owned(),
        retryable: false,
        cause: None,
    }
}

#[cfg(test)]
mod tests;
