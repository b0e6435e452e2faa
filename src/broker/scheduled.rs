//! A scheduled chat's own OBO grant (LibreChat's `schedules/obo.ts`): no user session is
//! there when the schedule fires, so at enrolment the user's token is exchanged once with
//! `offline_access`, and the downstream refresh token the IdP issues is kept, sealed, in
//! the caller's store; each run renews the downstream token from it by the refresh-token
//! grant. The store itself is the caller's (JS): this side turns a sealed record and a
//! request into a token, a new sealed record, or LibreChat's verdict on the failure.
//!
//! Like LibreChat, each request is sent once: a transient failure is reported retryable
//! for the scheduler to try again, rather than retried here, since a refresh request
//! that reached the IdP may already have rotated the token.

use url::Url;

use crate::cache::grant_record::GrantRecord;
use crate::cache::shared::Keyring;
use crate::consent::{self, Authority, ScopeBinding};
use crate::ground::error::{ExchangeError, ScheduledFailure, Stage};
use crate::ground::expiry;
use crate::ground::redact::redacted_debug;
use crate::protocol::assertion;
use crate::protocol::offline::{self, OfflineGrant};

use super::{Inner, Level, OboService};

/// A grant's downstream token, and the record to store when it changed.
pub struct Granted {
    pub access_token: String,
    /// Epoch ms, stamped when the token was requested.
    pub expires_at_ms: u64,
    /// The sealed record to store under the grant's name, with how long to keep it (ms);
    /// `None` when the stored one still holds.
    pub store: Option<(String, u64)>,
}

redacted_debug!(Granted {
    shown: [expires_at_ms],
    hidden: [access_token, store]
});

impl OboService {
    /// Enrols a schedule: exchanges `assertion` (the user's live token) for `scopes` plus
    /// `offline_access`; the result holds the record to store under `name`. Nothing is
    /// stored on failure.
    pub async fn scheduled_enroll(
        &self,
        ring: &Keyring,
        name: &str,
        assertion: &str,
        scopes: &str,
    ) -> Result<Granted, ScheduledFailure> {
        let inner = &self.inner;
        let requested_at = expiry::now_ms();
        let outcome = async {
            let endpoint = inner.discovery.endpoint(&inner.http).await?;
            let auth = &inner.config.client_auth;
            let grant =
                offline::request_offline(&inner.http, endpoint.url, auth, assertion, scopes)
                    .await?;
            Ok((grant, endpoint.url.clone()))
        }
        .await;
        let outcome = outcome
            .map_err(ScheduledFailure::Exchange)
            .and_then(|(grant, endpoint)| {
                let refresh_token = grant.refresh_token.clone();
                let refresh_token = refresh_token.ok_or(ScheduledFailure::NoRefreshToken)?;
                let answer = Answer {
                    grant,
                    refresh_token,
                    requested_at,
                };
                inner.accept(answer, &endpoint, scopes, None)
            });
        inner.logged(
            Stage::Enroll,
            name,
            outcome.map(|record| granted(ring, name, record)),
        )
    }

    /// The downstream token of the grant sealed in `stored` under `name`: the stored one
    /// while `GrantRecord::serves_at` says so (unless `force`), else a renewal by
    /// the refresh-token grant, whose record replaces the stored one.
    pub async fn scheduled_token(
        &self,
        ring: &Keyring,
        name: &str,
        stored: &str,
        scopes: &str,
        force: bool,
    ) -> Result<Granted, ScheduledFailure> {
        let inner = &self.inner;
        let now = expiry::now_ms();
        let record = match GrantRecord::open(ring, name, stored) {
            Some(record) if record.scopes == scopes => record,
            _ => return inner.logged(Stage::Renew, name, Err(ScheduledFailure::NoGrant)),
        };
        if record.refresh_expires_at_ms <= now {
            return inner.logged(Stage::Renew, name, Err(ScheduledFailure::Expired));
        }
        if !force && record.serves_at(now) {
            return Ok(Granted {
                access_token: record.access_token,
                expires_at_ms: record.expires_at_ms,
                store: None,
            });
        }
        let outcome = inner.renew(&record).await.and_then(|(grant, endpoint)| {
            let refresh_token = grant.refresh_token.clone();
            let answer = Answer {
                grant,
                refresh_token: refresh_token.unwrap_or_else(|| record.refresh_token.clone()),
                requested_at: now,
            };
            let binding = record.binding.as_ref();
            let mut renewed = inner.accept(answer, &endpoint, scopes, binding)?;
            if renewed.refresh_token == record.refresh_token {
                // Not rotated: the same refresh token lives no longer for having been used.
                renewed.refresh_expires_at_ms = record.refresh_expires_at_ms;
            }
            Ok(renewed)
        });
        inner.logged(
            Stage::Renew,
            name,
            outcome.map(|record| granted(ring, name, record)),
        )
    }
}

