//! What discovery tells the service about its IdP: the token endpoint, the grant types
//! it advertises, and where its signing keys are.
//!
//! Only what an exchange uses is read: `issuer`, `token_endpoint`,
//! `grant_types_supported`, and `jwks_uri` (needed only by `validateAssertion`). Nothing
//! else in the document is required, so an OAuth-only server or an IdP that leaves out
//! an OpenID-required field works, as it does with LibreChat's openid-client. The OpenID
//! Connect document is asked for first; when the server has none (a 4xx), its RFC 8414
//! document. The issuer must match (`issuer.rs` has openid-client's exceptions).
//!
//! Discovery runs on first use, once however many calls arrive together, and its
//! result is kept for the life of the service. A failed discovery is not kept: the
//! next exchange tries again, so an IdP that was down at start-up does not leave the
//! service broken until a restart. A configured token endpoint skips discovery for
//! exchanges; verifying assertions (`validateAssertion`) still discovers where the JWKS
//! is. Only the document is fetched here; the JWKS itself only when a key is needed.

use reqwest::Client;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::OnceCell;
use url::Url;

use super::document::{fetch_json, DocumentError};
use super::issuer::DocumentIssuer;
use crate::ground::bounds;
use crate::ground::error::ExchangeError;

/// Where OpenID Connect Discovery 1.0 §4 puts the document, after the issuer's path.
const OPENID_PATH: &str = "/.well-known/openid-configuration";
/// Where RFC 8414 §3 puts the document, before the issuer's path.
const OAUTH_PATH: &str = "/.well-known/oauth-authorization-server";

/// The issuer's discovery document, read once.
#[derive(Debug)]
pub struct Discovery {
    issuer: String,
    configured_endpoint: Option<Url>,
    metadata: OnceCell<Metadata>,
}

/// The parts of the discovery document the service uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// The URL the document was read from (OpenID's, or RFC 8414's).
    pub document: Url,
    pub issuer: DocumentIssuer,
    /// `None` when the document has none: only a configured endpoint can then be used.
    pub token_endpoint: Option<Url>,
    /// `grant_types_supported`; `None` when the document has none or an empty one (Entra).
    pub grant_types: Option<Vec<String>>,
    /// `None` when the document has none: only `validateAssertion` needs it.
    pub jwks_uri: Option<Url>,
}

/// Where to send token requests, and what the IdP says it accepts there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint<'a> {
    pub url: &'a Url,
    /// `None` when not advertised, or when the endpoint was configured.
    pub grant_types: Option<&'a [String]>,
}

/// The members read, each as loosely as serde allows; the rest is ignored.
#[derive(Deserialize)]
pub(crate) struct Document {
    issuer: Option<Value>,
    token_endpoint: Option<Value>,
    grant_types_supported: Option<Value>,
    jwks_uri: Option<Value>,
}

impl Discovery {
    /// `configured_endpoint` is used for exchanges instead of the discovered one.
    pub fn new(issuer: String, configured_endpoint: Option<Url>) -> Self {
        Self {
            issuer,
            configured_endpoint,
            metadata: OnceCell::new(),
        }
    }

    /// The token endpoint, discovering it if it was not configured.
    pub async fn endpoint(&self, http: &Client) -> Result<Endpoint<'_>, ExchangeError> {
        if let Some(url) = &self.configured_endpoint {
            return Ok(Endpoint {
                url,
                grant_types: None,
            });
        }
        let metadata = self.metadata(http).await?;
        let url = metadata
            .token_endpoint
            .as_ref()
            .ok_or_else(|| self.failed("the discovery document has no token_endpoint"))?;
        Ok(Endpoint {
            url,
            grant_types: metadata.grant_types.as_deref(),
        })
    }

    /// The JWKS URI and the accepted issuer, for `validateAssertion`.
    pub async fn keys(&self, http: &Client) -> Result<(&Url, &DocumentIssuer), ExchangeError> {
        let metadata = self.metadata(http).await?;
        let jwks_uri = metadata.jwks_uri.as_ref().ok_or_else(|| {
            self.failed("the discovery document has no jwks_uri, which validateAssertion needs")
        })?;
        Ok((jwks_uri, &metadata.issuer))
    }

    /// The discovery document, fetched on the first successful call.
    pub async fn metadata(&self, http: &Client) -> Result<&Metadata, ExchangeError> {
        self.metadata.get_or_try_init(|| self.discover(http)).await
    }

    /// A discovery that failed past the fetch (an issuer that is not a URL, a document
    /// that is wrong): nothing failed below HTTP, and asking again gives the same answer.
    fn failed(&self, detail: impl Into<String>) -> ExchangeError {
        ExchangeError::Discovery {
            issuer: self.issuer.clone(),
            detail: detail.into(),
            retryable: false,
            cause: None,
        }
    }

    async fn discover(&self, http: &Client) -> Result<Metadata, ExchangeError> {
        let issuer = bounds::parse_url(&self.issuer)
            .map_err(|e| self.failed(format!("the issuer is not a URL ({e})")))?;
        let (url, document, openid) = self.fetch(&issuer, http).await?;
        let metadata =
            read(&issuer, url, document, openid).map_err(|detail| self.failed(detail))?;
        within_bounds(&self.issuer, &metadata)?;
        Ok(metadata)
    }

    /// The OpenID document, or the RFC 8414 one when the server has no OpenID one.
    async fn fetch(
        &self,
        issuer: &Url,
        http: &Client,
    ) -> Result<(Url, Document, bool), ExchangeError> {
        let openid = well_known(issuer, OPENID_PATH, false);
        let status = match fetch_json(http, &openid).await {
            Ok(document) => return Ok((openid, document, true)),
            Err(DocumentError::Absent { status }) => status,
            Err(error) => {
                let detail = format!("{} ({openid})", error.describe("the discovery"));
                return Err(self.fetch_failed(detail, &error));
            }
        };
        let oauth = well_known(issuer, OAUTH_PATH, true);
        match fetch_json(http, &oauth).await {
            Ok(document) => Ok((oauth, document, false)),
            Err(error) => {
                let why = match &error {
                    DocumentError::Absent { status } => format!("HTTP {status}"),
                    other => other.describe("the discovery"),
                };
                Err(self.fetch_failed(
                    format!("no document at {openid} (HTTP {status}) nor at {oauth} ({why})"),
                    &error,
                ))
            }
        }
    }

    /// A fetch that failed with `error`, said as `detail`: transient as the fetcher
    /// judges it, and caused by what failed below HTTP, when that was it.
    fn fetch_failed(&self, detail: String, error: &DocumentError) -> ExchangeError {
        ExchangeError::Discovery {
            issuer: self.issuer.clone(),
            detail,
            retryable: error.is_transient(),
            cause: error.cause(),
        }
    }
}

