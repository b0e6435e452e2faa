//! Finding the token endpoint through OpenID Connect discovery.
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
    resolved: OnceCell<Url>,
}

impl TokenEndpoint {
    /// `configured` skips discovery entirely.
    pub fn new(issuer: String, configured: Option<Url>) -> Self {
        Self {
            issuer,
            resolved: configured.map_or_else(OnceCell::new, |url| OnceCell::new_with(Some(url))),
        }
    }

    /// The endpoint, discovering it if this is the first successful call.
    pub async fn get(&self, http: &Client) -> Result<&Url, ExchangeError> {
        self.resolved.get_or_try_init(|| self.discover(http)).await
    }

    async fn discover(&self, http: &Client) -> Result<Url, ExchangeError> {
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
        metadata
            .token_endpoint()
            .map(|endpoint| endpoint.url().clone())
            .ok_or_else(|| failed("the discovery document has no token_endpoint".into(), false))
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
