//! What can go wrong with a scheduled chat's OBO grant, and LibreChat's verdict on it
//! (`schedules/obo.ts`): the reason and message of the `OboTokenResolutionError`, whether
//! to try again later, and whether the stored grant is spent and must be deleted.

use super::ExchangeError;

/// OAuth errors to a refresh-token grant that mean the stored grant is spent, as
/// LibreChat lists them; any other failure leaves it in place.
pub const SPENT_GRANT_ERRORS: [&str; 8] = [
    "invalid_grant",
    "invalid_client",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_request",
    "invalid_scope",
    "invalid_target",
    "access_denied",
];

/// LibreChat's message when a schedule has no usable grant for a server.
pub const MISSING_GRANT: &str =
    "Authorize this OBO server separately for this schedule before unattended use.";

/// A failed enrolment or renewal.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ScheduledFailure {
    /// The token request failed (the IdP's answer, the network, or discovery).
    #[error("{0}")]
    Exchange(ExchangeError),
    /// The IdP answered the offline request without a refresh token.
    #[error("The identity provider issued no refresh token for the offline OBO request")]
    NoRefreshToken,
    /// The downstream token's lifetime is unknown, or 30 seconds or less.
    #[error("The identity provider issued a downstream token without a usable lifetime")]
    UnusableExpiry,
    /// The IdP granted fewer scopes than asked.
    #[error("The identity provider did not grant every requested scope (granted: {granted})")]
    ScopesNotGranted { granted: String },
    /// No stored grant that opens under this name and key ring, or one for other scopes.
    #[error("No stored scheduled OBO grant for these scopes opens with the configured keys")]
    NoGrant,
    /// The stored refresh token is past its lifetime.
    #[error("The stored scheduled OBO grant has expired")]
    Expired,
}

/// LibreChat's `OboTokenResolutionError` reasons that a scheduled grant produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduledReason {
    MissingUpstreamProvider,
    ExchangeFailed,
    SessionRefreshFailed,
}

/// Which operation failed: the first request, or a renewal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Enroll,
    Renew,
}

/// What the caller is told, and what happens to the stored grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub reason: ScheduledReason,
    pub message: &'static str,
    pub retryable: bool,
    /// The stored grant is spent: delete it.
    pub drop_grant: bool,
}

impl Verdict {
    fn missing(drop_grant: bool) -> Self {
        Self {
            reason: ScheduledReason::MissingUpstreamProvider,
            message: MISSING_GRANT,
            retryable: false,
            drop_grant,
        }
    }

    fn temporary(reason: ScheduledReason, message: &'static str) -> Self {
        Self {
            reason,
            message,
            retryable: true,
            drop_grant: false,
        }
    }
}

impl ScheduledFailure {
    /// LibreChat's verdict. A transient failure is retryable and keeps the grant. At
    /// enrolment anything else means the schedule cannot be authorized (nothing was
    /// stored). At renewal the grant is spent, and deleted, when the IdP refuses it with
    /// one of `SPENT_GRANT_ERRORS` or answers with a token it cannot use; any other
    /// failure is LibreChat's "temporary credential failure" and keeps it.
    pub fn verdict(&self, stage: Stage) -> Verdict {
        let transient = matches!(self, Self::Exchange(error) if error.is_retryable());
        match (stage, self) {
            (Stage::Enroll, _) if transient => Verdict::temporary(
                ScheduledReason::ExchangeFailed,
                "Temporary OBO token exchange failure.",
            ),
            (Stage::Enroll, _) => Verdict::missing(false),
            (Stage::Renew, _) if transient => Verdict::temporary(
                ScheduledReason::SessionRefreshFailed,
                "Temporary OBO grant refresh failure.",
            ),
            (Stage::Renew, Self::Exchange(error)) if spends_grant(error) => Verdict::missing(true),
            (Stage::Renew, Self::Exchange(_)) => Verdict::temporary(
                ScheduledReason::SessionRefreshFailed,
                "Temporary OBO credential failure.",
            ),
            (Stage::Renew, Self::UnusableExpiry | Self::ScopesNotGranted { .. }) => {
                Verdict::missing(true)
            }
            (Stage::Renew, Self::NoRefreshToken | Self::NoGrant | Self::Expired) => {
                Verdict::missing(false)
            }
        }
    }

