//! The decisions of LibreChat's `resolveOboToken` (packages/api/src/mcp/oauth/obo.ts):
//! is the user's upstream token usable, is the resolver's answer (or a scheduled-chat
//! grant's downstream token) usable, and which failure reason, retry flag and user
//! message a failure maps to.
//!
//! The JavaScript wrapper calls the session provider and the resolver (both may be JS
//! functions) and asks this module what their results mean; the messages are
//! LibreChat's, word for word, because the UI and its tests match them.

use std::time::Duration;

use crate::ground::error::TRANSIENT_STATUSES;
use crate::ground::expiry;
use crate::ground::redact::redacted_debug;

/// The in-transit margin LibreChat applies to both the upstream and the OBO token.
pub const BUFFER: Duration = Duration::from_secs(30);

/// Node error codes LibreChat's classifier calls transient (ECONNREFUSED added: the
/// request never reached the server, so trying again is safe).
const TRANSIENT_CODES: [&str; 5] = [
    "ETIMEDOUT",
    "ECONNRESET",
    "EAI_AGAIN",
    "ENOTFOUND",
    "ECONNREFUSED",
];
/// Message fragments LibreChat's classifier calls transient.
const TRANSIENT_WORDS: [&str; 7] = [
    "timed out",
    "timeout",
    "econnreset",
    "socket hang up",
    "temporarily unavailable",
    "too many requests",
    "service unavailable",
];

/// Why `resolveOboToken` failed, with the information that picks its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No session provider was given (LibreChat's connection factory refuses such an
    /// OBO connection before it resolves anything).
    MissingUpstreamProvider,
    /// The session provider rejected (its refresh failed).
    SessionRefresh { retryable: bool },
    /// No upstream token set, or one within the buffer of its expiry.
    MissingUpstreamToken,
    /// A token set without an access token.
    MissingUpstreamAccessToken,
    /// A token set without the ID token an ID-JAG exchange sends (its subject token).
    MissingUpstreamIdToken,
    /// A token set without the refresh token an ID-JAG exchange sends (its subject
    /// token, with `subjectTokenType` refresh_token).
    MissingUpstreamRefreshToken,
    /// The resolver answered without an access token.
    EmptyExchangeResponse,
    /// The resolver answered with a token that is already expired.
    AlreadyExpired,
    /// The resolver failed.
    Exchange { retryable: bool },
    /// A scheduled-chat grant (`scheduledObo: true`) answered without an access token, or
    /// with one that has no life left. The grant renews itself, so trying again can work.
    ScheduledGrantUnusable,
}

/// LibreChat's `OboTokenResolutionReason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    MissingUpstreamProvider,
    SessionRefreshFailed,
    MissingUpstreamToken,
    MissingUpstreamAccessToken,
    MissingUpstreamIdToken,
    MissingUpstreamRefreshToken,
    EmptyExchangeResponse,
    ExchangeFailed,
}

/// Which token of the user's set is exchanged: LibreChat's OBO sends the access token;
/// ID-JAG sends the ID token (or the refresh token), so its absence is told as such.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UpstreamField {
    /// `access_token`.
    #[default]
    Access,
    /// `id_token`.
    Id,
    /// `refresh_token`.
    Refresh,
}

impl UpstreamField {
    /// The field of a token set (`access_token`, `id_token`, `refresh_token`).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "access_token" => Some(Self::Access),
            "id_token" => Some(Self::Id),
            "refresh_token" => Some(Self::Refresh),
            _ => None,
        }
    }

    fn missing(self) -> Failure {
        match self {
            Self::Access => Failure::MissingUpstreamAccessToken,
            Self::Id => Failure::MissingUpstreamIdToken,
            Self::Refresh => Failure::MissingUpstreamRefreshToken,
        }
    }
}

