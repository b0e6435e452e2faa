//! Refresh-ahead orchestration: a hit past its token's refresh point is answered at
//! once, and that caller's wrapper then hands over its assertion (`OboService::refresh`)
//! for one background exchange that replaces the entry when it succeeds.
//!
//! - The hot path only has the assertion's digest, so it cannot exchange: it claims
//!   the refresh (`Refreshes::claim`, one per key at a time) and says so
//!   (`Hit::refresh_due`); the wrapper calls `refresh` in the same tick with the
//!   assertion it holds. Nothing keeps the assertion after that exchange ends.
//! - A refresh is only sent while the assertion outlives it (a JWS whose `exp` is
//!   further ahead than the longest exchange plus a minute of clock skew). An opaque
//!   RFC 8693 subject token cannot be read: it is sent, and if the IdP refuses it for
//!   good (a non-retryable answer) the key gets no further refresh for that token.
//! - A failure is counted and logged once, keeps the old token until it stops being
//!   usable, and is retried only after a backoff (`RefreshPolicy::backoff`); no
//!   caller ever sees it.
//! - `refresh_exchange` is the one way a refresh reaches the IdP (see its doc: the
//!   seam for the shared tier's cross-process lease).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::log::Level;
use super::request::Request;
use super::stats::Counters;
use super::{ExchangeOutcome, Inner, OboService};
use crate::cache::flights::Flight;
use crate::cache::refresh_points::{RefreshClaim, RefreshPolicy, Refreshes};
use crate::cache::shared::Refresh;
use crate::cache::token::OboToken;
use crate::ground::expiry;
use crate::protocol::assertion;

/// A clock-skew allowance between this host and the IdP when judging an assertion's `exp`.
const CLOCK_SKEW: Duration = Duration::from_secs(60);

/// A cache hit: the token, and whether the caller should start its refresh now
/// (`OboService::refresh` with the assertion the hit was for).
#[derive(Debug, PartialEq)]
pub struct Hit {
    pub token: Arc<OboToken>,
    pub refresh_due: bool,
}

/// The policy and the per-key state of refresh-ahead.
pub struct Ahead {
    pub policy: RefreshPolicy,
    pub table: Refreshes,
    /// How far ahead an assertion's `exp` must be for a refresh to be sent.
    pub margin: Duration,
}

impl Ahead {
    pub fn new(config: &crate::config::Config) -> Self {
        let longest_exchange = config.request_timeout * (config.max_retries + 1)
            + config.retry_delay * config.max_retries;
        Self {
            policy: RefreshPolicy {
                fraction: config.refresh_ahead,
                buffer: config.expiry_buffer,
            },
            table: Refreshes::new(config.expiry_buffer),
            margin: longest_exchange + CLOCK_SKEW,
        }
    }
}

impl Inner {
    /// On the hot path, after a hit at `now`: whether this hit starts the token's
    /// refresh. Before the refresh point this is one comparison.
    pub(super) fn refresh_due(&self, key: &str, token: &OboToken, now: u64) -> bool {
        if !self.ahead.policy.due(token, now) {
            return false;
        }
        match self.ahead.table.claim(key, token, now) {
            RefreshClaim::Start => {
                Counters::bump(&self.counters.served_during_refresh);
                true
            }
            RefreshClaim::Running => {
                Counters::bump(&self.counters.served_during_refresh);
                false
            }
            RefreshClaim::Wait => false,
        }
    }

