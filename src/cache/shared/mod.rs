//! The shared tier: exchanged tokens in Redis, sealed, under HMAC names, with a
//! cross-process lease so N processes make one IdP request, and pub/sub evictions so
//! `invalidate`, `clear` and a forced exchange reach every process.
//!
//! It is never on the hit path (the local tier answers hits) and never fails a call:
//! every method answers something usable when Redis is down, slow or erroring, and
//! a record that does not open is a miss, counted.
//!
//! The broker calls, on a local miss (inside its own single-flight, so one task per
//! process and key gets here): `claim` → a token, or a `Lease` to exchange under; after
//! the exchange `finish` (or `abandon` when it failed). A forced exchange takes its
//! lease with `forced_lease`. `invalidate` and `clear` drop shared copies and tell the
//! other processes to drop theirs (through `Evictor`).

mod ahead;
mod breaker;
mod client;
#[cfg(test)]
mod cluster_tests;
mod connection;
mod lease;
mod names;
mod record;
mod seal;
#[cfg(test)]
pub mod test_redis;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use connection::Connection;
use tokio::sync::broadcast;

pub use ahead::Refresh;

use crate::cache::token::OboToken;
use crate::config::SharedCacheConfig;
use crate::ground::expiry;
use crate::ground::identity::Invalidation;

pub use breaker::BreakerState;
pub use client::{Notice, OnNotice};
pub use seal::{key_from_creds_key, Keyring};

#[cfg(feature = "fuzzing")]
pub(crate) use record::decode as decode_record;

use client::Client;
use lease::{Claimed, Scripts};
use names::EntryNames;
pub(crate) use names::Names;

/// What another process asked this one to drop from its local tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Eviction {
    /// One local key.
    Key(String),
    /// Every local key that starts with this.
    Prefix(String),
    All,
}

/// Applies an eviction to the local tier.
pub type Evictor = Arc<dyn Fn(Eviction) + Send + Sync>;

/// The tier's counters, as `stats()` reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedStats {
    pub hits: u64,
    pub misses: u64,
    pub errors: u64,
    pub timeouts: u64,
    pub decrypt_failures: u64,
    pub waits: u64,
    pub leader_exchanges: u64,
    pub breaker: BreakerState,
}

#[derive(Default)]
struct TierCounters {
    hits: AtomicU64,
    misses: AtomicU64,
    decrypt_failures: AtomicU64,
    waits: AtomicU64,
    leader_exchanges: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// What `claim` answers.
pub enum SharedClaim {
    /// A usable token another process (or this one earlier) exchanged; `id` is 0.
    Hit(OboToken),
    /// Exchange, then `finish` or `abandon` with this.
    Exchange(Lease),
}

/// The right to write one entry, held as the lease's owner or not at all (a waiter
/// that timed out, a forced exchange that found the lease taken). After a claim that
/// failed or answered late, `owner` is the id it claimed under: the script may have run
/// and taken the lease, and `finish` and `abandon` compare before they delete.
pub struct Lease {
    names: Option<EntryNames>,
    owner: Option<String>,
}

/// Fill (`f`) and eviction (`x`) message tags.
const FILL: u8 = b'f';
const EVICT: u8 = b'x';
/// Bound on the waiter's rounds (each also bounded in time).
const MAX_ROUNDS: usize = 8;

/// The tier; cheap to clone.
#[derive(Clone)]
pub struct SharedTier {
    inner: Arc<Tier>,
}

struct Tier {
    client: Client,
    keys: Arc<Keyring>,
    names: Arc<Names>,
    scripts: Scripts,
    /// Entry ids of fills heard on the channel, for this process's waiters.
    fills: broadcast::Sender<Arc<str>>,
    /// Random id of this process's tier, so it ignores its own evictions.
    instance: String,
    buffer: Duration,
    lock_ttl: Duration,
    max_wait: Duration,
    counters: TierCounters,
}

impl SharedTier {
    /// Builds the tier without I/O; it connects inside its first async call.
    /// `buffer` is the expiry buffer (a record with no more left is a miss).
    pub fn new(
        config: &SharedCacheConfig,
        buffer: Duration,
        evictor: Evictor,
        on_notice: OnNotice,
    ) -> Result<Self, String> {
        let keys = Arc::new(Keyring::new(&config.keys));
        let names = Arc::new(Names::new(&config.key_prefix));
        let (fills, _) = broadcast::channel(1024);
        let instance = seal::random_id();
        let on_message = {
            let (keys, names, fills, instance) = (
                Arc::clone(&keys),
                Arc::clone(&names),
                fills.clone(),
                instance.clone(),
            );
            Arc::new(move |payload: &[u8]| {
                hear(payload, &keys, &names, &fills, &instance, &evictor);
            })
        };
        let client = Client::new(config, names.channel().to_owned(), on_message, on_notice)
            .map_err(|e| format!("cannot use the Redis URL: {e}"))?;
        Ok(Self {
            inner: Arc::new(Tier {
                client,
                keys,
                names,
                scripts: Scripts::default(),
                fills,
                instance,
                buffer,
                lock_ttl: config.lock_ttl,
                max_wait: config.max_wait,
                counters: TierCounters::default(),
            }),
        })
    }