impl Failure {
    /// LibreChat's reason tag of this failure.
    pub fn reason(self) -> Reason {
        match self {
            Self::MissingUpstreamProvider => Reason::MissingUpstreamProvider,
            Self::SessionRefresh { .. } | Self::ScheduledGrantUnusable => {
                Reason::SessionRefreshFailed
            }
            Self::MissingUpstreamToken => Reason::MissingUpstreamToken,
            Self::MissingUpstreamAccessToken => Reason::MissingUpstreamAccessToken,
            Self::MissingUpstreamIdToken => Reason::MissingUpstreamIdToken,
            Self::MissingUpstreamRefreshToken => Reason::MissingUpstreamRefreshToken,
            Self::EmptyExchangeResponse => Reason::EmptyExchangeResponse,
            Self::AlreadyExpired | Self::Exchange { .. } => Reason::ExchangeFailed,
        }
    }

    pub fn retryable(self) -> bool {
        match self {
            Self::SessionRefresh { retryable } | Self::Exchange { retryable } => retryable,
            Self::AlreadyExpired | Self::ScheduledGrantUnusable => true,
            _ => false,
        }
    }

    /// LibreChat's user-facing sentence (also the error's `message`).
    pub fn user_message(self) -> &'static str {
        match self {
            Self::MissingUpstreamProvider => {
                "No upstream credential provider is configured for this OBO MCP connection."
            }
            Self::SessionRefresh { retryable: true } => {
                "Temporary sign-in session refresh failure."
            }
            Self::SessionRefresh { retryable: false } => {
                "Your sign-in session expired and could not be refreshed. Please sign in again."
            }
            Self::MissingUpstreamToken => {
                "No valid OpenID access token is available for OBO exchange."
            }
            Self::MissingUpstreamAccessToken => {
                "The upstream OpenID access token is missing for OBO exchange."
            }
            Self::MissingUpstreamIdToken => {
                "The upstream OpenID ID token is missing for the ID-JAG exchange."
            }
            Self::MissingUpstreamRefreshToken => {
                "The upstream OpenID refresh token is missing for the ID-JAG exchange."
            }
            Self::EmptyExchangeResponse => {
                "The identity provider returned no access token for the OBO exchange."
            }
            Self::AlreadyExpired => {
                "The identity provider returned an already-expired token for the OBO exchange."
            }
            Self::Exchange { retryable: true } => "Temporary OBO token exchange failure.",
            Self::Exchange { retryable: false } => {
                "The identity provider rejected the OBO token exchange."
            }
            Self::ScheduledGrantUnusable => {
                "The scheduled OBO grant did not provide a usable downstream token."
            }
        }
    }
}

/// The user's upstream token set (from the live session or the user's snapshot).
#[derive(Default, Clone)]
pub struct UpstreamTokens {
    pub access_token: Option<String>,
    /// Epoch seconds, as OpenID token sets carry it.
    pub expires_at_secs: Option<f64>,
}

redacted_debug!(UpstreamTokens {
    shown: [expires_at_secs],
    hidden: [access_token]
});

/// The assertion to exchange, if the token set is usable: present, and not within
/// the buffer of its expiry (LibreChat's `isOpenIDTokenValid`; no expiry means valid).
/// `tokens.access_token` holds the set's `field`, whose absence the failure names.
pub fn upstream_assertion(
    tokens: Option<&UpstreamTokens>,
    field: UpstreamField,
    now_ms: u64,
) -> Result<&str, Failure> {
    let tokens = tokens.ok_or(Failure::MissingUpstreamToken)?;
    if let Some(expires_at) = tokens.expires_at_secs.filter(|at| at.is_finite()) {
        let now_secs = now_ms as f64 / 1000.0;
        if now_secs >= expires_at - BUFFER.as_secs_f64() {
            return Err(Failure::MissingUpstreamToken);
        }
    }
    tokens
        .access_token
        .as_deref()
        .filter(|token| !token.is_empty())
        .ok_or_else(|| field.missing())
}

/// What the resolver answered. The access token itself stays with the caller: only
/// whether there is one matters here.
#[derive(Debug, Default, Clone)]
pub struct ResolverAnswer {
    pub has_access_token: bool,
    pub expires_in: Option<serde_json::Value>,
    /// Epoch milliseconds.
    pub expires_at_ms: Option<f64>,
}

/// When the token handed to the MCP layer was obtained and when to stop using it.
#[derive(Debug, Clone, PartialEq)]
pub struct Stamp {
    pub obtained_at_ms: u64,
    pub expires_at_ms: f64,
}

