//! The tier against a real redis-server (started per test, stopped by its pid): records
//! that do not open are counted misses, rotation, the lease with a waiter and with a
//! dead leader. Broker-level runs (two services, outages) are in `broker/shared_tests.rs`.

use std::sync::Mutex;

use super::test_redis::RedisServer;
use super::*;
use crate::config::RingKey;
use crate::ground::identity::IdentityTuple;

pub(super) const KEY: &str =
    "tenant\u{1f}https://idp\u{1f}alice\u{1f}api://mcp/.default\u{1f}0123abcd";
pub(super) const OTHER_SCOPE: &str =
    "tenant\u{1f}https://idp\u{1f}alice\u{1f}api://other\u{1f}0123abcd";

pub(super) fn config(url: &str, keys: &[(u8, u8)]) -> SharedCacheConfig {
    SharedCacheConfig {
        nodes: vec![url.to_owned()],
        cluster: false,
        key_prefix: "test".into(),
        ca: None,
        keys: keys
            .iter()
            .map(|(id, fill)| RingKey {
                id: *id,
                key: [*fill; 32],
            })
            .collect(),
        op_timeout: Duration::from_millis(500),
        lock_ttl: Duration::from_millis(3_000),
        max_wait: Duration::from_millis(3_000),
        breaker_threshold: 3,
        breaker_cooldown: Duration::from_millis(200),
    }
}

pub(super) type Heard = Arc<Mutex<Vec<Eviction>>>;

pub(super) fn tier(config: &SharedCacheConfig) -> (SharedTier, Heard) {
    let heard: Heard = Arc::default();
    let log = Arc::clone(&heard);
    let evictor: Evictor = Arc::new(move |e| log.lock().unwrap().push(e));
    let tier = SharedTier::new(config, Duration::from_secs(30), evictor, Arc::new(|_| {})).unwrap();
    (tier, heard)
}

pub(super) fn token(access_token: &str) -> OboToken {
    OboToken {
        id: 9,
        access_token: access_token.into(),
        expires_in: 3600,
        expires_at: expiry::now_ms() + 3_600_000,
        refresh_at: crate::cache::refresh_points::NEVER,
        traffic: crate::cache::traffic::Traffic::fixed(),
        scope: "api://mcp/.default".into(),
        issued_token_type: None,
    }
}

async fn raw(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Exchanges under whatever `claim` answers (asserting it is not a hit) and writes.
pub(super) async fn fill(tier: &SharedTier, key: &str, access_token: &str) {
    match tier.claim(key).await {
        SharedClaim::Hit(_) => panic!("expected a miss for {access_token}"),
        SharedClaim::Exchange(lease) => tier.finish(lease, &token(access_token)).await,
    }
}

pub(super) async fn served(tier: &SharedTier, key: &str) -> Option<String> {
    match tier.claim(key).await {
        SharedClaim::Hit(token) => Some(token.access_token),
        SharedClaim::Exchange(lease) => {
            tier.abandon(lease).await;
            None
        }
    }
}

#[tokio::test]
#[cfg_attr(
    not(has_redis),
    ignore = "needs redis-server on the PATH (apt-get install redis-server) or REDIS_SERVER; build.rs found none"
)]
async fn records_that_do_not_open_are_counted_misses_and_rotation_reads_old_ones() {
    let server = RedisServer::start();
    let mut redis = raw(&server).await;
    let (a, _) = tier(&config(&server.url(), &[(1, 0xaa)]));
    let (b, _) = tier(&config(&server.url(), &[(1, 0xaa)]));
    fill(&a, KEY, "at-1").await;
    assert_eq!(served(&b, KEY).await.as_deref(), Some("at-1"));
    assert_eq!(b.stats().hits, 1);

    let names = a.inner.names.entry(&a.inner.keys, KEY);
    let record: Vec<u8> = redis::cmd("GET")
        .arg(&names.value)
        .query_async(&mut redis)
        .await
        .unwrap();
    let put = |name: String, bytes: Vec<u8>| {
        let mut redis = redis.clone();
        async move {
            redis::cmd("SET")
                .arg(name)
                .arg(bytes)
                .query_async::<()>(&mut redis)
                .await
                .unwrap()
        }
    };

    // Tampered: one bit of the ciphertext.
    let mut tampered = record.clone();
    *tampered.last_mut().unwrap() ^= 1;
    put(names.value.clone(), tampered).await;
    assert_eq!(served(&b, KEY).await, None);
    assert_eq!(b.stats().decrypt_failures, 1);

    // Copied under another entry's name (the same user's other scope).
    let other = a.inner.names.entry(&a.inner.keys, OTHER_SCOPE);
    put(other.value.clone(), record.clone()).await;
    assert_eq!(served(&b, OTHER_SCOPE).await, None);
    assert_eq!(b.stats().decrypt_failures, 2);

    // An unknown key id.
    let mut unknown = record.clone();
    unknown[0] = 77;
    put(names.value.clone(), unknown).await;
    assert_eq!(served(&b, KEY).await, None);
    assert_eq!(b.stats().decrypt_failures, 3);

    // Rotation: the new ring reads the old key's record and writes with the new key;
    // a process that has only the old key counts the new record as a miss.
    put(names.value.clone(), record.clone()).await;
    let (rotated, _) = tier(&config(&server.url(), &[(2, 0xbb), (1, 0xaa)]));
    assert_eq!(served(&rotated, KEY).await.as_deref(), Some("at-1"));
    fill(&rotated, OTHER_SCOPE, "at-2").await;
    let fresh: Vec<u8> = redis::cmd("GET")
        .arg(&other.value)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(fresh[0], 2);
    assert_eq!(served(&b, OTHER_SCOPE).await, None);
    assert_eq!(b.stats().decrypt_failures, 4);
    assert_eq!(served(&rotated, OTHER_SCOPE).await.as_deref(), Some("at-2"));
}

