//! What OpenID Connect discovery tells the service: the token endpoint, the grant
//! types the IdP advertises, and where its signing keys are.
//!
//! Discovery runs on first use, once however many calls arrive together, and its
//! result is kept for the life of the service. A failed discovery is not kept: the
//! next exchange tries again, so an IdP that was down at start-up does not leave the
//! service broken until a restart. A configured token endpoint skips discovery for
//! exchanges; verifying assertions (`validateAssertion`) still discovers where the JWKS
//! is. Only the document is fetched here; the JWKS itself only when a key is needed.

use openidconnect::core::{CoreGrantType, CoreProviderMetadata};
use openidconnect::IssuerUrl;
use reqwest::Client;
use tokio::sync::OnceCell;
use url::Url;

use super::http::{read_body, BodyError};
use crate::ground::bounds;
use crate::ground::error::{error_chain, ExchangeError};

/// Where OpenID Connect Discovery 1.0 §4 puts the document, relative to the issuer.
const DOCUMENT_PATH: &str = ".well-known/openid-configuration";
/// A discovery document larger than this is not a discovery document.
const MAX_DOCUMENT_BYTES: usize = 1 << 20;

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
    pub token_endpoint: Url,
    /// `grant_types_supported`; `None` when the document has none (Entra).
    pub grant_types: Option<Vec<String>>,
    pub jwks_uri: Url,
}

/// Where to send token requests, and what the IdP says it accepts there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint<'a> {
    pub url: &'a Url,
    /// `None` when not advertised, or when the endpoint was configured.
    pub grant_types: Option<&'a [String]>,
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
        Ok(Endpoint {
            url: &metadata.token_endpoint,
            grant_types: metadata.grant_types.as_deref(),
        })
    }

    /// The discovery document, fetched on the first successful call.
    pub async fn metadata(&self, http: &Client) -> Result<&Metadata, ExchangeError> {
        self.metadata.get_or_try_init(|| self.discover(http)).await
    }

    async fn discover(&self, http: &Client) -> Result<Metadata, ExchangeError> {
        let failed = |detail: String, retryable: bool| ExchangeError::Discovery {
            issuer: self.issuer.clone(),
            detail,
            retryable,
        };
        let issuer =
            IssuerUrl::new(self.issuer.clone()).map_err(|e| failed(e.to_string(), false))?;
        let metadata = fetch_document(&issuer, http)
            .await
            .map_err(|(detail, retryable)| failed(detail, retryable))?;
        if metadata.issuer() != &issuer {
            return Err(failed(
                format!(
                    "the document names another issuer ({}); the issuer must match it exactly",
                    bounds::quoted(metadata.issuer().as_str())
                ),
                false,
            ));
        }
        let token_endpoint = metadata
            .token_endpoint()
            .map(|endpoint| endpoint.url().clone())
            .ok_or_else(|| failed("the discovery document has no token_endpoint".into(), false))?;
        let grant_types = metadata
            .grant_types_supported()
            .map(|grants| grants.iter().map(grant_type_name).collect());
        let metadata = Metadata {
            token_endpoint,
            grant_types,
            jwks_uri: metadata.jwks_uri().url().clone(),
        };
        within_bounds(&self.issuer, &metadata)?;
        Ok(metadata)
    }
}

/// The URLs and names the service keeps must fit `bounds`: a 100,000-character
/// `token_endpoint` would otherwise fail every exchange later, with an uncoded error.
fn within_bounds(issuer: &str, metadata: &Metadata) -> Result<(), ExchangeError> {
    let source = format!("The discovery document of {issuer}");
    let grant_types = metadata.grant_types.as_deref().unwrap_or_default();
    bounds::url(&source, "token_endpoint", metadata.token_endpoint.as_str())
        .and_then(|()| bounds::url(&source, "jwks_uri", metadata.jwks_uri.as_str()))
        .and_then(|()| bounds::names(&source, "grant_types_supported", grant_types))
        .map_err(ExchangeError::Answer)
}

/// Fetches and parses the discovery document, and nothing else: the JWKS it points
/// to is fetched only when an assertion is verified, so a JWKS outage cannot stop
/// exchanges that never need a key. A failure is its text and whether it may pass
/// (network failures and 5xx/429 answers may; a 404 or a malformed document will not).
async fn fetch_document(
    issuer: &IssuerUrl,
    http: &Client,
) -> Result<CoreProviderMetadata, (String, bool)> {
    let url = issuer
        .join(DOCUMENT_PATH)
        .map_err(|e| (e.to_string(), false))?;
    let response = http
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| (error_chain(&e.without_url()), true))?;
    let status = response.status();
    if !status.is_success() {
        let transient = status.is_server_error() || status.as_u16() == 429;
        return Err((format!("HTTP {}", status.as_u16()), transient));
    }
    let body = read_body(response, MAX_DOCUMENT_BYTES)
        .await
        .map_err(|error| match error {
            BodyError::TooLarge => ("the document is too large".to_owned(), false),
            BodyError::Transport(error) => (error.to_string(), true),
        })?;
    serde_json::from_slice(&body).map_err(|e| (format!("the document cannot be read: {e}"), false))
}

/// A grant type as the discovery document spells it.
fn grant_type_name(grant: &CoreGrantType) -> String {
    serde_json::to_value(grant)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::protocol::http::{client, ClientSettings};
    use crate::test_server::{json, TestServer};

    async fn discover(status: u16, issuer_in_document: Option<&str>) -> ExchangeError {
        let server = TestServer::start_with(|url| {
            let issuer = issuer_in_document.unwrap_or(url);
            let document = format!(
                r#"{{"issuer":"{issuer}","authorization_endpoint":"{url}/auth",
                "token_endpoint":"{url}/token","jwks_uri":"{url}/jwks",
                "response_types_supported":["code"],"subject_types_supported":["public"],
                "id_token_signing_alg_values_supported":["RS256"]}}"#
            );
            vec![json(status, &document)]
        })
        .await;
        let http = client(&ClientSettings {
            timeout: Duration::from_secs(5),
            proxy: None,
        })
        .unwrap();
        Discovery::new(server.url.clone(), None)
            .endpoint(&http)
            .await
            .unwrap_err()
    }

    #[tokio::test]
    async fn throttling_and_outages_may_pass_a_missing_document_and_another_issuer_will_not() {
        for (status, retryable) in [(429, true), (503, true), (404, false)] {
            let error = discover(status, None).await;
            assert!(
                matches!(error, ExchangeError::Discovery { retryable: r, .. } if r == retryable),
                "{status}: {error}"
            );
            assert!(error.to_string().contains(&format!("HTTP {status}")));
        }
        let error = discover(200, Some("https://elsewhere.example")).await;
        assert!(!error.is_retryable());
        assert!(
            error
                .to_string()
                .contains("another issuer (https://elsewhere.example)"),
            "{error}"
        );
    }
}