/// Checks the resolver's answer and stamps its expiry with LibreChat's rules.
pub fn finish(answer: ResolverAnswer, now_ms: u64) -> Result<Stamp, Failure> {
    if !answer.has_access_token {
        return Err(Failure::EmptyExchangeResponse);
    }
    let expires_at =
        expiry::resolved_expires_at_ms(answer.expires_at_ms, answer.expires_in.as_ref(), now_ms);
    let skewed = expiry::skewed_expires_at_ms(expires_at, BUFFER, now_ms);
    if skewed <= now_ms as f64 {
        return Err(Failure::AlreadyExpired);
    }
    Ok(Stamp {
        obtained_at_ms: now_ms,
        expires_at_ms: skewed,
    })
}

/// A provider answer tagged `scheduledObo: true` is already the downstream token (the
/// scheduled-chat grant minted it for this MCP server): it is handed on as it is, never
/// exchanged. Its `expires_at` is in seconds, as a token set's is; the stamp is in
/// milliseconds with the same skew as an exchanged token's. No access token, no expiry,
/// or no life left is `ScheduledGrantUnusable` (LibreChat reads a missing expiry as 0).
/// A non-finite expiry is refused too, where LibreChat would hand NaN or Infinity on.
pub fn scheduled_grant(tokens: &UpstreamTokens, now_ms: u64) -> Result<Stamp, Failure> {
    let expires_at_ms = tokens
        .expires_at_secs
        .filter(|secs| secs.is_finite())
        .map_or(0.0, |secs| secs * 1000.0);
    let usable_until = expiry::skewed_expires_at_ms(expires_at_ms, BUFFER, now_ms);
    let has_token = tokens
        .access_token
        .as_deref()
        .is_some_and(|t| !t.is_empty());
    if !has_token || usable_until <= now_ms as f64 {
        return Err(Failure::ScheduledGrantUnusable);
    }
    Ok(Stamp {
        obtained_at_ms: now_ms,
        expires_at_ms: usable_until,
    })
}

/// What can be read off a thrown JavaScript value.
#[derive(Debug, Default, Clone)]
pub struct ErrorFacts {
    /// An explicit boolean `retryable` tag.
    pub retryable: Option<bool>,
    /// `status ?? statusCode ?? response.status`.
    pub status: Option<f64>,
    /// `code`, or `cause.code` (Node's fetch puts the socket error there).
    pub code: Option<String>,
    pub message: Option<String>,
    pub obo_failure_reason: Option<String>,
}

/// LibreChat's `isRetryableOboExchangeError`: an explicit tag wins, then transient
/// statuses, codes and message fragments. The fragments are read only for what a
/// caller's own resolver or session provider threw (LibreChat parity: such an error
/// carries nothing else); every error of this package carries `retryable`, so none of
/// its messages is ever read here.
pub fn looks_transient(facts: &ErrorFacts) -> bool {
    if let Some(tagged) = facts.retryable {
        return tagged;
    }
    if facts
        .status
        .is_some_and(|s| TRANSIENT_STATUSES.iter().any(|t| f64::from(*t) == s))
    {
        return true;
    }
    if let Some(code) = &facts.code {
        if TRANSIENT_CODES.contains(&code.to_ascii_uppercase().as_str()) {
            return true;
        }
    }
    let message = facts.message.as_deref().unwrap_or_default().to_lowercase();
    TRANSIENT_WORDS.iter().any(|word| message.contains(word))
}

/// The failure for a rejected session provider.
pub fn session_failure(facts: &ErrorFacts) -> Failure {
    Failure::SessionRefresh {
        retryable: looks_transient(facts),
    }
}

/// The failure for a rejected resolver.
pub fn exchange_failure(facts: &ErrorFacts) -> Failure {
    if facts.obo_failure_reason.as_deref() == Some("empty_exchange_response") {
        return Failure::EmptyExchangeResponse;
    }
    Failure::Exchange {
        retryable: looks_transient(facts),
    }
}

#[cfg(test)]
#[path = "resolve_tests.rs"]
mod tests;
