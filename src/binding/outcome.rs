//! What an exchange settles to on the JS side: LibreChat's token response, or the
//! error's fields carried by value (the wrapper throws them as `OboExchangeError`;
//! rich errors cannot cross a napi rejection).

use std::sync::Arc;

use napi::bindgen_prelude::FnArgs;
use napi::threadsafe_function::ThreadsafeFunction;
use napi::Status;
use napi_derive::napi;

use super::thrown::MAX_CAUSES;
use crate::cache::token::OboToken;
use crate::ground::error::{CauseLink, ExchangeError, FailureReason, INVALID_OPTION};

/// A settled token's fields, which the wrapper makes LibreChat's token response of
/// (`tokenResponse` in lib/front.js, the one place that shape is written, also for hits).
#[napi(object, object_from_js = false)]
pub struct NativeTokenResponse {
    #[napi(js_name = "access_token")]
    pub access_token: String,
    /// Seconds, as the IdP granted (normalized).
    #[napi(js_name = "expires_in")]
    pub expires_in: f64,
    /// Epoch milliseconds, stamped when the token was requested.
    #[napi(js_name = "expires_at")]
    pub expires_at: f64,
    /// The scopes that were requested.
    pub scope: String,
    /// RFC 8693's type of the issued token, when the IdP sent one.
    #[napi(js_name = "issued_token_type")]
    pub issued_token_type: Option<String>,
}

impl From<&OboToken> for NativeTokenResponse {
    fn from(token: &OboToken) -> Self {
        Self {
            access_token: token.access_token.clone(),
            expires_in: token.expires_in as f64,
            expires_at: token.expires_at as f64,
            scope: token.scope.clone(),
            issued_token_type: token.issued_token_type.clone(),
        }
    }
}

/// LibreChat's `oboFailureReason` of a failed exchange.
#[napi(string_enum = "snake_case")]
pub enum NativeOboFailureReason {
    ExchangeFailed,
    EmptyExchangeResponse,
}

impl From<FailureReason> for NativeOboFailureReason {
    fn from(reason: FailureReason) -> Self {
        match reason {
            FailureReason::ExchangeFailed => Self::ExchangeFailed,
            FailureReason::EmptyExchangeResponse => Self::EmptyExchangeResponse,
        }
    }
}

/// A failed exchange, carried by value; the wrapper throws it as an `Error`.
#[napi(object, object_from_js = false)]
pub struct NativeExchangeError {
    pub message: String,
    pub retryable: bool,
    pub obo_failure_reason: NativeOboFailureReason,
    pub status: Option<u32>,
    pub code: Option<String>,
    pub error: Option<String>,
    #[napi(js_name = "error_description")]
    pub error_description: Option<String>,
    #[napi(js_name = "error_codes")]
    pub error_codes: Option<Vec<i64>>,
    pub suberror: Option<String>,
    pub claims: Option<String>,
    #[napi(js_name = "trace_id")]
    pub trace_id: Option<String>,
    #[napi(js_name = "correlation_id")]
    pub correlation_id: Option<String>,
    /// `Bearer error="insufficient_claims"[, claims="<base64>"]` when the IdP asks for
    /// user interaction; relay it to the client.
    pub www_authenticate: Option<String>,
    /// The step of an ID-JAG exchange that failed: `discovery`, `leg1` or `leg2`.
    pub id_jag_step: Option<String>,
    /// What failed, where `code` covers several failures (`ExchangeError::kind`).
    pub kind: Option<String>,
    /// The option at fault, when the service's options are why the call failed.
    pub option: Option<String>,
    /// The causes, outermost first; the wrapper links them as the error's `cause`.
    pub causes: Vec<NativeErrorCause>,
}

/// One cause of a failed exchange (`CauseLink`).
#[napi(object, object_from_js = false)]
pub struct NativeErrorCause {
    pub message: String,
    pub code: Option<String>,
}

impl From<CauseLink> for NativeErrorCause {
    fn from(link: CauseLink) -> Self {
        Self {
            message: link.message,
            code: link.code.map(str::to_owned),
        }
    }
}

impl NativeExchangeError {
    /// A failure this side makes itself, with `code` and nothing from an IdP: no status,
    /// no IdP fields, no causes.
    pub fn local(code: &str, message: String, retryable: bool) -> Self {
        Self {
            message,
            retryable,
            obo_failure_reason: NativeOboFailureReason::ExchangeFailed,
            status: None,
            code: Some(code.to_owned()),
            error: None,
            error_description: None,
            error_codes: None,
            suberror: None,
            claims: None,
            trace_id: None,
            correlation_id: None,
            www_authenticate: None,
            id_jag_step: None,
            kind: None,
            option: None,
            causes: Vec::new(),
        }
    }

    /// A call this service cannot make because of how it was built: `option` says
    /// which option, and nothing was sent.
    pub fn invalid_option(option: &str, message: String) -> Self {
        Self {
            option: Some(option.to_owned()),
            ..Self::local(INVALID_OPTION, message, false)
        }
    }
}

impl From<&ExchangeError> for NativeExchangeError {
    fn from(error: &ExchangeError) -> Self {
        let body = error.idp_body().cloned().unwrap_or_default();
        Self {
            message: error.to_string(),
            retryable: error.is_retryable(),
            obo_failure_reason: error.failure_reason().into(),
            status: error.status().map(u32::from),
            code: error.code().map(str::to_owned),
            error: body.error,
            error_description: body.error_description,
            error_codes: body.error_codes,
            suberror: body.suberror,
            claims: body.claims,
            trace_id: body.trace_id,
            correlation_id: body.correlation_id,
            www_authenticate: error.www_authenticate(),
            id_jag_step: error.id_jag_step().map(|step| step.name().to_owned()),
            kind: error.kind().map(str::to_owned),
            option: None,
            causes: error
                .causes(MAX_CAUSES)
                .into_iter()
                .map(Into::into)
                .collect(),
        }
    }
}

/// The outcome of an exchange that went to the IdP: `token` (with its `tokenId`) or
/// `error`.
#[napi(object, object_from_js = false)]
pub struct NativeSettled {
    pub token: Option<NativeTokenResponse>,
    /// `OboToken::id`, under which the wrapper keeps the token's JS string.
    pub token_id: Option<f64>,
    pub error: Option<NativeExchangeError>,
}

impl From<std::result::Result<Arc<OboToken>, ExchangeError>> for NativeSettled {
    fn from(outcome: std::result::Result<Arc<OboToken>, ExchangeError>) -> Self {
        match outcome {
            Ok(token) => Self {
                token: Some(token.as_ref().into()),
                token_id: Some(token.id as f64),
                error: None,
            },
            Err(error) => Self {
                token: None,
                token_id: None,
                error: Some((&error).into()),
            },
        }
    }
}

/// The wrapper's `settle(callId, settled)`, one per service, through which every exchange
/// settles. A promise per call from napi (`spawn_future`) costs a threadsafe function
/// created and torn down per call, which on a miss served by the shared tier was more than
/// the Redis round trip itself; this one is made once. Weak as made: `settle::Channel` refs
/// it only while the service has calls pending.
pub type NativeSettleFn = ThreadsafeFunction<
    FnArgs<(f64, NativeSettled)>,
    (),
    FnArgs<(f64, NativeSettled)>,
    Status,
    false,
    true,
>;
