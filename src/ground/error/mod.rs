//! What can go wrong in an exchange, and how a caller should react to it.
//!
//! IdP error bodies are kept field by field (Entra's `error_codes`, `suberror` and
//! `claims` included) because the caller branches on them: `interaction_required`
//! with `claims` must be relayed to the client, `invalid_grant` means "sign in
//! again", a 503 means "try later". Nothing here ever holds a token or a secret.

use std::time::Duration;

use base64::prelude::{Engine, BASE64_STANDARD};

mod answer;
mod cause;
mod config;
mod id_jag;
mod idp_body;
mod metadata;
mod refused;
mod request;
mod scheduled;
mod ssrf;

/// The code of a call whose outcome could not be handed back to JS; the exchange may well
/// have succeeded (and cached its token), so calling again is the remedy (`binding::settle`).
pub const UNSETTLED: &str = "ERR_OBO_SETTLE";

pub use answer::AnswerProblem;
pub use cause::{Cause, CauseLink};
pub use config::{BuildError, ConfigError, INVALID_OPTION};
pub use id_jag::IdJagStep;
pub use idp_body::IdpErrorBody;
pub use metadata::MetadataProblem;
pub use refused::{AssertionProblem, GrantProblem, RefusedClaim};
pub use request::{RequestError, INVALID_ARG};
pub use scheduled::{ScheduledFailure, ScheduledReason, Stage};
pub use ssrf::{UrlRefusal, UrlRefused};

/// HTTP statuses that signal a transient condition worth one more try: the IdP's
/// answers here, and the session provider's and resolver's in `resolve`.
pub const TRANSIENT_STATUSES: [u16; 5] = [429, 500, 502, 503, 504];

/// Who answers a token request, as messages name it: the IdP unless an ID-JAG step
/// says otherwise (leg 2 goes to the MCP server's authorization server, see `IdJagStep`),
/// so that the operator looks for the refusal where it was made.
pub const IDENTITY_PROVIDER: &str = "the identity provider";

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

    /// What happened, naming `party`, the server the request went to.
    pub fn describe(self, party: &str) -> String {
        match self {
            Self::Timeout => "timed out".to_owned(),
            Self::Connect => format!("could not connect to {party}"),
            Self::Reset => format!("lost its connection to {party}"),
            Self::Other => "failed".to_owned(),
        }
    }

    /// Whether the request may succeed if sent again: not an `Other` failure, which
    /// is not a network condition (a bad URL, a TLS refusal).
    pub fn is_retryable(self) -> bool {
        self != Self::Other
    }
}

