//! What can go wrong in an exchange, and how a caller should react to it.
//!
//! IdP error bodies are kept field by field (Entra's `error_codes`, `suberror` and
//! `claims` included) because the caller branches on them: `interaction_required`
//! with `claims` must be relayed to the client, `invalid_grant` means "sign in
//! again", a 503 means "try later". Nothing here ever holds a token or a secret.

use std::time::Duration;

use base64::prelude::{Engine, BASE64_STANDARD};

mod config;
mod id_jag;
mod idp_body;
mod refused;
mod request;
mod scheduled;

pub use config::{BuildError, ConfigError};
pub use id_jag::IdJagStep;
pub use idp_body::IdpErrorBody;
pub use refused::{AssertionProblem, GrantProblem};
pub use request::RequestError;
pub use scheduled::{ScheduledFailure, ScheduledReason, Stage};

/// HTTP statuses that signal a transient condition worth one more try: the IdP's
/// answers here, and the session provider's and resolver's in `resolve`.
pub const TRANSIENT_STATUSES: [u16; 5] = [429, 500, 502, 503, 504];

/// LibreChat's `oboFailureReason`: an empty answer is told apart from every other
/// failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureReason {
    ExchangeFailed,
    EmptyExchangeResponse,
}

/// How a request failed below HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    Timeout,
    Connect,
    Reset,
    Other,
}

impl TransportKind {
    /// The Node-style error code, which LibreChat's classifier also reads.
    pub fn code(self) -> Option<&'static str> {
        match self {
            Self::Timeout => Some("ETIMEDOUT"),
            Self::Connect => Some("ECONNREFUSED"),
            Self::Reset => Some("ECONNRESET"),
            Self::Other => None,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::Timeout => "timed out",
            Self::Connect => "could not connect to the identity provider",
            Self::Reset => "lost its connection to the identity provider",
            Self::Other => "failed",
        }
    }
}

/// A failed exchange (or the discovery it needed).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ExchangeError {
    /// The token endpoint answered with an error status.
    #[error("{}", idp_message(*.status, .body))]
    Idp {
        status: u16,
        body: Box<IdpErrorBody>,
        retry_after: Option<Duration>,
    },
    /// The request did not get an HTTP answer.
    #[error("The OBO token request {}: {detail}", .kind.describe())]
    Transport { kind: TransportKind, detail: String },
    /// The assertion was refused before the network (not a JWS, or expired).
    #[error("{0}")]
    Assertion(AssertionProblem),
    /// A success status without an access token: nothing may be cached.
    #[error("The identity provider returned no access token for the OBO exchange")]
    EmptyResponse,
    /// A success status whose body is not a JSON object.
    #[error("The identity provider returned an unreadable token response (HTTP {status})")]
    MalformedResponse { status: u16 },
    /// The grant does not fit what the IdP advertises, or the call; nothing was sent.
    #[error("{0}")]
    Grant(GrantProblem),
    /// The client assertion for `private_key_jwt` could not be signed.
    #[error("Could not sign the client assertion: {0}")]
    ClientAssertion(String),
    /// The issuer's signing keys could not be fetched to verify the assertion.
    #[error("Could not fetch the issuer's signing keys (JWKS) from {uri}: {detail}")]
    Jwks { uri: String, detail: String },
    /// A step of an ID-JAG exchange failed; `inner` is what went wrong there, and
    /// answers for status, body, retry and code.
    #[error("ID-JAG {step} failed: {inner}")]
    IdJag {
        step: IdJagStep,
        inner: Box<ExchangeError>,
    },
    /// A metadata document (RFC 9728, RFC 8414) is missing, unreadable, or refused.
    #[error("{detail} ({url})")]
    Metadata {
        url: String,
        detail: String,
        retryable: bool,
    },
    /// The IdP answered an ID-JAG request with another kind of token.
    #[error("The identity provider issued {} instead of an ID-JAG", .issued.as_deref().unwrap_or("a token without issued_token_type"))]
    NotAnIdJag { issued: Option<String> },
    /// The token endpoint could not be found through OpenID discovery.
    #[error("OpenID discovery failed for {issuer}: {detail}")]
    Discovery {
        issuer: String,
        detail: String,
        retryable: bool,
    },
}

fn idp_message(status: u16, body: &IdpErrorBody) -> String {
    let mut message = format!("The identity provider rejected the OBO exchange (HTTP {status}");
    if let Some(error) = &body.error {
        message.push_str(", ");
        message.push_str(error);
    }
    message.push(')');
    if let Some(description) = &body.error_description {
        message.push_str(": ");
        message.push_str(description.lines().next().unwrap_or_default().trim());
    }
    message
}

