//! The exchange flow, top to bottom: a miss joins the flight for its key or starts one;
//! inside the flight the shared tier may already hold the token (`fill`), else the
//! exchange runs under the cross-process lease (`exchange_under`): the assertion is
//! verified when configured, then requests go to the token endpoint with their retries
//! (`attempt`), and a granted token is cached (`store`) before it is returned.
//! Refresh-ahead (`refresh_ahead.rs`) enters this flow at `adopt`, `exchange_under` and
//! `run_exchange`.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::events;
use super::log::Level;
use super::request::Request;
use super::stats::Counters;
use super::{ExchangeOutcome, Inner};
use crate::cache::flights::Flight;
use crate::cache::refresh_points::jitter_sample;
use crate::cache::shared::{Lease, SharedClaim, SharedTier};
use crate::cache::token::OboToken;
use crate::cache::traffic::UNKNOWN_EXCHANGE_MS;
use crate::ground::error::ExchangeError;
use crate::ground::expiry;
use crate::protocol::grant::{self, GrantKind, GrantMode};
use crate::protocol::id_jag::{IdJagRequest, Idp};

impl Inner {
    /// Joins the exchange in flight for the key, or starts one (a cached answer that
    /// arrived meanwhile wins).
    pub(super) async fn join_or_start(self: Arc<Self>, request: Request) -> ExchangeOutcome {
        let counters = &self.counters;
        let flight = self.flights.join_or_start(
            &request.key,
            || self.cache.get(&request.key),
            || Arc::clone(&self).fill(request.clone()),
        );
        match flight {
            Flight::Ready(token) => {
                Counters::bump(&counters.hits);
                Ok(token)
            }
            Flight::Joined(shared) => {
                Counters::bump(&counters.misses);
                Counters::bump(&counters.coalesced);
                self.log.write(Level::Debug, || {
                    format!(
                        "Joining in-flight OBO exchange for user: {}",
                        request.subject
                    )
                });
                shared.await
            }
            Flight::Started(shared) => {
                Counters::bump(&counters.misses);
                shared.await
            }
        }
    }

    /// A miss, inside this process's flight for the key: the shared token if another
    /// process has it, else an exchange under the cross-process lease.
    async fn fill(self: Arc<Self>, request: Request) -> ExchangeOutcome {
        let Some(tier) = self.shared.clone() else {
            return self.run_exchange(request).await;
        };
        match tier.claim(&request.key).await {
            SharedClaim::Hit(token) => Ok(self.adopt(&request, token)),
            SharedClaim::Exchange(lease) => self.exchange_under(&tier, lease, request).await,
        }
    }

    /// Keeps a token another process exchanged: this process's id and its own
    /// (jittered) refresh point, then the local tier.
    pub(super) fn adopt(&self, request: &Request, mut token: OboToken) -> Arc<OboToken> {
        token.id = self.next_token_id.fetch_add(1, Ordering::Relaxed);
        token.refresh_at = self.ahead.policy.refresh_at(
            token.obtained_at(),
            token.expires_at,
            None,
            jitter_sample(),
        );
        token.traffic = self
            .ahead
            .policy
            .traffic(token.obtained_at(), None, UNKNOWN_EXCHANGE_MS);
        let token = Arc::new(token);
        self.cache.insert(request.key.clone(), Arc::clone(&token));
        self.log.write(Level::Debug, || {
            format!("Shared OBO token served for user: {}", request.subject)
        });
        token
    }

    /// `fromCache=false`: drops every process's copy, then exchanges under the lease.
    pub(super) async fn forced_exchange(self: Arc<Self>, request: Request) -> ExchangeOutcome {
        let Some(tier) = self.shared.clone() else {
            return self.run_exchange(request).await;
        };
        let lease = tier.forced_lease(&request.key).await;
        self.exchange_under(&tier, lease, request).await
    }

    pub(super) async fn exchange_under(
        self: Arc<Self>,
        tier: &SharedTier,
        lease: Lease,
        request: Request,
    ) -> ExchangeOutcome {
        let outcome = self.run_exchange(request).await;
        match &outcome {
            Ok(token) => tier.finish(lease, token).await,
            Err(_) => tier.abandon(lease).await,
        }
        outcome
    }

    /// One exchange with its retries; a success is cached before it is returned.
    pub(super) async fn run_exchange(self: Arc<Self>, request: Request) -> ExchangeOutcome {
        let watch = self.events.exchange_started(&request);
        let outcome = self.exchange_watched(&request, &watch).await;
        watch.ended(&outcome);
        outcome
    }