    /// On a local miss: the shared token, or the lease to exchange under (a waiter
    /// gets one only after waiting at most min(lease's remaining time, maxWaitMs)).
    pub async fn claim(&self, key: &str) -> SharedClaim {
        let tier = &self.inner;
        let names = tier.names.entry(&tier.keys, key);
        // Subscribe before the first read, so a fill between the read and the wait
        // is not missed.
        let mut heard = tier.fills.subscribe();
        let deadline = Instant::now() + tier.max_wait;
        let owner = seal::random_id();
        let mut skip_value = false;
        for _ in 0..MAX_ROUNDS {
            let claimed = tier.claim_once(&names, &owner, skip_value).await;
            match claimed {
                // Redis skipped (breaker open), failed or slow: not a shared miss. A late
                // answer may still have taken the lease, so the owner goes along to release
                // it; else the others would wait `max_wait` for it to run out.
                None => {
                    return SharedClaim::Exchange(Lease {
                        names: Some(names),
                        owner: Some(owner),
                    })
                }
                Some(None) => break,
                Some(Some(Claimed::Value(record))) => match tier.read(&names.value, &record) {
                    Some(token) => {
                        bump(&tier.counters.hits);
                        return SharedClaim::Hit(token);
                    }
                    None => skip_value = true,
                },
                Some(Some(Claimed::Leader)) => {
                    bump(&tier.counters.misses);
                    bump(&tier.counters.leader_exchanges);
                    return SharedClaim::Exchange(Lease {
                        names: Some(names),
                        owner: Some(owner),
                    });
                }
                Some(Some(Claimed::Held(remaining))) => {
                    let now = Instant::now();
                    if now >= deadline {
                        break;
                    }
                    bump(&tier.counters.waits);
                    let until = deadline.min(now + Duration::from_millis(remaining));
                    wait_for_fill(&mut heard, &names.entry, until).await;
                }
            }
        }
        bump(&tier.counters.misses);
        SharedClaim::Exchange(Lease {
            names: Some(names),
            owner: None,
        })
    }

    /// A forced exchange (`fromCache=false`): drops the shared copy, tells the other
    /// processes to drop theirs, and takes the lease when it is free.
    pub async fn forced_lease(&self, key: &str) -> Lease {
        let tier = &self.inner;
        let names = tier.names.entry(&tier.keys, key);
        let owner = seal::random_id();
        let eviction = tier.eviction(&Eviction::Key(key.to_owned()));
        let got = tier
            .client
            .run(|mut c: Connection| {
                let mut call = tier.scripts.forced.prepare_invoke();
                call.key(&names.value)
                    .key(&names.lease)
                    .arg(&owner)
                    .arg(tier.lock_ttl.as_millis() as u64)
                    .arg(tier.names.channel())
                    .arg(eviction);
                async move { call.invoke_async::<i64>(&mut c).await }
            })
            .await;
        Lease {
            owner: (got == Some(1)).then_some(owner),
            names: Some(names),
        }
    }

