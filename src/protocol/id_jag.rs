//! ID-JAG, the MCP spec's Enterprise-Managed Authorization, in two legs: RFC 8693 at
//! the enterprise IdP trades the user's ID token (or refresh token) for an Identity
//! Assertion JWT Authorization Grant addressed to the MCP server's authorization server;
//! RFC 7523's jwt-bearer grant there trades the ID-JAG for the access token.
//!
//! The ID-JAG lives only between the two requests: it is never cached, logged or sent
//! anywhere but the token endpoint of the authorization server it names, and it is
//! redacted from that server's error texts. A retry runs both legs again, since an
//! authorization server refuses an ID-JAG it has seen (`jti` replay).
//!
//! One service holds one client registration, so it serves one authorization server:
//! the one configured, else the first one discovery finds, pinned from then on. A
//! resource (or a call's `audience`) that leads elsewhere is refused, so its
//! credentials never reach a server the operator did not mean them for.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use reqwest::Client;
use tokio::sync::OnceCell;
use url::Url;

use super::client_auth::ClientAuth;
use super::grant::{
    request_token, GrantKind, GrantRequest, GrantResponse, TokenExchangeSettings, ID_JAG_TYPE,
};
use super::metadata::{self, AuthorizationServer};
use crate::ground::error::{ExchangeError, GrantProblem, IdJagStep};

/// How long a discovered chain is trusted before it is read again.
const CHAIN_TTL: Duration = Duration::from_secs(3600);
/// Distinct (resource, authorization server) pairs remembered.
const MAX_CHAINS: u64 = 256;
/// How long a failed discovery answers for its chain: the calls queued behind it fail
/// with it at once instead of each waiting out the same timeouts.
const FAILURE_TTL: Duration = Duration::from_secs(5);

/// The ID-JAG side of a service: the client's registration at the MCP authorization
/// server, and the chains discovered so far.
pub struct IdJag {
    client_auth: ClientAuth,
    /// The authorization server: the one the operator named, else the first discovered.
    pinned: OnceLock<String>,
    settings: TokenExchangeSettings,
    /// One cell per chain: joiners wait for one discovery; a failure leaves it empty.
    chains: moka::sync::Cache<String, Arc<OnceCell<AuthorizationServer>>>,
    /// Failed discoveries, for `FAILURE_TTL`.
    failures: moka::sync::Cache<String, ExchangeError>,
}

/// The enterprise IdP's token endpoint and this client's registration there (leg 1).
pub struct Idp<'a> {
    pub endpoint: &'a Url,
    pub auth: &'a ClientAuth,
}

/// What one ID-JAG exchange asks for.
pub struct IdJagRequest<'a> {
    /// The user's ID token or refresh token.
    pub subject_token: &'a str,
    pub scopes: &'a str,
    /// The MCP server's resource identifier, where discovery starts.
    pub resource: Option<&'a str>,
    /// The call's authorization server, when it names one (it must be the service's).
    pub audience: Option<&'a str>,
    /// A claims challenge answer, which only On-Behalf-Of can pass on: refused.
    pub claims: Option<&'a str>,
    /// Where a 401 said the resource's metadata is, read before the well-known paths.
    pub resource_metadata: Option<&'a str>,
    /// Whether `resource` goes into leg 1 (`resourceIndicator`); leg 2 always sends it,
    /// as the MCP spec asks of every token request to its authorization servers.
    pub send_resource: bool,
}

impl IdJag {
    pub fn new(
        client_auth: ClientAuth,
        issuer: Option<String>,
        subject_token_type: String,
    ) -> Self {
        let pinned = OnceLock::new();
        if let Some(issuer) = issuer {
            let _ = pinned.set(issuer);
        }
        Self {
            client_auth,
            pinned,
            settings: TokenExchangeSettings {
                subject_token_type,
                requested_token_type: Some(ID_JAG_TYPE.to_owned()),
            },
            chains: moka::sync::Cache::builder()
                .max_capacity(MAX_CHAINS)
                .time_to_live(CHAIN_TTL)
                .build(),
            failures: moka::sync::Cache::builder()
                .max_capacity(MAX_CHAINS)
                .time_to_live(FAILURE_TTL)
                .build(),
        }
    }

