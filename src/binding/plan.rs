//! `NativePlan`: the token endpoint and grant the next exchange would use, for
//! `librechat-obo doctor`.

use napi_derive::napi;

use super::outcome::NativeExchangeError;
use crate::broker::Plan;
use crate::ground::error::{ExchangeError, GrantProblem};
use crate::protocol::grant::GrantKind;
use crate::protocol::metadata::AuthorizationServer;

/// A grant this package sends, by its `grantType` option value.
#[napi(string_enum = "snake_case")]
pub enum NativeGrant {
    JwtBearer,
    TokenExchange,
    IdJag,
}

impl From<GrantKind> for NativeGrant {
    fn from(kind: GrantKind) -> Self {
        match kind {
            GrantKind::OnBehalfOf => Self::JwtBearer,
            GrantKind::TokenExchange => Self::TokenExchange,
            GrantKind::IdJag => Self::IdJag,
        }
    }
}

/// The MCP authorization server an ID-JAG service would use for a resource.
#[napi(object, object_from_js = false)]
pub struct NativeIdJagChain {
    pub issuer: String,
    pub token_endpoint: String,
}

impl From<AuthorizationServer> for NativeIdJagChain {
    fn from(server: AuthorizationServer) -> Self {
        Self {
            issuer: server.issuer,
            token_endpoint: server.token_endpoint.to_string(),
        }
    }
}

/// `idJagChain`'s answer: the chain, or why there is none, carried by value (a napi
/// rejection would carry only a message); the wrapper throws the error.
#[napi(object, object_from_js = false)]
pub struct NativeChainOutcome {
    pub chain: Option<NativeIdJagChain>,
    pub error: Option<NativeExchangeError>,
}

impl From<Result<AuthorizationServer, ExchangeError>> for NativeChainOutcome {
    fn from(found: Result<AuthorizationServer, ExchangeError>) -> Self {
        let (chain, error) = by_value(found);
        Self { chain, error }
    }
}

/// `plan`'s answer: the plan, or the discovery failure that prevents one, by value.
#[napi(object, object_from_js = false)]
pub struct NativePlanOutcome {
    pub plan: Option<NativePlan>,
    pub error: Option<NativeExchangeError>,
}

impl From<Result<Plan, ExchangeError>> for NativePlanOutcome {
    fn from(planned: Result<Plan, ExchangeError>) -> Self {
        let (plan, error) = by_value(planned);
        Self { plan, error }
    }
}

/// An outcome as the two fields of a napi object carry it by value: the value, or the
/// error, never both.
fn by_value<T, V: From<T>>(
    outcome: Result<T, ExchangeError>,
) -> (Option<V>, Option<NativeExchangeError>) {
    match outcome {
        Ok(value) => (Some(value.into()), None),
        Err(error) => (None, Some((&error).into())),
    }
}

/// What the next exchange would send. `grant` is the grant chosen, or the one named
/// by `grantType` that cannot be sent; `refused` says why none can be sent.
#[napi(object, object_from_js = false)]
pub struct NativePlan {
    pub token_endpoint: String,
    pub grant: Option<NativeGrant>,
    /// The grant's URN (the `grant_type` parameter).
    pub grant_urn: Option<String>,
    /// The discovery document's list; absent when it has none, or when the token
    /// endpoint is configured.
    pub grant_types_supported: Option<Vec<String>>,
    /// Why that grant: for `auto`, what the IdP advertises that decided it.
    pub grant_reason: String,
    /// The discovery document read; absent when the service does not discover.
    pub discovery_document: Option<String>,
    /// The issuer the document names, as accepted (exactly, or by Entra's exception).
    pub discovered_issuer: Option<String>,
    pub refused: Option<NativeExchangeError>,
}

impl From<Plan> for NativePlan {
    fn from(plan: Plan) -> Self {
        let named = match &plan.grant {
            Ok(kind) => Some(*kind),
            Err(GrantProblem::NotAdvertised { wanted, .. }) => [
                GrantKind::OnBehalfOf,
                GrantKind::TokenExchange,
                GrantKind::IdJag,
            ]
            .into_iter()
            .find(|kind| kind.option_name() == *wanted),
            Err(_) => None,
        };
        Self {
            token_endpoint: plan.token_endpoint.to_string(),
            grant: named.map(Into::into),
            grant_urn: named.map(|kind| kind.urn().to_owned()),
            grant_types_supported: plan.grant_types_supported,
            grant_reason: plan.grant_reason.to_owned(),
            discovery_document: plan.discovered.as_ref().map(|d| d.document.to_string()),
            discovered_issuer: plan.discovered.as_ref().map(|d| d.issuer.describe()),
            refused: plan
                .grant
                .err()
                .map(|problem| (&ExchangeError::Grant(problem)).into()),
        }
    }
}