/// A granted answer, with the refresh token to keep and when it was asked for.
struct Answer {
    grant: OfflineGrant,
    refresh_token: String,
    requested_at: u64,
}

impl Inner {
    /// One refresh-token grant request for the record's scopes, and the endpoint it went to.
    async fn renew(&self, record: &GrantRecord) -> Result<(OfflineGrant, Url), ScheduledFailure> {
        async {
            let endpoint = self.discovery.endpoint(&self.http).await?;
            let auth = &self.config.client_auth;
            let token = record.refresh_token.as_str();
            let grant =
                offline::request_refresh(&self.http, endpoint.url, auth, token, &record.scopes)
                    .await?;
            Ok((grant, endpoint.url.clone()))
        }
        .await
        .map_err(|error: ExchangeError| ScheduledFailure::Exchange(error))
    }

    /// The record a granted answer makes, or why it cannot be used: the scopes it holds
    /// (LibreChat's consent rules, with the enrolment's `binding`) and its lifetime.
    fn accept(
        &self,
        answer: Answer,
        endpoint: &Url,
        scopes: &str,
        binding: Option<&ScopeBinding>,
    ) -> Result<GrantRecord, ScheduledFailure> {
        let Answer {
            grant,
            refresh_token,
            requested_at,
        } = answer;
        let authority = Authority {
            issuer: &self.config.issuer,
            token_endpoint: endpoint,
        };
        let held = consent::Granted {
            access_token: &grant.access_token,
            scope: grant.scope.as_deref(),
        };
        let binding = consent::resolve(&held, scopes, &authority, binding).ok_or_else(|| {
            ScheduledFailure::ScopesNotGranted {
                granted: grant.scope.clone().unwrap_or_default(),
            }
        })?;
        let exp = assertion::expires_at_secs(&grant.access_token);
        let lifetime =
            expiry::scheduled_lifetime_secs(grant.expires_in.as_ref(), exp, requested_at)
                .ok_or(ScheduledFailure::UnusableExpiry)?;
        Ok(GrantRecord {
            refresh_expires_at_ms: expiry::refresh_expires_at_ms(
                grant.refresh_token_expires_in.as_ref(),
                requested_at,
            ),
            refresh_token,
            access_token: grant.access_token,
            expires_at_ms: requested_at + lifetime * 1000,
            scopes: scopes.to_owned(),
            binding,
        })
    }

    /// Logs an enrolment or a renewal by the grant's name (never a token: error texts are
    /// scrubbed); a reused token is not news.
    fn logged(
        &self,
        stage: Stage,
        name: &str,
        outcome: Result<Granted, ScheduledFailure>,
    ) -> Result<Granted, ScheduledFailure> {
        let what = match stage {
            Stage::Enroll => "enrolment",
            Stage::Renew => "renewal",
        };
        match &outcome {
            Ok(_) => self.log.write(Level::Debug, || {
                format!("Scheduled OBO grant {what} succeeded for {name}")
            }),
            Err(failure) => self.log.write(Level::Warn, || {
                format!("Scheduled OBO grant {what} failed for {name}: {failure}")
            }),
        }
        outcome
    }
}

/// The token, and the sealed record to store with its lifetime.
fn granted(ring: &Keyring, name: &str, record: GrantRecord) -> Granted {
    let keep_ms = record
        .refresh_expires_at_ms
        .saturating_sub(expiry::now_ms())
        .max(1);
    Granted {
        store: Some((record.seal(ring, name), keep_ms)),
        access_token: record.access_token,
        expires_at_ms: record.expires_at_ms,
    }
}
