//! The broker's use of the shared tier (when `sharedCache` is configured): building it,
//! and the cross-process `invalidate` and `clear`. The miss path through it (Redis read,
//! lease, and only then the IdP) and the forced exchange are part of the exchange flow
//! in `exchange.rs`.

use std::future::Future;
use std::sync::Arc;

use super::events::Events;
use super::log::{Level, Log, Logger};
use super::OboService;
use crate::cache::local::TokenCache;
use crate::cache::shared::{BreakerState, Eviction, Notice, SharedTier};
use crate::config::{Config, SHARED_CACHE};
use crate::ground::error::ConfigError;
use crate::ground::identity::Invalidation;

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
        .map_err(|problem| SHARED_CACHE.url.error(problem))
}

impl OboService {
    /// The shared half of `invalidate`, given what it dropped: drops the identity's
    /// shared entries (or one scope string's) and has every other process drop its
    /// local copies. `None` when there is no shared tier; never fails.
    pub fn invalidate_shared(
        &self,
        dropped: Invalidation,
    ) -> Option<impl Future<Output = ()> + Send + 'static> {
        let tier = self.inner.shared.clone()?;
        Some(async move {
            tier.invalidate(&dropped).await;
        })
    }

    /// The shared half of `clear`; `None` when there is no shared tier.
    pub fn clear_shared(&self) -> Option<impl Future<Output = ()> + Send + 'static> {
        let tier = self.inner.shared.clone()?;
        Some(async move { tier.clear().await })
    }
}