    /// `run_exchange`, telling `watch` the grant it sends.
    async fn exchange_watched(
        &self,
        request: &Request,
        watch: &events::Watch<'_>,
    ) -> ExchangeOutcome {
        if let Err(error) = self.verify(&request.assertion).await {
            return self.failed(request, error);
        }
        Counters::bump(&self.counters.exchanges);
        self.log.write(Level::Debug, || {
            format!(
                "Requesting new OBO token for user: {}, scopes: {}",
                request.subject, request.scopes
            )
        });
        let requested_at = expiry::now_ms();
        let on_retry = |error: &ExchangeError, wait: std::time::Duration| {
            Counters::bump(&self.counters.retries);
            self.log.write(Level::Warn, || {
                format!(
                    "Transient OBO exchange failure for user: {}, retrying in {} ms: {error}",
                    request.subject,
                    wait.as_millis()
                )
            });
        };
        match self
            .retry
            .run(|| self.attempt(request, watch), on_retry)
            .await
        {
            Ok(grant) => Ok(self.store(request, grant, requested_at)),
            Err(error) => self.failed(request, error),
        }
    }

    /// With `validateAssertion`, refuses an assertion that does not verify (once per
    /// flight: joiners share the leader's assertion, so they share its verdict).
    async fn verify(&self, assertion: &str) -> Result<(), ExchangeError> {
        let Some(verifier) = &self.verifier else {
            return Ok(());
        };
        let (jwks_uri, issuer) = self.discovery.keys(&self.http).await?;
        verifier
            .verify(assertion, jwks_uri, issuer, &self.http)
            .await
    }

    /// One request to the token endpoint, with the grant the IdP and the call allow.
    async fn attempt(
        &self,
        request: &Request,
        watch: &events::Watch<'_>,
    ) -> Result<grant::GrantResponse, ExchangeError> {
        let endpoint = self.discovery.endpoint(&self.http).await?;
        let kind = self
            .config
            .grant
            .choose(endpoint.grant_types)
            .map_err(ExchangeError::Grant)?;
        if self.config.grant == GrantMode::Auto {
            self.auto_told.call_once(|| {
                let why = self.config.grant.reason(endpoint.grant_types);
                self.log.write(Level::Debug, || {
                    format!(
                        "grantType 'auto' sends {} to {}: {why}",
                        kind.option_name(),
                        endpoint.url
                    )
                });
            });
        }
        watch.grant(kind);
        let send_resource = self.config.resource_indicator.sends(kind);
        if let Some(id_jag) = self.id_jag.as_ref().filter(|_| kind == GrantKind::IdJag) {
            let idp = Idp {
                endpoint: endpoint.url,
                auth: &self.config.client_auth,
            };
            let call = IdJagRequest {
                subject_token: &request.assertion,
                scopes: &request.scopes,
                resource: request.resource.as_deref(),
                audience: request.audience.as_deref(),
                claims: request.claims.as_deref(),
                resource_metadata: request.resource_metadata.as_deref(),
                send_resource,
            };
            return id_jag.obtain(&self.http, idp, &call).await;
        }
        let grant = grant::GrantRequest {
            assertion: &request.assertion,
            scopes: &request.scopes,
            claims: request.claims.as_deref(),
            audience: request.audience.as_deref(),
            resource: request.resource.as_deref().filter(|_| send_resource),
        };
        grant::request_token(
            &self.http,
            endpoint.url,
            &self.config.client_auth,
            kind,
            &self.config.token_exchange,
            &grant,
        )
        .await
    }

    /// Caches a granted token under the request's key, expiry stamped at request time.
    fn store(
        &self,
        request: &Request,
        grant: grant::GrantResponse,
        requested_at: u64,
    ) -> Arc<OboToken> {
        let expires_in = expiry::normalize_expires_in(grant.expires_in.as_ref());
        let expires_at = requested_at + expires_in * 1000;
        let refresh_in = expiry::declared_lifetime_secs(grant.refresh_in.as_ref());
        let policy = &self.ahead.policy;
        let took = expiry::now_ms().saturating_sub(requested_at);
        let token = Arc::new(OboToken {
            id: self.next_token_id.fetch_add(1, Ordering::Relaxed),
            access_token: grant.access_token,
            expires_in,
            expires_at,
            refresh_at: policy.refresh_at(requested_at, expires_at, refresh_in, jitter_sample()),
            traffic: policy.traffic(requested_at, refresh_in, took),
            scope: request.scopes.to_string(),
            issued_token_type: grant.issued_token_type,
        });
        self.cache.insert(request.key.clone(), Arc::clone(&token));
        self.log.write(Level::Debug, || {
            format!(
                "Obtained and cached OBO token for user: {}",
                request.subject
            )
        });
        token
    }

    fn failed(&self, request: &Request, error: ExchangeError) -> ExchangeOutcome {
        if request.refresh {
            return Err(error); // counted and logged once by `refresh_ahead.rs`
        }
        Counters::bump(&self.counters.failures);
        self.log.write(Level::Error, || {
            format!("OBO exchange failed for user: {}: {error}", request.subject)
        });
        Err(error)
    }
}