impl ExchangeError {
    /// Whether the same request may succeed later: transient statuses, an explicit
    /// `temporarily_unavailable`, and transport failures; never a permanent answer
    /// such as `invalid_grant` or `interaction_required`.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Idp { status, body, .. } => {
                TRANSIENT_STATUSES.contains(status)
                    || body.error.as_deref() == Some("temporarily_unavailable")
            }
            Self::Transport { kind, .. } => *kind != TransportKind::Other,
            Self::Discovery { retryable, .. } | Self::Metadata { retryable, .. } => *retryable,
            Self::Jwks { .. } => true,
            Self::IdJag { inner, .. } => inner.is_retryable(),
            Self::Assertion(_)
            | Self::NotAnIdJag { .. }
            | Self::Grant(_)
            | Self::ClientAssertion(_)
            | Self::EmptyResponse
            | Self::MalformedResponse { .. } => false,
        }
    }

    /// LibreChat's `oboFailureReason` tag.
    pub fn failure_reason(&self) -> FailureReason {
        match self {
            Self::EmptyResponse => FailureReason::EmptyExchangeResponse,
            Self::IdJag { inner, .. } => inner.failure_reason(),
            _ => FailureReason::ExchangeFailed,
        }
    }

    /// The HTTP status the IdP answered with, when it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Idp { status, .. } | Self::MalformedResponse { status } => Some(*status),
            Self::IdJag { inner, .. } => inner.status(),
            _ => None,
        }
    }

    /// The IdP's error body, when there is one.
    pub fn idp_body(&self) -> Option<&IdpErrorBody> {
        match self {
            Self::Idp { body, .. } => Some(body),
            Self::IdJag { inner, .. } => inner.idp_body(),
            _ => None,
        }
    }

    /// How long the IdP asked us to wait before trying again.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Idp { retry_after, .. } => *retry_after,
            Self::IdJag { inner, .. } => inner.retry_after(),
            _ => None,
        }
    }

    /// A ready `WWW-Authenticate` value for an MCP-facing server to relay when the IdP
    /// asks for user interaction (Conditional Access `interaction_required`, or missing
    /// consent): `Bearer error="insufficient_claims"`, with the IdP's claims challenge
    /// base64-encoded when it sent one (Entra's claims-challenge convention).
    pub fn www_authenticate(&self) -> Option<String> {
        let body = self.idp_body()?;
        let asks_for_interaction = body.error.as_deref() == Some("interaction_required")
            || body.error.as_deref() == Some("consent_required")
            || body.suberror.as_deref() == Some("consent_required");
        if !asks_for_interaction {
            return None;
        }
        let mut value = String::from(r#"Bearer error="insufficient_claims""#);
        if let Some(claims) = &body.claims {
            value.push_str(r#", claims=""#);
            value.push_str(&BASE64_STANDARD.encode(claims));
            value.push('"');
        }
        Some(value)
    }

    /// A Node-style error code for transport failures, refused assertions, and
    /// requests that were not sent.
    pub fn code(&self) -> Option<&'static str> {
        match self {
            Self::Transport { kind, .. } => kind.code(),
            Self::Assertion(problem) => Some(problem.code()),
            Self::Grant(problem) => Some(problem.code()),
            Self::ClientAssertion(_) => Some("ERR_CLIENT_ASSERTION"),
            Self::Jwks { .. } => Some("ERR_JWKS_UNAVAILABLE"),
            Self::Metadata { .. } => Some("ERR_ID_JAG_METADATA"),
            Self::NotAnIdJag { .. } => Some("ERR_NOT_AN_ID_JAG"),
            Self::IdJag { inner, .. } => inner.code(),
            _ => None,
        }
    }
}

impl ExchangeError {
    /// Marks an error as one of `step` (an error already marked keeps its step).
    pub fn in_id_jag(self, step: IdJagStep) -> Self {
        match self {
            Self::IdJag { .. } => self,
            inner => Self::IdJag {
                step,
                inner: Box::new(inner),
            },
        }
    }

    /// The ID-JAG step that failed, for an ID-JAG exchange.
    pub fn id_jag_step(&self) -> Option<IdJagStep> {
        match self {
            Self::IdJag { step, .. } => Some(*step),
            _ => None,
        }
    }
}

