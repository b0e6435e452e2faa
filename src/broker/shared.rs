//! The broker's use of the shared tier (when `sharedCache` is configured): the miss
//! path inside the flight (Redis read, lease, and only then the IdP), the forced
//! exchange, and the cross-process `invalidate` and `clear`.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::events::Events;
use super::log::{Level, Log, Logger};
use super::{ExchangeOutcome, Inner, OboService};
use crate::cache::local::TokenCache;
use crate::cache::refresh::jitter_sample;
use crate::cache::shared::{BreakerState, Claim, Eviction, Lease, Notice, SharedTier};
use crate::cache::token::OboToken;
use crate::cache::traffic::UNKNOWN_EXCHANGE_MS;
use crate::config::Config;
use crate::ground::error::{ConfigError, RequestError};
use crate::ground::identity::{IdentitySource, IdentityTuple, Invalidation};

use super::request::Request;

/// The tier for `config`, if configured; its evictions go to `cache`, its breaker
/// changes to the log and to `librechat-obo:shared:breaker`. No I/O here.
pub(super) fn tier(
    config: &Config,
    cache: &Arc<TokenCache>,
    logger: Option<Logger>,
    events: &Arc<Events>,
) -> Result<Option<SharedTier>, ConfigError> {
    let Some(shared) = &config.shared_cache else {
        return Ok(None);
    };
    let cache = Arc::clone(cache);
    let evictor = Arc::new(move |eviction: Eviction| match eviction {
        Eviction::Key(key) => cache.remove(&key),
        Eviction::Prefix(prefix) => {
            cache.remove_prefix(&prefix);
        }
        Eviction::All => cache.clear(),
    });
    let log = Log::new(logger);
    let events = Arc::clone(events);
    let on_notice = Arc::new(move |notice: Notice| {
        let (level, state) = match notice {
            Notice::Opened(_) => (Level::Warn, BreakerState::Open),
            Notice::Closed => (Level::Debug, BreakerState::Closed),
        };
        log.write(level, || notice.message());
        events.breaker_changed(state);
    });
    SharedTier::new(shared, config.expiry_buffer, evictor, on_notice)
        .map(Some)
        .map_err(|problem| ConfigError::new("sharedCache.url", problem))
}

impl Inner {
    /// A miss, inside this process's flight for the key: the shared token if another
    /// process has it, else an exchange under the cross-process lease.
    pub(super) async fn fill(self: Arc<Self>, request: Request) -> ExchangeOutcome {
        let Some(tier) = self.shared.clone() else {
            return self.run_exchange(request).await;
        };
        match tier.claim(&request.key).await {
            Claim::Hit(token) => Ok(self.adopt(&request, token)),
            Claim::Exchange(lease) => self.exchange_under(&tier, lease, request).await,
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
    pub(super) async fn forced(self: Arc<Self>, request: Request) -> ExchangeOutcome {
        let Some(tier) = self.shared.clone() else {
            return self.run_exchange(request).await;
        };
        let lease = tier.forced(&request.key).await;
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
}

impl OboService {
    /// The shared half of `invalidate`: drops the identity's shared entries (or one
    /// scope string's) and has every other process drop its local copies. `None` when
    /// there is no shared tier. Never fails once the arguments are valid.
    pub fn invalidate_shared(
        &self,
        user: &IdentitySource,
        context: Option<&IdentitySource>,
        scopes: Option<&str>,
    ) -> Result<Option<impl Future<Output = ()> + Send + 'static>, RequestError> {
        let identity = IdentityTuple::resolve(user, context).ok_or(RequestError::NotOpenIdUser)?;
        let Some(tier) = self.inner.shared.clone() else {
            return Ok(None);
        };
        let dropped = Invalidation::new(&identity, scopes);
        Ok(Some(async move {
            tier.invalidate(&dropped).await;
        }))
    }

    /// The shared half of `clear`; `None` when there is no shared tier.
    pub fn clear_shared(&self) -> Option<impl Future<Output = ()> + Send + 'static> {
        let tier = self.inner.shared.clone()?;
        Some(async move { tier.clear().await })
    }
}