#[tokio::test]
#[cfg_attr(
    not(has_redis),
    ignore = "needs redis-server on the PATH (apt-get install redis-server) or REDIS_SERVER; build.rs found none"
)]
async fn a_waiter_is_woken_by_the_leaders_fill() {
    let server = RedisServer::start();
    let (a, _) = tier(&config(&server.url(), &[(1, 0xaa)]));
    let (b, _) = tier(&config(&server.url(), &[(1, 0xaa)]));
    waiter_is_woken_by_the_fill(&a, &b).await;
}

/// A leads the exchange of `KEY`; B, already subscribed, waits for it and is woken by
/// A's fill, well before the 3 s lease would end.
pub(super) async fn waiter_is_woken_by_the_fill(a: &SharedTier, b: &SharedTier) {
    assert_eq!(
        served(b, OTHER_SCOPE).await,
        None,
        "B connects and subscribes"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let SharedClaim::Exchange(lease) = a.claim(KEY).await else {
        panic!("A leads");
    };
    let started = Instant::now();
    let waiter = tokio::spawn({
        let b = b.clone();
        async move { served(&b, KEY).await }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    a.finish(lease, &token("at-led")).await;
    assert_eq!(waiter.await.unwrap().as_deref(), Some("at-led"));
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_millis(1_500),
        "woken by the fill, not the lease's end: {waited:?}"
    );
    assert_eq!((a.stats().leader_exchanges, b.stats().waits), (1, 1));
}

#[tokio::test]
#[cfg_attr(
    not(has_redis),
    ignore = "needs redis-server on the PATH (apt-get install redis-server) or REDIS_SERVER; build.rs found none"
)]
async fn a_dead_leaders_lease_costs_only_its_remaining_time() {
    let server = RedisServer::start();
    let mut redis = raw(&server).await;
    let (a, _) = tier(&config(&server.url(), &[(1, 0xaa)]));
    let names = a.inner.names.entry(&a.inner.keys, KEY);
    redis::cmd("SET")
        .arg(&names.lease)
        .arg("dead-leader")
        .arg("PX")
        .arg(800)
        .query_async::<()>(&mut redis)
        .await
        .unwrap();
    let started = Instant::now();
    let SharedClaim::Exchange(lease) = a.claim(KEY).await else {
        panic!("nothing to serve");
    };
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(600) && waited < Duration::from_millis(2_000),
        "{waited:?}"
    );
    // It waited (more than one wait when a Redis reply is late on a busy machine) and then
    // led exactly one exchange.
    let stats = a.stats();
    assert!(stats.waits >= 1, "{stats:?}");
    assert_eq!(stats.leader_exchanges, 1);
    a.finish(lease, &token("at")).await;
    let left: Option<String> = redis::cmd("GET")
        .arg(&names.lease)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(left, None, "the leader released its lease");
}

