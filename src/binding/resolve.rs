//! LibreChat's `resolveOboToken` rules for the JS wrapper: whether an upstream token
//! set is usable, the expiry stamp of a resolver's answer, and the failure a
//! rejection maps to.

use napi::bindgen_prelude::*;
use napi_derive::napi;

use super::thrown;
use crate::ground::expiry;
use crate::resolve::{
    self, ErrorFacts, Failure, Reason, ResolverAnswer, Stamp, UpstreamField, UpstreamTokens,
};

/// A token set from the session provider or the user's snapshot (wrapper-sanitized).
#[napi(object, object_to_js = false)]
pub struct NativeUpstreamTokens {
    #[napi(js_name = "access_token")]
    pub access_token: Option<String>,
    /// Epoch seconds.
    #[napi(js_name = "expires_at")]
    pub expires_at: Option<f64>,
}

impl From<NativeUpstreamTokens> for UpstreamTokens {
    fn from(t: NativeUpstreamTokens) -> Self {
        Self {
            access_token: t.access_token,
            expires_at_secs: t.expires_at,
        }
    }
}

/// What a resolver answered, without the token itself.
#[napi(object, object_to_js = false)]
pub struct NativeResolverAnswer {
    pub has_access_token: bool,
    pub expires_in: Option<Either<f64, String>>,
    /// Epoch milliseconds.
    pub expires_at: Option<f64>,
}

impl From<NativeResolverAnswer> for ResolverAnswer {
    fn from(answer: NativeResolverAnswer) -> Self {
        let expires_in = answer.expires_in.map(|value| match value {
            Either::A(number) => {
                serde_json::Number::from_f64(number).map_or(serde_json::Value::Null, Into::into)
            }
            Either::B(text) => serde_json::Value::String(text),
        });
        Self {
            has_access_token: answer.has_access_token,
            expires_in,
            expires_at_ms: answer.expires_at,
        }
    }
}

/// What can be read off a thrown value (wrapper-sanitized).
#[napi(object, object_to_js = false)]
pub struct NativeErrorFacts {
    pub retryable: Option<bool>,
    pub status: Option<f64>,
    pub code: Option<String>,
    pub message: Option<String>,
    pub obo_failure_reason: Option<String>,
}

impl From<NativeErrorFacts> for ErrorFacts {
    fn from(facts: NativeErrorFacts) -> Self {
        Self {
            retryable: facts.retryable,
            status: facts.status,
            code: facts.code,
            message: facts.message,
            obo_failure_reason: facts.obo_failure_reason,
        }
    }
}

/// LibreChat's `OboTokenResolutionReason`.
#[napi(string_enum = "snake_case")]
pub enum NativeResolutionReason {
    MissingUpstreamProvider,
    SessionRefreshFailed,
    MissingUpstreamToken,
    MissingUpstreamAccessToken,
    MissingUpstreamIdToken,
    MissingUpstreamRefreshToken,
    EmptyExchangeResponse,
    ExchangeFailed,
}

/// An `OboTokenResolutionError` to be: LibreChat's reason, flag and sentence.
#[napi(object, object_from_js = false)]
pub struct NativeResolutionFailure {
    pub reason: NativeResolutionReason,
    pub retryable: bool,
    pub user_message: String,
}

impl From<Reason> for NativeResolutionReason {
    fn from(reason: Reason) -> Self {
        match reason {
            Reason::MissingUpstreamProvider => Self::MissingUpstreamProvider,
            Reason::SessionRefreshFailed => Self::SessionRefreshFailed,
            Reason::MissingUpstreamToken => Self::MissingUpstreamToken,
            Reason::MissingUpstreamAccessToken => Self::MissingUpstreamAccessToken,
            Reason::MissingUpstreamIdToken => Self::MissingUpstreamIdToken,
            Reason::MissingUpstreamRefreshToken => Self::MissingUpstreamRefreshToken,
            Reason::EmptyExchangeResponse => Self::EmptyExchangeResponse,
            Reason::ExchangeFailed => Self::ExchangeFailed,
        }
    }
}

impl From<Failure> for NativeResolutionFailure {
    fn from(failure: Failure) -> Self {
        Self {
            reason: failure.reason().into(),
            retryable: failure.retryable(),
            user_message: failure.user_message().to_owned(),
        }
    }
}

/// Either the expiry stamp of a usable answer, or why it is not usable.
#[napi(object, object_from_js = false)]
pub struct NativeResolutionStamp {
    pub obtained_at: Option<f64>,
    pub expires_at: Option<f64>,
    pub failure: Option<NativeResolutionFailure>,
}

/// Which rejection is classified: the session provider's or the resolver's.
#[napi(string_enum = "lowercase")]
pub enum NativeResolutionStage {
    Session,
    Exchange,
}

/// `null` when the upstream token set is usable for an exchange, else the failure.
/// `field` names the token that `tokens.access_token` holds (`access_token` when
/// omitted; an ID-JAG service's `id_token` or `refresh_token`).
#[napi]
pub fn check_upstream_tokens(
    env: &Env,
    tokens: Option<NativeUpstreamTokens>,
    field: Option<String>,
) -> Result<Option<NativeResolutionFailure>> {
    let field = match field.as_deref() {
        None => UpstreamField::Access,
        Some(name) => UpstreamField::parse(name).ok_or_else(|| {
            thrown::invalid_arg(
                env,
                "field",
                format!(
                    "field must be 'access_token', 'id_token' or 'refresh_token', got '{name}'"
                ),
            )
        })?,
    };
    let tokens = tokens.map(UpstreamTokens::from);
    Ok(
        resolve::upstream_assertion(tokens.as_ref(), field, expiry::now_ms())
            .err()
            .map(Into::into),
    )
}

impl From<std::result::Result<Stamp, Failure>> for NativeResolutionStamp {
    fn from(result: std::result::Result<Stamp, Failure>) -> Self {
        match result {
            Ok(stamp) => Self {
                obtained_at: Some(stamp.obtained_at_ms as f64),
                expires_at: Some(stamp.expires_at_ms),
                failure: None,
            },
            Err(failure) => Self {
                obtained_at: None,
                expires_at: None,
                failure: Some(failure.into()),
            },
        }
    }
}

/// Stamps a resolver's answer with LibreChat's expiry rules, or says why it is unusable.
#[napi]
pub fn finish_resolution(answer: NativeResolverAnswer) -> NativeResolutionStamp {
    resolve::finish(answer.into(), expiry::now_ms()).into()
}

/// Stamps a provider answer tagged `scheduledObo: true` (already the downstream token,
/// handed on as it is), or says why it is unusable.
#[napi]
pub fn finish_scheduled_grant(tokens: NativeUpstreamTokens) -> NativeResolutionStamp {
    resolve::scheduled_grant(&tokens.into(), expiry::now_ms()).into()
}

/// The failure of a call made without a session provider.
#[napi]
pub fn missing_upstream_provider() -> NativeResolutionFailure {
    Failure::MissingUpstreamProvider.into()
}

/// Maps a rejection of the session provider or of the resolver to LibreChat's failure.
#[napi]
pub fn classify_resolution_failure(
    stage: NativeResolutionStage,
    facts: NativeErrorFacts,
) -> NativeResolutionFailure {
    let facts = facts.into();
    match stage {
        NativeResolutionStage::Session => resolve::session_failure(&facts),
        NativeResolutionStage::Exchange => resolve::exchange_failure(&facts),
    }
    .into()
}