/// A failed exchange (or the discovery it needed).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ExchangeError {
    /// The token endpoint answered with an error status.
    #[error("{}", idp_message(*.status, .body, IDENTITY_PROVIDER))]
    Idp {
        status: u16,
        body: Box<IdpErrorBody>,
        retry_after: Option<Duration>,
    },
    /// The request did not get an HTTP answer. `detail` is the cause's chain on one
    /// line (the message); `cause` keeps it as a chain.
    #[error("{}", transport_message(*.kind, .detail, IDENTITY_PROVIDER))]
    Transport {
        kind: TransportKind,
        detail: String,
        #[source]
        cause: Option<Cause>,
    },
    /// The answer's status and headers arrived, its body did not in full (a reset, an
    /// early end, broken chunking): a transport failure that keeps what did arrive.
    #[error("{}", cut_short_message(*.kind, *.status, .detail, IDENTITY_PROVIDER))]
    CutShort {
        status: u16,
        kind: TransportKind,
        detail: String,
        retry_after: Option<Duration>,
        #[source]
        cause: Option<Cause>,
    },
    /// The answer held a token or a field this package refuses; nothing was kept.
    #[error("{0}")]
    Answer(AnswerProblem),
    /// The assertion was refused before the network (not a JWS, or expired).
    #[error("{0}")]
    Assertion(AssertionProblem),
    /// A success status without an access token: nothing may be cached.
    #[error("{}", empty_message(IDENTITY_PROVIDER))]
    EmptyResponse,
    /// A success status whose body is not a JSON object.
    #[error("{}", malformed_message(*.status, IDENTITY_PROVIDER))]
    MalformedResponse { status: u16 },
    /// The grant does not fit what the IdP advertises, or the call; nothing was sent.
    #[error("{0}")]
    Grant(GrantProblem),
    /// The client assertion for `private_key_jwt` could not be signed.
    #[error("Could not sign the client assertion: {0}")]
    ClientAssertion(String),
    /// The issuer's signing keys could not be fetched to verify the assertion;
    /// `retryable` as the document fetcher judged the failure. `cause` is what failed
    /// below HTTP, when that was it.
    #[error("Could not fetch the issuer's signing keys (JWKS) from {uri}: {detail}")]
    Jwks {
        uri: String,
        detail: String,
        retryable: bool,
        #[source]
        cause: Option<Cause>,
    },
    /// A step of an ID-JAG exchange failed; `inner` is what went wrong there, and
    /// answers for status, body, retry and code. Its message names the step's party.
    #[error("ID-JAG {step} failed: {}", .inner.message_from(step.party()))]
    IdJag {
        step: IdJagStep,
        #[source]
        inner: Box<ExchangeError>,
    },
    /// A metadata document (RFC 9728, RFC 8414) is missing, unreadable, or refused;
    /// `problem` says which, `detail` says it in words. `cause` is what failed below
    /// HTTP, when that was it.
    #[error("{detail} ({url})")]
    Metadata {
        url: String,
        problem: MetadataProblem,
        detail: String,
        retryable: bool,
        #[source]
        cause: Option<Cause>,
    },
    /// The IdP answered an ID-JAG request with another kind of token.
    #[error("The identity provider issued {} instead of an ID-JAG", .issued.as_deref().unwrap_or("a token without issued_token_type"))]
    NotAnIdJag { issued: Option<String> },
    /// A URL from an MCP server that the SSRF policy refused; nothing was sent to it.
    #[error("{0}")]
    UrlRefused(UrlRefused),
    /// A protected resource metadata document (RFC 9728) is at none of the URLs tried:
    /// all answered a client error. Unlike a refused document, this is what a server
    /// that publishes its metadata only in a 401's `resource_metadata` looks like.
    #[error("{detail} ({url})")]
    NoResourceMetadata { url: String, detail: String },
    /// The token endpoint could not be found through OpenID discovery. `cause` is what
    /// failed below HTTP, when that was it.
    #[error("OpenID discovery failed for {issuer}: {detail}")]
    Discovery {
        issuer: String,
        detail: String,
        retryable: bool,
        #[source]
        cause: Option<Cause>,
    },
}