    /// After a successful exchange: writes the token, wakes the waiters, and releases
    /// the lease if held.
    pub async fn finish(&self, lease: Lease, token: &OboToken) {
        let tier = &self.inner;
        let Some(names) = lease.names else { return };
        let ttl = expiry::cache_ttl(token.expires_at, tier.buffer, expiry::now_ms());
        let sealed = tier.keys.seal(&names.value, &record::encode(token));
        let fill = fill_message(&names.entry);
        tier.client
            .run(|mut c: Connection| {
                let mut call = tier.scripts.finish.prepare_invoke();
                call.key(&names.value)
                    .key(&names.lease)
                    .key(&names.index)
                    .arg(sealed)
                    .arg(ttl.as_millis() as u64)
                    .arg(lease.owner.as_deref().unwrap_or(""))
                    .arg(&names.member)
                    .arg(tier.names.channel())
                    .arg(fill);
                async move { call.invoke_async::<i64>(&mut c).await }
            })
            .await;
    }

    /// After a failed exchange: releases the lease (compare-and-delete) and wakes the
    /// waiters, one of which takes over. Redis never holds the failure.
    pub async fn abandon(&self, lease: Lease) {
        let tier = &self.inner;
        let (Some(names), Some(owner)) = (lease.names, lease.owner) else {
            return;
        };
        tier.client
            .run(|mut c: Connection| {
                let mut call = tier.scripts.release.prepare_invoke();
                call.key(&names.lease)
                    .arg(owner)
                    .arg(tier.names.channel())
                    .arg(fill_message(&names.entry));
                async move { call.invoke_async::<i64>(&mut c).await }
            })
            .await;
    }

    /// Drops the shared entries of one identity, or of one scope string of it, and has
    /// every process drop its local copies.
    pub async fn invalidate(&self, dropped: &Invalidation) {
        let tier = &self.inner;
        let names = tier.names.identity(&tier.keys, dropped);
        let eviction = tier.eviction(&Eviction::Prefix(dropped.prefix().to_owned()));
        tier.client
            .run(|mut c: Connection| {
                let mut call = tier.scripts.invalidate.prepare_invoke();
                call.key(&names.index)
                    .arg(&names.value_prefix)
                    .arg(&names.member_prefix)
                    .arg(tier.names.channel())
                    .arg(eviction);
                async move { call.invoke_async::<i64>(&mut c).await }
            })
            .await;
    }

    /// Drops every entry of the namespace (SCAN + DEL on each node that holds keys,
    /// bounded) and has every process clear its local tier.
    pub async fn clear(&self) {
        let tier = &self.inner;
        let pattern = tier.names.pattern();
        let eviction = tier.eviction(&Eviction::All);
        let budget = (tier.client_timeout() * 20).max(Duration::from_secs(2));
        tier.client
            .run_within(budget, |mut c: Connection| async move {
                c.delete_matching(&pattern).await?;
                redis::cmd("PUBLISH")
                    .arg(tier.names.channel())
                    .arg(eviction)
                    .query_async::<i64>(&mut c)
                    .await
            })
            .await;
    }

    pub fn stats(&self) -> SharedStats {
        let tier = &self.inner;
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        SharedStats {
            hits: load(&tier.counters.hits),
            misses: load(&tier.counters.misses),
            errors: load(&tier.client.failures.errors),
            timeouts: load(&tier.client.failures.timeouts),
            decrypt_failures: load(&tier.counters.decrypt_failures),
            waits: load(&tier.counters.waits),
            leader_exchanges: load(&tier.counters.leader_exchanges),
            breaker: tier.client.breaker(),
        }
    }
}

impl Tier {
    /// A stored record's token, if it opens and is still usable; a record that does
    /// not open is counted.
    /// One run of the claim script: the value (unless `skip_value`), else the lease for
    /// `owner`, else how long the lease is still held. `None` when Redis was skipped,
    /// failed or was slow.
    async fn claim_once(
        &self,
        names: &EntryNames,
        owner: &str,
        skip_value: bool,
    ) -> Option<Option<Claimed>> {
        self.client
            .run(|mut c: Connection| {
                let mut call = self.scripts.claim.prepare_invoke();
                call.key(&names.value)
                    .key(&names.lease)
                    .arg(owner)
                    .arg(self.lock_ttl.as_millis() as u64)
                    .arg(if skip_value { "1" } else { "0" });
                async move { call.invoke_async::<redis::Value>(&mut c).await }
            })
            .await
            .map(|value| Claimed::parse(&value))
    }