/// An error and its causes on one line, for messages about failures below HTTP.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENTRA_MFA: &str = r#"{"error":"interaction_required",
        "error_description":"AADSTS50076: Due to a configuration change you must use MFA.\r\nTrace ID: t\r\nCorrelation ID: c",
        "error_codes":[50076],"suberror":"basic_action","trace_id":"t","correlation_id":"c",
        "claims":"{\"access_token\":{\"capolids\":{\"essential\":true,\"values\":[\"p1\"]}}}"}"#;

    fn idp(status: u16, body: &str) -> ExchangeError {
        ExchangeError::Idp {
            status,
            body: Box::new(IdpErrorBody::parse(body.as_bytes())),
            retry_after: None,
        }
    }

    #[test]
    fn entra_body_is_read_field_by_field() {
        let body = IdpErrorBody::parse(ENTRA_MFA.as_bytes());
        assert_eq!(body.error.as_deref(), Some("interaction_required"));
        assert_eq!(body.error_codes, Some(vec![50076]));
        assert_eq!(body.suberror.as_deref(), Some("basic_action"));
        assert!(body.claims.unwrap().contains("capolids"));
        assert_eq!(body.trace_id.as_deref(), Some("t"));
    }

    #[test]
    fn odd_bodies_do_not_fail_parsing() {
        assert_eq!(
            IdpErrorBody::parse(b"<html>502</html>"),
            IdpErrorBody::default()
        );
        let body = IdpErrorBody::parse(br#"{"error":7,"error_codes":"x","suberror":"s"}"#);
        assert_eq!(body.error, None);
        assert_eq!(body.error_codes, None);
        assert_eq!(body.suberror.as_deref(), Some("s"));
    }

    #[test]
    fn message_keeps_the_first_line_of_the_description() {
        let message = idp(400, ENTRA_MFA).to_string();
        assert_eq!(
            message,
            "The identity provider rejected the OBO exchange (HTTP 400, interaction_required): \
             AADSTS50076: Due to a configuration change you must use MFA."
        );
    }

    #[test]
    fn retryable_classification() {
        for status in [429, 500, 502, 503, 504] {
            assert!(idp(status, "{}").is_retryable(), "{status}");
        }
        for status in [400, 401, 403, 404, 501] {
            assert!(!idp(status, "{}").is_retryable(), "{status}");
        }
        assert!(idp(400, r#"{"error":"temporarily_unavailable"}"#).is_retryable());
        assert!(!idp(400, ENTRA_MFA).is_retryable());
        let transport = |kind| ExchangeError::Transport {
            kind,
            detail: String::new(),
        };
        assert!(transport(TransportKind::Timeout).is_retryable());
        assert!(transport(TransportKind::Reset).is_retryable());
        assert!(transport(TransportKind::Connect).is_retryable());
        assert!(!transport(TransportKind::Other).is_retryable());
        assert!(!ExchangeError::EmptyResponse.is_retryable());
        assert_eq!(
            ExchangeError::EmptyResponse.failure_reason(),
            FailureReason::EmptyExchangeResponse
        );
    }

    #[test]
    fn interaction_answers_carry_a_claims_challenge() {
        let mfa = idp(400, ENTRA_MFA).www_authenticate().unwrap();
        let encoded = mfa
            .strip_prefix(r#"Bearer error="insufficient_claims", claims=""#)
            .and_then(|rest| rest.strip_suffix('"'))
            .unwrap();
        let decoded = BASE64_STANDARD.decode(encoded).unwrap();
        assert!(String::from_utf8(decoded).unwrap().contains("capolids"));
        let consent = idp(
            400,
            r#"{"error":"invalid_grant","suberror":"consent_required"}"#,
        );
        assert_eq!(
            consent.www_authenticate().as_deref(),
            Some(r#"Bearer error="insufficient_claims""#)
        );
        assert_eq!(
            idp(400, r#"{"error":"invalid_grant"}"#).www_authenticate(),
            None
        );
        assert_eq!(ExchangeError::EmptyResponse.www_authenticate(), None);
    }

    #[test]
    fn an_id_jag_step_wraps_once_and_answers_with_its_cause() {
        let cause = idp(429, r#"{"error":"slow_down"}"#);
        let wrapped = cause.clone().in_id_jag(IdJagStep::AccessToken);
        let again = wrapped.clone().in_id_jag(IdJagStep::Assertion);
        assert_eq!(again.id_jag_step(), Some(IdJagStep::AccessToken));
        assert_eq!(cause.id_jag_step(), None);
        assert!(wrapped.is_retryable());
        assert_eq!(wrapped.status(), Some(429));
        assert_eq!(
            wrapped.idp_body().unwrap().error.as_deref(),
            Some("slow_down")
        );
        assert_eq!(
            wrapped.to_string(),
            format!(
                "ID-JAG leg 2 (jwt-bearer grant at the MCP authorization server) failed: {cause}"
            )
        );
        let empty = ExchangeError::EmptyResponse.in_id_jag(IdJagStep::AccessToken);
        assert_eq!(empty.failure_reason(), FailureReason::EmptyExchangeResponse);
        let timeout = ExchangeError::Transport {
            kind: TransportKind::Timeout,
            detail: String::new(),
        };
        assert_eq!(
            timeout.in_id_jag(IdJagStep::Assertion).code(),
            Some("ETIMEDOUT")
        );
        let throttled = ExchangeError::Idp {
            status: 429,
            body: Box::default(),
            retry_after: Some(Duration::from_secs(3)),
        };
        let throttled = throttled.in_id_jag(IdJagStep::Assertion);
        assert_eq!(throttled.retry_after(), Some(Duration::from_secs(3)));
        let mfa = idp(400, ENTRA_MFA).in_id_jag(IdJagStep::Assertion);
        assert!(mfa.www_authenticate().is_some());
        assert_eq!(
            [
                IdJagStep::Discovery,
                IdJagStep::Assertion,
                IdJagStep::AccessToken
            ]
            .map(IdJagStep::name),
            ["discovery", "leg1", "leg2"]
        );
    }

    #[test]
    fn echoed_secrets_are_redacted() {
        let mut body = IdpErrorBody::parse(
            br#"{"error":"invalid_grant","error_description":"bad assertion eyJhbGciOi.payload.sig"}"#,
        );
        body.redact(&["eyJhbGciOi.payload.sig", "short"]);
        assert_eq!(
            body.error_description.as_deref(),
            Some("bad assertion [redacted]")
        );
    }
}