#[tokio::test]
#[cfg_attr(
    not(has_redis),
    ignore = "needs redis-server on the PATH (apt-get install redis-server) or REDIS_SERVER; build.rs found none"
)]
async fn an_abandoned_lease_is_free_at_once() {
    let server = RedisServer::start();
    let (a, _) = tier(&config(&server.url(), &[(1, 0xaa)]));
    let (b, _) = tier(&config(&server.url(), &[(1, 0xaa)]));
    let SharedClaim::Exchange(lease) = a.claim(KEY).await else {
        panic!("A leads");
    };
    a.abandon(lease).await;
    // "At once" by count, not by clock: B leads with no wait counted.
    assert!(matches!(b.claim(KEY).await, SharedClaim::Exchange(_)));
    let stats = b.stats();
    assert_eq!(
        (stats.leader_exchanges, stats.waits),
        (1, 0),
        "B leads without waiting for A's lease"
    );
}

#[tokio::test]
#[cfg_attr(
    not(has_redis),
    ignore = "needs redis-server on the PATH (apt-get install redis-server) or REDIS_SERVER; build.rs found none"
)]
async fn release_is_compare_and_delete() {
    let server = RedisServer::start();
    let mut redis = raw(&server).await;
    let (a, _) = tier(&config(&server.url(), &[(1, 0xaa)]));
    let SharedClaim::Exchange(lease) = a.claim(KEY).await else {
        panic!("A leads");
    };
    let names = a.inner.names.entry(&a.inner.keys, KEY);
    // The lease expired and another process took it.
    redis::cmd("SET")
        .arg(&names.lease)
        .arg("someone-else")
        .query_async::<()>(&mut redis)
        .await
        .unwrap();
    a.abandon(lease).await;
    let holder: Option<String> = redis::cmd("GET")
        .arg(&names.lease)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(holder.as_deref(), Some("someone-else"));
}

#[tokio::test]
#[cfg_attr(
    not(has_redis),
    ignore = "needs redis-server on the PATH (apt-get install redis-server) or REDIS_SERVER; build.rs found none"
)]
async fn evictions_reach_the_other_tier_sealed() {
    let server = RedisServer::start();
    let (a, _) = tier(&config(&server.url(), &[(1, 0xaa)]));
    let (b, heard) = tier(&config(&server.url(), &[(1, 0xaa)]));
    fill(&a, KEY, "at-1").await;
    assert_eq!(served(&b, KEY).await.as_deref(), Some("at-1"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let alice = IdentityTuple {
        tenant_id: "tenant",
        openid_issuer: "https://idp",
        subject: "alice",
    };
    a.invalidate(&Invalidation::new(&alice, Some("api://mcp/.default")))
        .await;
    let _ = a.forced_lease(OTHER_SCOPE).await;
    a.clear().await;
    let deadline = Instant::now() + Duration::from_secs(3);
    while heard.lock().unwrap().len() < 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        *heard.lock().unwrap(),
        vec![
            Eviction::Prefix(
                "tenant\u{1f}https://idp\u{1f}alice\u{1f}api://mcp/.default\u{1f}".into()
            ),
            Eviction::Key(OTHER_SCOPE.into()),
            Eviction::All
        ]
    );
    assert_eq!(served(&b, KEY).await, None, "the shared copy is gone");
}

/// Dropping the tier closes its connections: the subscriber's task ends with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(has_redis),
    ignore = "needs redis-server on the PATH (apt-get install redis-server) or REDIS_SERVER; build.rs found none"
)]
async fn a_dropped_tier_leaves_no_connection_behind() {
    let server = RedisServer::start();
    let redis = raw(&server).await;
    let clients = |mut redis: redis::aio::MultiplexedConnection| async move {
        let list: String = redis::cmd("CLIENT")
            .arg("LIST")
            .query_async(&mut redis)
            .await
            .unwrap();
        list.lines().count() - 1 // less this connection
    };
    let (a, _) = tier(&config(&server.url(), &[(1, 0xaa)]));
    fill(&a, KEY, "at-1").await;
    let deadline = Instant::now() + Duration::from_secs(3);
    while clients(redis.clone()).await < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(clients(redis.clone()).await, 2, "commands and subscriber");
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(3);
    while clients(redis.clone()).await > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(clients(redis).await, 0);
}