fn idp_message(status: u16, body: &IdpErrorBody, party: &str) -> String {
    let mut message = format!(
        "{} rejected the OBO exchange (HTTP {status}",
        capitalized(party)
    );
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

fn transport_message(kind: TransportKind, detail: &str, party: &str) -> String {
    format!("The OBO token request {}: {detail}", kind.describe(party))
}

fn cut_short_message(kind: TransportKind, status: u16, detail: &str, party: &str) -> String {
    format!(
        "The OBO token request {} after it answered HTTP {status}, before the whole answer arrived: {detail}",
        kind.describe(party)
    )
}

fn empty_message(party: &str) -> String {
    format!(
        "{} returned no access token for the OBO exchange",
        capitalized(party)
    )
}

fn malformed_message(status: u16, party: &str) -> String {
    format!(
        "{} returned an unreadable token response (HTTP {status})",
        capitalized(party)
    )
}

/// `party` at the start of a sentence.
fn capitalized(party: &str) -> String {
    let mut chars = party.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

impl ExchangeError {
    /// The message, with `party` as the server that answered a token request (the
    /// variants that name one); the others read as `to_string`.
    pub fn message_from(&self, party: &str) -> String {
        match self {
            Self::Idp { status, body, .. } => idp_message(*status, body, party),
            Self::Transport { kind, detail, .. } => transport_message(*kind, detail, party),
            Self::CutShort {
                kind,
                status,
                detail,
                ..
            } => cut_short_message(*kind, *status, detail, party),
            Self::EmptyResponse => empty_message(party),
            Self::MalformedResponse { status } => malformed_message(*status, party),
            other => other.to_string(),
        }
    }

    /// Whether the same request may succeed later: transient statuses, an explicit
    /// `temporarily_unavailable`, and transport failures; never a permanent answer
    /// such as `invalid_grant` or `interaction_required`.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Idp { status, body, .. } => {
                TRANSIENT_STATUSES.contains(status)
                    || body.error.as_deref() == Some("temporarily_unavailable")
            }
            Self::Transport { kind, .. } | Self::CutShort { kind, .. } => kind.is_retryable(),
            Self::Discovery { retryable, .. }
            | Self::Metadata { retryable, .. }
            | Self::Jwks { retryable, .. } => *retryable,
            Self::IdJag { inner, .. } => inner.is_retryable(),
            Self::Assertion(_)
            | Self::NotAnIdJag { .. }
            | Self::Grant(_)
            | Self::UrlRefused(_)
            | Self::Answer(_)
            | Self::NoResourceMetadata { .. }
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
            Self::Idp { status, .. }
            | Self::CutShort { status, .. }
            | Self::MalformedResponse { status } => Some(*status),
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
            Self::Idp { retry_after, .. } | Self::CutShort { retry_after, .. } => *retry_after,
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

    /// A Node-style error code for transport failures, refused assertions or answers,
    /// and requests that were not sent.
    pub fn code(&self) -> Option<&'static str> {
        match self {
            Self::Transport { kind, .. } | Self::CutShort { kind, .. } => kind.code(),
            Self::Answer(problem) => Some(problem.code()),
            Self::Assertion(problem) => Some(problem.code()),
            Self::Grant(problem) => Some(problem.code()),
            Self::ClientAssertion(_) => Some("ERR_CLIENT_ASSERTION"),
            Self::Jwks { .. } => Some("ERR_JWKS_UNAVAILABLE"),
            Self::Metadata { .. } => Some("ERR_ID_JAG_METADATA"),
            Self::NoResourceMetadata { .. } => Some("ERR_ID_JAG_NO_RESOURCE_METADATA"),
            Self::Discovery { .. } => Some("ERR_IDP_DISCOVERY"),
            Self::NotAnIdJag { .. } => Some("ERR_NOT_AN_ID_JAG"),
            Self::UrlRefused(refused) => Some(refused.code()),
            Self::IdJag { inner, .. } => inner.code(),
            Self::Idp { .. } | Self::EmptyResponse | Self::MalformedResponse { .. } => None,
        }
    }
}

impl ExchangeError {
    /// A transport failure met while the body of an answer with `status` arrived, which
    /// keeps the status and `Retry-After` of the head that did arrive; other errors pass.
    pub fn after_head(self, status: u16, retry_after: Option<Duration>) -> Self {
        match self {
            Self::Transport {
                kind,
                detail,
                cause,
            } => Self::CutShort {
                status,
                kind,
                detail,
                retry_after,
                cause,
            },
            other => other,
        }
    }

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

    /// What failed, for a code that covers several failures (`ERR_ID_JAG_METADATA`'s
    /// `MetadataProblem`), so that callers switch on it rather than on the message.
    pub fn kind(&self) -> Option<&'static str> {
        match self {
            Self::Metadata { problem, .. } => Some(problem.name()),
            Self::Assertion(problem) => problem.kind(),
            Self::IdJag { inner, .. } => inner.kind(),
            _ => None,
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
mod tests;

#[cfg(test)]
#[path = "fields_tests.rs"]
mod fields_tests;
