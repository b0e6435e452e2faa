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
//! Which authorization server a resource leads to is `chains.rs`'s. How the client
//! authenticates there is checked against that server's metadata before leg 1
//! (`ServerClientAuth`), so a method it does not take costs no ID-JAG.

use reqwest::Client;
use url::Url;

use super::chains::Chains;
use super::client_auth::{ClientAuth, ServerClientAuth};
use super::grant::{
    request_token, GrantKind, GrantRequest, GrantResponse, TokenExchangeSettings, ID_JAG_TYPE,
};
use super::metadata::AuthorizationServer;
use super::ssrf::Guard;
use crate::ground::error::{ExchangeError, GrantProblem, IdJagStep};

/// The ID-JAG side of a service: the client's registration at the MCP authorization
/// server, and the chains discovered so far.
pub struct IdJag {
    client_auth: ServerClientAuth,
    settings: TokenExchangeSettings,
    chains: Chains,
    /// The SSRF policy for every URL discovery finds (`ssrf`).
    guard: Guard,
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
        client_auth: ServerClientAuth,
        issuer: Option<String>,
        subject_token_type: String,
        guard: Guard,
    ) -> Self {
        Self {
            client_auth,
            settings: TokenExchangeSettings {
                subject_token_type,
                requested_token_type: Some(ID_JAG_TYPE.to_owned()),
            },
            chains: Chains::new(issuer),
            guard,
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
        let (server, client_auth) = self
            .route(http, resource, request.audience, request.resource_metadata)
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
        let to_server = self.guard.token_client(&server.issuer, endpoint);
        let to_server = to_server
            .await
            .map_err(|e| e.in_id_jag(IdJagStep::AccessToken))?;
        request_token(
            to_server,
            endpoint,
            &client_auth,
            GrantKind::IdJag,
            &self.settings,
            &leg2,
        )
        .await
        .map_err(|e| e.in_id_jag(IdJagStep::AccessToken))
    }

    /// The authorization server of `resource` (see `Chains::server`), once it is known
    /// to take this client's authentication; the doctor checks the chain with it too.
    pub async fn chain(
        &self,
        http: &Client,
        resource: &str,
        audience: Option<&str>,
        hint: Option<&str>,
    ) -> Result<AuthorizationServer, ExchangeError> {
        let (server, _) = self.route(http, resource, audience, hint).await?;
        Ok(server)
    }

    /// The authorization server of `resource`, and the credential leg 2 presents there.
    async fn route(
        &self,
        http: &Client,
        resource: &str,
        audience: Option<&str>,
        hint: Option<&str>,
    ) -> Result<(AuthorizationServer, ClientAuth), ExchangeError> {
        let server = self
            .chains
            .server(http, &self.guard, resource, audience, hint)
            .await?;
        let client_auth = self
            .client_auth
            .for_server(server.auth_methods.as_deref())
            .map_err(ExchangeError::Grant)?;
        Ok((server, client_auth))
    }
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