/// A waiter wakes for its own entry's fill only: another entry filled meanwhile does not
/// send it back to Redis (one wait, not two).
#[tokio::test]
#[cfg_attr(
    not(has_redis),
    ignore = "needs redis-server on the PATH (apt-get install redis-server) or REDIS_SERVER; build.rs found none"
)]
async fn a_waiter_sleeps_through_other_entries_fills() {
    let server = RedisServer::start();
    let (a, _) = tier(&config(&server.url(), &[(1, 0xaa)]));
    let (b, _) = tier(&config(&server.url(), &[(1, 0xaa)]));
    assert_eq!(
        served(&b, OTHER_SCOPE).await,
        None,
        "B connects and subscribes"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let SharedClaim::Exchange(lease) = a.claim(KEY).await else {
        panic!("A leads");
    };
    let waiter = tokio::spawn({
        let b = b.clone();
        async move { served(&b, KEY).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    fill(&a, OTHER_SCOPE, "at-other").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    a.finish(lease, &token("at-led")).await;
    assert_eq!(waiter.await.unwrap().as_deref(), Some("at-led"));
    assert_eq!(b.stats().waits, 1);
}

/// `clear` drops the tier's names only: LibreChat's own keys in the same Redis stay, and
/// SCAN batches that match nothing (most of them, here) are stepped over.
#[tokio::test]
#[cfg_attr(
    not(has_redis),
    ignore = "needs redis-server on the PATH (apt-get install redis-server) or REDIS_SERVER; build.rs found none"
)]
async fn clear_leaves_other_keys_alone() {
    let server = RedisServer::start();
    let mut redis = raw(&server).await;
    let mut others = redis::pipe();
    for i in 0..3_000 {
        others
            .set(format!("LibreChat::OPENID_EXCHANGED_TOKENS:{i}"), i)
            .ignore();
    }
    others.query_async::<()>(&mut redis).await.unwrap();
    let (a, _) = tier(&config(&server.url(), &[(1, 0xaa)]));
    let (b, heard) = tier(&config(&server.url(), &[(1, 0xaa)]));
    fill(&a, KEY, "at-1").await;
    assert_eq!(served(&b, KEY).await.as_deref(), Some("at-1"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    a.clear().await;
    let deadline = Instant::now() + Duration::from_secs(3);
    while heard.lock().unwrap().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(*heard.lock().unwrap(), vec![Eviction::All]);
    let left: u64 = redis::cmd("DBSIZE").query_async(&mut redis).await.unwrap();
    assert_eq!(left, 3_000, "only the tier's names went");
}

/// A tier whose Redis runs every write `pause_ms` late (CLIENT PAUSE WRITE): its claim
/// times out at the client (50 ms) and still runs, taking the lease, once the pause ends.
async fn late_writes(server: &RedisServer, pause_ms: u64) -> (SharedTier, String) {
    let mut slow = config(&server.url(), &[(1, 0xaa)]);
    slow.op_timeout = Duration::from_millis(50);
    let (tier, _) = tier(&slow);
    // Connected, with the claim and release scripts loaded, before the pause.
    assert_eq!(served(&tier, OTHER_SCOPE).await, None);
    let lease = tier.inner.names.entry(&tier.inner.keys, KEY).lease;
    redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(pause_ms)
        .arg("WRITE")
        .query_async::<()>(&mut raw(server).await)
        .await
        .unwrap();
    (tier, lease)
}

/// The lease's holder once the pause (1 s) is over: every paused write has run by then.
async fn holder_after_pause(server: &RedisServer, lease: &str) -> Option<String> {
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    redis::cmd("GET")
        .arg(lease)
        .query_async(&mut raw(server).await)
        .await
        .unwrap()
}

/// A claim answered too late may still have taken the lease: the failed exchange then
/// releases it, instead of leaving the other processes to wait `maxWaitMs` for it to run
/// out (the soak's 10 s calls under load).
#[tokio::test]
#[cfg_attr(
    not(has_redis),
    ignore = "needs redis-server on the PATH (apt-get install redis-server) or REDIS_SERVER; build.rs found none"
)]
async fn a_late_claims_lease_is_released_when_the_exchange_fails() {
    let server = RedisServer::start();
    let (a, lease_name) = late_writes(&server, 1_000).await;
    let SharedClaim::Exchange(lease) = a.claim(KEY).await else {
        panic!("nothing to serve");
    };
    assert!(a.stats().timeouts >= 1, "the claim timed out at the client");
    a.abandon(lease).await;
    assert_eq!(holder_after_pause(&server, &lease_name).await, None);
}

/// The same for a refresh-ahead whose claim was answered too late.
#[tokio::test]
#[cfg_attr(
    not(has_redis),
    ignore = "needs redis-server on the PATH (apt-get install redis-server) or REDIS_SERVER; build.rs found none"
)]
async fn a_late_refresh_claims_lease_is_released_when_the_refresh_fails() {
    let server = RedisServer::start();
    let (a, lease_name) = late_writes(&server, 1_000).await;
    let Refresh::Lead(lease) = a.try_refresh(KEY, 0).await else {
        panic!("the refresh leads");
    };
    assert!(a.stats().timeouts >= 1, "the claim timed out at the client");
    a.abandon(lease).await;
    assert_eq!(holder_after_pause(&server, &lease_name).await, None);
}
