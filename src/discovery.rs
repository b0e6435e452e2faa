//! Finding the token endpoint, and the grant types the IdP advertises, through OpenID
//! Connect discovery.
//!
//! Discovery runs on first use, once however many calls arrive together, and its
//! result is kept for the life of the service. A failed discovery is not kept: the
//! next exchange tries again, so an IdP that was down at start-up does not leave the
//! service broken until a restart.

use openidconnect::core::CoreProviderMetadata;
use openidconnect::{DiscoveryError, IssuerUrl};
use reqwest::Client;
use tokio::sync::OnceCell;
use url::Url;

use crate::error::{error_chain, ExchangeError};

/// The token endpoint: configured, or discovered once from the issuer.
#[derive(Debug)]
pub struct TokenEndpoint {
    issuer: String,
    resolved: OnceCell<Endpoint>,
}

/// Where to send token requests, and what the IdP says it accepts there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub url: Url,
    /// `grant_types_supported`; `None` when the document has none (Entra) or the
    /// endpoint was configured rather than discovered.
    pub grant_types: Option<Vec<String>>,
}

impl TokenEndpoint {
    /// `configured` skips discovery entirely.
    pub fn new(issuer: String, configured: Option<Url>) -> Self {
        Self {
            issuer,
            resolved: configured.map_or_else(OnceCell::new, |url| {
                OnceCell::new_with(Some(Endpoint {
                    url,
                    grant_types: None,
                }))
            }),
        }
    }

    /// The endpoint, discovering it if this is the first successful call.
    pub async fn get(&self, http: &Client) -> Result<&Endpoint, ExchangeError> {
        self.resolved.get_or_try_init(|| self.discover(http)).await
    }

    async fn discover(&self, http: &Client) -> Result<Endpoint, ExchangeError> {
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
        let url = metadata
            .token_endpoint()
            .map(|endpoint| endpoint.url().clone())
            .ok_or_else(|| failed("the discovery document has no token_endpoint".into(), false))?;
        let grant_types = metadata
            .grant_types_supported()
            .map(|grants| grants.iter().map(grant_type_name).collect());
        Ok(Endpoint { url, grant_types })
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
fn grant_type_name(grant: &openidconnect::core::CoreGrantType) -> String {
    serde_json::to_value(grant)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default()
}