    /// Discovery, then both legs; an error names the step that failed.
    pub async fn obtain(
        &self,
        http: &Client,
        idp: Idp<'_>,
        request: &IdJagRequest<'_>,
    ) -> Result<GrantResponse, ExchangeError> {
        if request.claims.is_some() {
            return Err(ExchangeError::Grant(GrantProblem::IdJagClaims));
        }
        let resource = request
            .resource
            .ok_or(ExchangeError::Grant(GrantProblem::IdJagNeedsResource))?;
        let server = self
            .chain(http, resource, request.audience, request.resource_metadata)
            .await
            .map_err(|e| e.in_id_jag(IdJagStep::Discovery))?;
        let leg1 = GrantRequest {
            assertion: request.subject_token,
            scopes: request.scopes,
            claims: None,
            audience: Some(&server.issuer),
            resource: request.send_resource.then_some(resource),
        };
        let kind = GrantKind::TokenExchange;
        let id_jag = request_token(http, idp.endpoint, idp.auth, kind, &self.settings, &leg1)
            .await
            .and_then(id_jag_of)
            .map_err(|e| e.in_id_jag(IdJagStep::Assertion))?;
        let leg2 = GrantRequest {
            assertion: &id_jag,
            scopes: request.scopes,
            claims: None,
            audience: None,
            resource: Some(resource),
        };
        let endpoint = &server.token_endpoint;
        request_token(
            http,
            endpoint,
            &self.client_auth,
            GrantKind::IdJag,
            &self.settings,
            &leg2,
        )
        .await
        .map_err(|e| e.in_id_jag(IdJagStep::AccessToken))
    }

    /// The authorization server of `resource`: the service's (pinned, or the one the
    /// call's `audience` names when none is yet), which the resource must list, or the
    /// first listed, which is then pinned. `hint` is a metadata URL from a 401, read first.
    /// Discovered once for all the calls that need it; the doctor checks the chain with it
    /// too.
    pub async fn chain(
        &self,
        http: &Client,
        resource: &str,
        audience: Option<&str>,
        hint: Option<&str>,
    ) -> Result<AuthorizationServer, ExchangeError> {
        let pinned = self.pinned.get().map(String::as_str);
        if let (Some(pinned), Some(asked)) = (pinned, audience) {
            if asked != pinned {
                return Err(other_server(pinned, asked));
            }
        }
        let expected = pinned.or(audience);
        let key = chain_key(resource, expected, hint);
        let cell = self.chains.get_with(key.clone(), Arc::default);
        let server = cell
            .get_or_try_init(|| async {
                if let Some(error) = self.failures.get(&key) {
                    return Err(error);
                }
                let found = metadata::discover(http, resource, expected, hint).await;
                found.inspect_err(|error| self.failures.insert(key.clone(), error.clone()))
            })
            .await?;
        let pinned = self.pinned.get_or_init(|| server.issuer.clone());
        if *pinned != server.issuer {
            return Err(other_server(pinned, &server.issuer));
        }
        if expected.is_none() {
            // Later calls ask for the pinned server: they find this chain under its name.
            let known = || Arc::new(OnceCell::new_with(Some(server.clone())));
            self.chains
                .get_with(chain_key(resource, Some(pinned), hint), known);
        }
        Ok(server.clone())
    }
}

/// A chain's cache key: the resource, the authorization server asked for and the
/// metadata URL given, if any.
fn chain_key(resource: &str, expected: Option<&str>, hint: Option<&str>) -> String {
    let [expected, hint] = [expected, hint].map(Option::unwrap_or_default);
    format!("{resource}\u{1f}{expected}\u{1f}{hint}")
}

fn other_server(pinned: &str, other: &str) -> ExchangeError {
    ExchangeError::Grant(GrantProblem::IdJagOtherServer {
        pinned: pinned.to_owned(),
        other: other.to_owned(),
    })
}

/// The ID-JAG of a leg-1 answer, which must say it is one (RFC 8693 §2.2.1).
fn id_jag_of(response: GrantResponse) -> Result<String, ExchangeError> {
    match response.issued_token_type.as_deref() {
        Some(ID_JAG_TYPE) => Ok(response.access_token),
        _ => Err(ExchangeError::NotAnIdJag {
            issued: response.issued_token_type,
        }),
    }
}

#[cfg(test)]
#[path = "id_jag_tests.rs"]
mod tests;