    /// The failed request's error, when there was one (its fields go on the cause).
    pub fn exchange_error(&self) -> Option<&ExchangeError> {
        match self {
            Self::Exchange(error) => Some(error),
            _ => None,
        }
    }
}

/// Whether a refresh answer means the grant is spent: a listed OAuth error, or a
/// success without an access token (which may have consumed the refresh token).
fn spends_grant(error: &ExchangeError) -> bool {
    match error {
        ExchangeError::EmptyResponse => true,
        _ => error
            .idp_body()
            .and_then(|body| body.error.as_deref())
            .is_some_and(|code| SPENT_GRANT_ERRORS.contains(&code)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ground::error::{IdpErrorBody, TransportKind};

    fn idp(status: u16, error: &str) -> ScheduledFailure {
        ScheduledFailure::Exchange(ExchangeError::Idp {
            status,
            body: Box::new(IdpErrorBody {
                error: Some(error.into()),
                ..IdpErrorBody::default()
            }),
            retry_after: None,
        })
    }

    fn timeout() -> ScheduledFailure {
        ScheduledFailure::Exchange(ExchangeError::Transport {
            kind: TransportKind::Timeout,
            detail: "t".into(),
            cause: None,
        })
    }

    #[test]
    fn enrolment_is_temporary_or_not_authorizable() {
        let verdict = timeout().verdict(Stage::Enroll);
        assert_eq!(verdict.reason, ScheduledReason::ExchangeFailed);
        assert!(verdict.retryable && !verdict.drop_grant);
        assert_eq!(
            idp(503, "x").verdict(Stage::Enroll).reason,
            ScheduledReason::ExchangeFailed
        );
        for failure in [
            idp(400, "invalid_grant"),
            idp(400, "interaction_required"),
            ScheduledFailure::NoRefreshToken,
            ScheduledFailure::UnusableExpiry,
        ] {
            assert_eq!(
                failure.verdict(Stage::Enroll),
                Verdict::missing(false),
                "{failure}"
            );
        }
        assert_eq!(Verdict::missing(false).message, MISSING_GRANT);
    }

    #[test]
    fn a_refused_renewal_spends_the_grant_only_for_listed_errors() {
        for code in SPENT_GRANT_ERRORS {
            assert_eq!(
                idp(400, code).verdict(Stage::Renew),
                Verdict::missing(true),
                "{code}"
            );
        }
        let kept = idp(400, "interaction_required").verdict(Stage::Renew);
        assert_eq!(kept.reason, ScheduledReason::SessionRefreshFailed);
        assert!(kept.retryable && !kept.drop_grant);
        assert_eq!(kept.message, "Temporary OBO credential failure.");
        let malformed =
            ScheduledFailure::Exchange(ExchangeError::MalformedResponse { status: 200 });
        assert_eq!(malformed.verdict(Stage::Renew), kept);
        let empty = ScheduledFailure::Exchange(ExchangeError::EmptyResponse);
        assert_eq!(empty.verdict(Stage::Renew), Verdict::missing(true));
    }

    #[test]
    fn a_transient_renewal_keeps_the_grant() {
        for failure in [
            timeout(),
            idp(503, "invalid_grant"),
            idp(400, "temporarily_unavailable"),
        ] {
            let verdict = failure.verdict(Stage::Renew);
            assert_eq!(verdict.reason, ScheduledReason::SessionRefreshFailed);
            assert_eq!(verdict.message, "Temporary OBO grant refresh failure.");
            assert!(verdict.retryable && !verdict.drop_grant);
        }
    }

    #[test]
    fn an_unusable_answer_spends_the_grant_and_a_missing_one_does_not() {
        let scopes = ScheduledFailure::ScopesNotGranted {
            granted: "a".into(),
        };
        assert_eq!(scopes.verdict(Stage::Renew), Verdict::missing(true));
        assert_eq!(
            ScheduledFailure::UnusableExpiry.verdict(Stage::Renew),
            Verdict::missing(true)
        );
        assert_eq!(
            ScheduledFailure::NoGrant.verdict(Stage::Renew),
            Verdict::missing(false)
        );
        assert_eq!(
            ScheduledFailure::Expired.verdict(Stage::Renew),
            Verdict::missing(false)
        );
        assert!(ScheduledFailure::NoGrant.exchange_error().is_none());
        assert!(timeout().exchange_error().is_some());
    }
}
