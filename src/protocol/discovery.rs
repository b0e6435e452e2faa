//! What OpenID Connect discovery tells the service: the token endpoint, the grant
//! types the IdP advertises, and where its signing keys are.
//!
//! Discovery runs on first use, once however many calls arrive together, and its
//! result is kept for the life of the service. A failed discovery is not kept: the
//! next exchange tries again, so an IdP that was down at start-up does not leave the
//! service broken until a restart. A configured token endpoint skips discovery for
//! exchanges; verifying assertions (`validateAssertion`) still discovers the JWKS.

use openidconnect::core::{CoreGrantType, CoreProviderMetadata};
use openidconnect::{DiscoveryError, IssuerUrl};
use reqwest::Client;
use tokio::sync::OnceCell;
use url::Url;

use crate::ground::error::{error_chain, ExchangeError};

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
        let metadata = CoreProviderMetadata::discover_async(issuer, http)
            .await
            .map_err(|error| {
                let retryable = is_transient(&error);
                failed(error_chain(&error), retryable)
            })?;
        let token_endpoint = metadata
            .token_endpoint()
            .map(|endpoint| endpoint.url().clone())
            .ok_or_else(|| failed("the discovery document has no token_endpoint".into(), false))?;
        let grant_types = metadata
            .grant_types_supported()
            .map(|grants| grants.iter().map(grant_type_name).collect());
        Ok(Metadata {
            token_endpoint,
            grant_types,
            jwks_uri: metadata.jwks_uri().url().clone(),
        })
    }
}

/// Network failures and 5xx/429 answers may pass; a 404 or a malformed document will not.
fn is_transient<E: std::error::Error>(error: &DiscoveryError<E>) -> bool {
    match error {
        DiscoveryError::Request(_) => true,
        DiscoveryError::Response(status, ..) => status.is_server_error() || status.as_u16() == 429,
        _ => false,
    }
}

/// A grant type as the discovery document spells it.
fn grant_type_name(grant: &CoreGrantType) -> String {
    serde_json::to_value(grant)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default()
}