    fn read(&self, name: &str, sealed: &[u8]) -> Option<OboToken> {
        let Ok(plain) = self.keys.open(name, sealed) else {
            bump(&self.counters.decrypt_failures);
            return None;
        };
        record::decode(&plain, self.buffer, expiry::now_ms())
    }

    fn client_timeout(&self) -> Duration {
        self.client.op_timeout
    }

    /// `x || seal(channel, instance || kind || text)`: the channel carries no key or
    /// identity in the clear.
    fn eviction(&self, eviction: &Eviction) -> Vec<u8> {
        let (kind, text) = match eviction {
            Eviction::Key(key) => (b'k', key.as_str()),
            Eviction::Prefix(prefix) => (b'p', prefix.as_str()),
            Eviction::All => (b'a', ""),
        };
        let mut plain = Vec::with_capacity(self.instance.len() + 1 + text.len());
        plain.extend_from_slice(self.instance.as_bytes());
        plain.push(kind);
        plain.extend_from_slice(text.as_bytes());
        let mut message = vec![EVICT];
        message.extend(self.keys.seal(self.names.channel(), &plain));
        message
    }
}

fn fill_message(entry: &str) -> Vec<u8> {
    let mut message = vec![FILL];
    message.extend_from_slice(entry.as_bytes());
    message
}

/// A message on the channel: a fill wakes this process's waiters for that entry; an
/// eviction from another process (that opens with our ring) drops local copies.
pub(crate) fn hear(
    payload: &[u8],
    keys: &Keyring,
    names: &Names,
    fills: &broadcast::Sender<Arc<str>>,
    instance: &str,
    evictor: &Evictor,
) {
    match payload.split_first() {
        Some((&FILL, entry)) => {
            if let Ok(entry) = std::str::from_utf8(entry) {
                let _ = fills.send(entry.into());
            }
        }
        Some((&EVICT, sealed)) => {
            let Ok(plain) = keys.open(names.channel(), sealed) else {
                return;
            };
            // Our own eviction: we dropped our copy when we sent it.
            if !plain.starts_with(instance.as_bytes()) {
                evict(&plain, instance.len(), evictor);
            }
        }
        _ => {}
    }
}

fn evict(plain: &[u8], instance_len: usize, evictor: &Evictor) {
    let Some((&kind, text)) = plain.get(instance_len..).and_then(<[u8]>::split_first) else {
        return;
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    match kind {
        b'k' => evictor(Eviction::Key(text.to_owned())),
        b'p' => evictor(Eviction::Prefix(text.to_owned())),
        b'a' => evictor(Eviction::All),
        _ => {}
    }
}

/// Waits until a fill for `entry` is heard, or `until`.
async fn wait_for_fill(heard: &mut broadcast::Receiver<Arc<str>>, entry: &str, until: Instant) {
    let until = tokio::time::Instant::from_std(until);
    for _ in 0..10_000 {
        match tokio::time::timeout_at(until, heard.recv()).await {
            Ok(Ok(filled)) if &*filled == entry => return,
            Ok(Ok(_)) => continue,
            // Lagged: a fill may be among the lost; closed: nothing more will come.
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => return,
            Ok(Err(broadcast::error::RecvError::Closed)) | Err(_) => {
                tokio::time::sleep_until(until).await;
                return;
            }
        }
    }
}