/// The well-known URL of `issuer`: `path` after the issuer's path (OpenID Connect) or,
/// with `insert`, before it (RFC 8414 §3: `https://as/tenant` has its document at
/// `https://as/.well-known/oauth-authorization-server/tenant`). A trailing `/` of the
/// issuer's path is dropped either way, as openid-client does.
fn well_known(issuer: &Url, path: &str, insert: bool) -> Url {
    let own = issuer.path().trim_end_matches('/');
    let mut url = issuer.clone();
    if insert {
        url.set_path(&format!("{path}{own}"));
    } else {
        url.set_path(&format!("{own}{path}"));
    }
    url
}

/// The URLs and names the service keeps must fit `bounds`: a 100,000-character
/// `token_endpoint` would otherwise fail every exchange later, with an uncoded error.
pub(crate) fn within_bounds(issuer: &str, metadata: &Metadata) -> Result<(), ExchangeError> {
    let source = format!("The discovery document of {issuer}");
    let grant_types = metadata.grant_types.as_deref().unwrap_or_default();
    let url = |field, value: &Option<Url>| match value {
        Some(value) => bounds::url(&source, field, value.as_str()),
        None => Ok(()),
    };
    url("token_endpoint", &metadata.token_endpoint)
        .and_then(|()| url("jwks_uri", &metadata.jwks_uri))
        .and_then(|()| bounds::names(&source, "grant_types_supported", grant_types))
        .map_err(ExchangeError::Answer)
}

/// The members the service uses, checked.
pub(crate) fn read(
    configured: &Url,
    url: Url,
    document: Document,
    openid: bool,
) -> Result<Metadata, String> {
    let named = match document.issuer {
        Some(Value::String(named)) => named,
        Some(_) => return Err("the document's issuer is not a string".into()),
        None => return Err("the document has no issuer".into()),
    };
    let issuer = DocumentIssuer::check(configured, &named, openid)?;
    Ok(Metadata {
        document: url,
        issuer,
        token_endpoint: endpoint("token_endpoint", document.token_endpoint)?,
        grant_types: grant_types(document.grant_types_supported)?,
        jwks_uri: endpoint("jwks_uri", document.jwks_uri)?,
    })
}

/// An endpoint member: absent, or an absolute URL.
fn endpoint(name: &str, value: Option<Value>) -> Result<Option<Url>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => bounds::parse_url(&text).map(Some).map_err(|e| {
            format!(
                "the document's {name} '{}' is not a URL ({e})",
                bounds::quoted(&text)
            )
        }),
        Some(_) => Err(format!("the document's {name} is not a string")),
    }
}

/// `grant_types_supported`: the strings of a list, whatever they name (unknown grants
/// are simply not chosen); an empty list says nothing, as an absent one.
fn grant_types(value: Option<Value>) -> Result<Option<Vec<String>>, String> {
    let list = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(list)) => list,
        Some(_) => return Err("the document's grant_types_supported is not a list".into()),
    };
    let names: Vec<String> = list
        .into_iter()
        .filter_map(|grant| match grant {
            Value::String(name) => Some(name),
            _ => None,
        })
        .collect();
    Ok(Some(names).filter(|names| !names.is_empty()))
}

#[cfg(test)]
#[path = "discovery_tests.rs"]
mod tests;