    /// The background refresh of `old`, the token under `request.key`.
    async fn refresh_in_background(self: Arc<Self>, request: Request, old: Arc<OboToken>) {
        let started = Instant::now();
        Counters::bump(&self.counters.refreshes_started);
        self.events.refresh_started(&request);
        self.log.write(Level::Debug, || {
            format!(
                "Refreshing OBO token ahead of expiry for user: {}, scopes: {}",
                request.subject, request.scopes
            )
        });
        let key = &request.key;
        match Arc::clone(&self)
            .refresh_exchange(request.clone(), &old)
            .await
        {
            None => {
                self.ahead.table.release(key, old.id);
                self.events.refresh_ended(&request, started, Ok(()), true);
            }
            Some(Ok(_)) => {
                Counters::bump(&self.counters.refreshes_succeeded);
                self.ahead.table.release(key, old.id);
                self.events.refresh_ended(&request, started, Ok(()), false);
            }
            Some(Err(error)) => {
                Counters::bump(&self.counters.refreshes_failed);
                let now = expiry::now_ms();
                let retry = self.ahead.table.failed(
                    key,
                    &old,
                    now,
                    !error.is_retryable(),
                    &self.ahead.policy,
                );
                self.log.write(Level::Warn, || {
                    let next = retry.map_or("no further attempt for this token".into(), |wait| {
                        format!("next attempt in {} s at the earliest", wait.as_secs())
                    });
                    format!(
                        "OBO refresh-ahead failed for user: {}; the cached token is served until it expires, {next}: {error}",
                        request.subject
                    )
                });
                self.events
                    .refresh_ended(&request, started, Err(&error), false);
            }
        }
    }

    /// The one way a refresh-ahead reaches the IdP. `None` means another exchange for
    /// the key is already under way, here or in another process, so this refresh does
    /// nothing and nobody waits.
    ///
    /// With the shared tier, the fleet refreshes each key once: a token another process
    /// already refreshed (one that outlives `old`) is adopted without an exchange; else
    /// the entry's lease is taken without waiting, and a process that finds it held
    /// keeps serving its still-valid token. In this process the refresh takes the key's
    /// single-flight slot, so a miss for the key meanwhile joins it, and a running miss
    /// flight makes the refresh step aside.
    async fn refresh_exchange(
        self: Arc<Self>,
        request: Request,
        old: &OboToken,
    ) -> Option<ExchangeOutcome> {
        let tier = self.shared.clone();
        let mut lease = match &tier {
            None => None,
            Some(tier) => match tier.try_refresh(&request.key, old.expires_at).await {
                Refresh::Adopt(token) => return Some(Ok(self.adopt(&request, token))),
                Refresh::Skip => return None,
                Refresh::Lead(lease) => Some(lease),
            },
        };
        let flight = self.flights.join_or_start(
            &request.key,
            || None,
            || {
                let inner = Arc::clone(&self);
                let request = request.clone();
                let held = lease.take().zip(tier.clone());
                async move {
                    match held {
                        Some((lease, tier)) => inner.exchange_under(&tier, lease, request).await,
                        None => inner.run_exchange(request).await,
                    }
                }
            },
        );
        if let Some((lease, tier)) = lease.zip(tier) {
            tier.abandon(lease).await;
        }
        match flight {
            Flight::Started(flight) => Some(flight.await),
            Flight::Joined(_) | Flight::Ready(_) => None,
        }
    }
}

impl OboService {
    /// Starts the refresh that a hit said was due (`Hit::refresh_due`), with the
    /// caller's request for the same key; returns the background work for the caller
    /// to spawn, or `None` when there is nothing to do (no claim for this key's token,
    /// or an assertion that expires before a refresh could complete). The request's
    /// assertion lives only as long as that work.
    pub fn refresh(&self, request: Request) -> Option<impl Future<Output = ()> + Send + 'static> {
        let inner = Arc::clone(&self.inner);
        let token = inner.cache.get(&request.key)?;
        if !inner.ahead.table.start(&request.key, token.id) {
            return None;
        }
        let now = expiry::now_ms();
        let outlives = assertion::expires_at_secs(&request.assertion)
            .is_none_or(|exp| exp * 1000.0 > now as f64 + inner.ahead.margin.as_millis() as f64);
        if !outlives {
            inner.ahead.table.disable(&request.key, token.id);
            inner.log.write(Level::Debug, || {
                format!(
                    "No OBO refresh-ahead for user: {}: their token expires before a refresh could complete; the cached token is served until it expires",
                    request.subject
                )
            });
            return None;
        }
        // A claims challenge answers one refused token; a refresh renews the cached one.
        let request = Request {
            refresh: true,
            claims: None,
            ..request
        };
        Some(inner.refresh_in_background(request, token))
    }
}
