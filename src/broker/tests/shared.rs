//! Two services ("processes") against one real redis-server and one scripted token
//! endpoint: one exchange for both, evictions across them, a Redis outage, and what
//! Redis holds afterwards.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::prelude::{Engine, BASE64_URL_SAFE_NO_PAD};

use super::*;
use crate::cache::shared::test_redis::RedisServer;
use crate::cache::shared::BreakerState;
use crate::config::{Options, SharedCacheOptions};
use crate::test_server::{json, Reply, TestServer};

const KEY_HEX: &str = "8f2b0c4d6e8fa0b2c4d6e8f0a2b4c6d8e0f2a4b6c8d0e2f4a6b8c0d2e4f6a8b0";
const SCOPES: &str = "api://mcp-secret-scope/.default";
const SUBJECT: &str = "alice-object-id-7f3e";
const TENANT: &str = "contoso-tenant-91ab";

fn token_reply(access_token: &str) -> Reply {
    json(
        200,
        &format!(r#"{{"access_token":"{access_token}","token_type":"Bearer","expires_in":3599}}"#),
    )
    .delayed(Duration::from_millis(150))
}

/// A JWS-shaped assertion, distinct per `n`, that passes the precheck.
fn assertion(n: u32) -> String {
    let claims = format!(r#"{{"sub":"{SUBJECT}","exp":4102444800,"n":{n}}}"#);
    format!(
        "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.{}.c2ln",
        BASE64_URL_SAFE_NO_PAD.encode(claims)
    )
}

type Lines = Arc<Mutex<Vec<String>>>;

fn service(idp: &TestServer, redis_url: &str) -> (OboService, Lines) {
    let options = Options {
        issuer: Some(idp.url.clone()),
        client_id: Some("middle-tier".into()),
        client_secret: Some("middle-secret".into()),
        token_endpoint: Some(format!("{}/token", idp.url)),
        retry_delay_ms: Some(1.0),
        shared_cache: Some(SharedCacheOptions {
            url: Some(redis_url.to_owned()),
            key_prefix: Some("deploy42".into()),
            encryption_keys: vec![format!("1:{KEY_HEX}")],
            op_timeout_ms: Some(100.0),
            lock_ttl_ms: Some(5_000.0),
            max_wait_ms: Some(5_000.0),
            ..SharedCacheOptions::default()
        }),
        ..Options::default()
    };
    let mut config = Config::from_options(options).unwrap();
    if let Some(shared) = config.shared_cache.as_mut() {
        shared.breaker_cooldown = Duration::from_millis(300);
    }
    let lines: Lines = Arc::default();
    let log = Arc::clone(&lines);
    let logger: Logger = Arc::new(move |_, line| log.lock().unwrap().push(line));
    (OboService::new(config, Some(logger)).unwrap(), lines)
}

fn user() -> IdentitySource<'static> {
    IdentitySource {
        subject: Some(SUBJECT),
        tenant_id: Some(TENANT),
        openid_issuer: None,
    }
}

fn request(svc: &OboService, assertion: &str, from_cache: bool) -> Request {
    svc.prepare(Call {
        user: user(),
        context: None,
        access_token: assertion,
        scopes: SCOPES,
        target: Target::default(),
        claims: None,
        resource_metadata: None,
        from_cache,
    })
    .unwrap()
}

fn local_hit(svc: &OboService, assertion: &str) -> Option<String> {
    let digest = AssertionDigest::of(assertion);
    svc.cached_by_digest(&user(), None, digest.as_str(), SCOPES, &Target::default())
        .unwrap()
        .map(|t| t.token.access_token.clone())
}

/// Polls until `svc` no longer holds a local copy (bounded: 3 s).
async fn dropped_locally(svc: &OboService, assertion: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if local_hit(svc, assertion).is_none() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(has_redis),
    ignore = "needs redis-server on the PATH (apt-get install redis-server) or REDIS_SERVER; build.rs found none"
)]
async fn two_processes_make_one_exchange_and_share_it() {
    let redis = RedisServer::start();
    let idp = TestServer::start(vec![token_reply("at-shared-1"), token_reply("at-dup")]).await;
    let (a, _) = service(&idp, &redis.url());
    let (b, _) = service(&idp, &redis.url());
    let jwt = assertion(1);
    let calls: Vec<_> = (0..50)
        .map(|i| {
            let svc = if i % 2 == 0 { &a } else { &b };
            tokio::spawn(svc.exchange(request(svc, &jwt, true)))
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap().access_token, "at-shared-1");
    }
    assert_eq!(
        idp.received().len(),
        1,
        "one IdP request for both processes"
    );
    let (sa, sb) = (a.stats(), b.stats());
    assert_eq!(sa.shared_leader_exchanges + sb.shared_leader_exchanges, 1);
    assert_eq!(sa.exchanges + sb.exchanges, 1);
    assert_eq!(local_hit(&b, &jwt).as_deref(), Some("at-shared-1"));

    // A third process serves what A exchanged, with no request.
    let (c, _) = service(&idp, &redis.url());
    let token = c.exchange(request(&c, &jwt, true)).await.unwrap();
    assert_eq!(token.access_token, "at-shared-1");
    assert_eq!(idp.received().len(), 1);
    assert_eq!((c.stats().shared_hits, c.stats().exchanges), (1, 0));
    assert_eq!(c.stats().shared_breaker, Some(BreakerState::Closed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(has_redis),
    ignore = "needs redis-server on the PATH (apt-get install redis-server) or REDIS_SERVER; build.rs found none"
)]
async fn invalidate_and_forced_refresh_on_a_evict_bs_copy() {
    let redis = RedisServer::start();
    let idp = TestServer::start(vec![
        token_reply("at-first"),
        token_reply("at-refreshed"),
        token_reply("at-after-invalidate"),
    ])
    .await;
    let (a, _) = service(&idp, &redis.url());
    let (b, _) = service(&idp, &redis.url());
    let jwt = assertion(2);
    a.exchange(request(&a, &jwt, true)).await.unwrap();
    b.exchange(request(&b, &jwt, true)).await.unwrap();
    assert_eq!(local_hit(&b, &jwt).as_deref(), Some("at-first"));
    tokio::time::sleep(Duration::from_millis(100)).await; // B's subscriber is up

    // An MCP 401 on A: forced exchange. B drops the rejected token and then serves A's.
    let fresh = a.exchange(request(&a, &jwt, false)).await.unwrap();
    assert_eq!(fresh.access_token, "at-refreshed");
    assert!(
        dropped_locally(&b, &jwt).await,
        "B still serves the rejected token"
    );
    let served = b.exchange(request(&b, &jwt, true)).await.unwrap();
    assert_eq!(served.access_token, "at-refreshed");
    assert_eq!(idp.received().len(), 2);

    // Logout on A: B's copy goes, and so does the shared one.
    let (_, dropped) = a.invalidate(&user(), None, None).unwrap();
    a.invalidate_shared(dropped).unwrap().await;
    assert!(
        dropped_locally(&b, &jwt).await,
        "B kept an invalidated token"
    );
    let next = b.exchange(request(&b, &jwt, true)).await.unwrap();
    assert_eq!(next.access_token, "at-after-invalidate");
    assert_eq!(idp.received().len(), 3);

    // clear() on A empties B's local tier too.
    a.clear();
    a.clear_shared().unwrap().await;
    assert!(
        dropped_locally(&b, &jwt).await,
        "B kept its tokens after clear"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(has_redis),
    ignore = "needs redis-server on the PATH (apt-get install redis-server) or REDIS_SERVER; build.rs found none"
)]
async fn a_redis_outage_costs_a_bounded_delay_and_the_tier_comes_back() {
    let mut redis = RedisServer::start();
    let port = redis.port;
    let idp = TestServer::start(vec![token_reply("at-any")]).await;
    let (a, lines) = service(&idp, &redis.url());
    let breaker = Arc::new(Mutex::new(Vec::new()));
    let heard = Arc::clone(&breaker);
    a.observe(Arc::new(move |event: Event| {
        if let Some(state) = event.breaker {
            assert_eq!((event.identity.as_str(), event.key.as_str()), ("", ""));
            heard.lock().unwrap().push(state);
        }
    }));
    a.exchange(request(&a, &assertion(100), true))
        .await
        .unwrap();

    redis.stop();
    let mut worst = Duration::ZERO;
    for n in 0..8 {
        let started = Instant::now();
        let token = a.exchange(request(&a, &assertion(200 + n), true)).await;
        assert_eq!(token.unwrap().access_token, "at-any");
        worst = worst.max(started.elapsed());
    }
    // 150 ms exchange + at most two Redis operations of 100 ms each. The bound is generous
    // (a busy machine cannot break it); it still tells the op timeout from a call that
    // waits for Redis' connect or command timeouts (seconds), or hangs.
    assert!(worst < Duration::from_secs(5), "worst call {worst:?}");
    let stats = a.stats();
    assert_eq!(stats.shared_breaker, Some(BreakerState::Open));
    assert!(
        stats.shared_errors + stats.shared_timeouts >= 3,
        "{stats:?}"
    );
    assert_eq!(stats.failures, 0);
    let warnings = |lines: &Lines| {
        lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("Shared cache unavailable"))
            .count()
    };
    assert_eq!(warnings(&lines), 1, "one line per state change");

    // Redis is back on the same port: the probe closes the breaker, and B reads A's write.
    let Some(Ok(_again)) = RedisServer::start_on(port) else {
        panic!("redis-server did not restart on port {port}");
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut n = 300;
    while a.stats().shared_breaker != Some(BreakerState::Closed) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        a.exchange(request(&a, &assertion(n), true)).await.unwrap();
        n += 1;
    }
    assert_eq!(a.stats().shared_breaker, Some(BreakerState::Closed));
    assert_eq!(
        *breaker.lock().unwrap(),
        [BreakerState::Open, BreakerState::Closed],
        "one shared:breaker event per change"
    );
    let jwt = assertion(999);
    a.exchange(request(&a, &jwt, true)).await.unwrap();
    let (b, _) = service(&idp, &redis.url());
    let before = idp.received().len();
    b.exchange(request(&b, &jwt, true)).await.unwrap();
    assert_eq!(
        idp.received().len(),
        before,
        "B served A's token from Redis"
    );
    assert_eq!(b.stats().shared_hits, 1);
    assert!(lines
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("available again")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(has_redis),
    ignore = "needs redis-server on the PATH (apt-get install redis-server) or REDIS_SERVER; build.rs found none"
)]
async fn a_redis_that_never_answers_costs_at_most_the_op_timeout() {
    let redis = RedisServer::start();
    let idp = TestServer::start(vec![token_reply("at-any")]).await;
    let (a, lines) = service(&idp, &redis.url());
    a.exchange(request(&a, &assertion(1), true)).await.unwrap();
    redis.freeze(true);
    let mut worst = Duration::ZERO;
    for n in 0..6 {
        let started = Instant::now();
        let token = a.exchange(request(&a, &assertion(10 + n), true)).await;
        assert_eq!(token.unwrap().access_token, "at-any");
        worst = worst.max(started.elapsed());
    }
    redis.freeze(false);
    // 150 ms exchange + claim and finish, each cut at opTimeoutMs (100 ms). Generous, so a
    // busy machine cannot break it; a frozen Redis without the op timeout would hang the
    // call for good, which this still catches.
    assert!(worst < Duration::from_secs(5), "worst call {worst:?}");
    let stats = a.stats();
    assert!(stats.shared_timeouts >= 3, "{stats:?}");
    assert_eq!(stats.shared_breaker, Some(BreakerState::Open));
    assert_eq!(stats.failures, 0);
    let warned = lines
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("no answer within 100 ms"))
        .count();
    assert_eq!(warned, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(has_redis),
    ignore = "needs redis-server on the PATH (apt-get install redis-server) or REDIS_SERVER; build.rs found none"
)]
async fn redis_holds_no_token_or_identity_in_the_clear() {
    let redis = RedisServer::start();
    let idp = TestServer::start(vec![token_reply("eyJ-secret-downstream-token")]).await;
    let (a, _) = service(&idp, &redis.url());
    let (b, _) = service(&idp, &redis.url());
    for n in 0..3 {
        let jwt = assertion(n);
        a.exchange(request(&a, &jwt, true)).await.unwrap();
        b.exchange(request(&b, &jwt, true)).await.unwrap();
    }
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(keys.len() >= 4, "{keys:?}");
    let mut everything: Vec<u8> = Vec::new();
    for key in &keys {
        assert!(key.starts_with("deploy42::OBO_L2:"), "{key}");
        everything.extend_from_slice(key.as_bytes());
        let kind: String = redis::cmd("TYPE")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
        let values: Vec<Vec<u8>> = match kind.as_str() {
            "string" => vec![redis::cmd("GET")
                .arg(key)
                .query_async(&mut conn)
                .await
                .unwrap()],
            "set" => redis::cmd("SMEMBERS")
                .arg(key)
                .query_async(&mut conn)
                .await
                .unwrap(),
            other => panic!("unexpected {other} at {key}"),
        };
        for value in values {
            everything.extend_from_slice(&value);
        }
    }
    let digest = AssertionDigest::of(&assertion(0));
    for secret in [
        "eyJ-secret-downstream-token",
        "secret-downstream",
        SUBJECT,
        TENANT,
        SCOPES,
        "mcp-secret-scope",
        digest.as_str(),
        &idp.url,
    ] {
        assert!(
            !everything
                .windows(secret.len())
                .any(|w| w == secret.as_bytes()),
            "Redis holds {secret} in the clear"
        );
    }
}

/// A short-lived token (32 s, so 2 s usable past the default 30 s buffer) whose
/// refresh point comes 0.1 s after it is obtained; 0.8 s later, the silence since then
/// (1.5 × 0.8 s, plus time for the exchange) covers the 1.2 s left, so a hit refreshes.
fn short_reply(access_token: &str) -> Reply {
    json(
        200,
        &format!(r#"{{"access_token":"{access_token}","token_type":"Bearer","expires_in":32}}"#),
    )
    .delayed(Duration::from_millis(100))
}

fn refreshing(idp: &TestServer, redis_url: &str) -> OboService {
    let (svc, _) = service(idp, redis_url);
    let mut config = svc.inner.config.clone();
    config.refresh_ahead = Some(0.05);
    OboService::new(config, None).unwrap()
}

/// The cached token of `svc`, whether its refresh is due now.
fn due(svc: &OboService, jwt: &str) -> (String, bool) {
    let digest = AssertionDigest::of(jwt);
    let hit = svc
        .cached_by_digest(&user(), None, digest.as_str(), SCOPES, &Target::default())
        .unwrap()
        .unwrap();
    (hit.token.access_token.clone(), hit.refresh_due)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(has_redis),
    ignore = "needs redis-server on the PATH (apt-get install redis-server) or REDIS_SERVER; build.rs found none"
)]
async fn the_fleet_refreshes_a_key_once_and_the_others_adopt_it() {
    let redis = RedisServer::start();
    let idp = TestServer::start(vec![short_reply("at-first"), short_reply("at-refreshed")]).await;
    let a = refreshing(&idp, &redis.url());
    let b = refreshing(&idp, &redis.url());
    let ends = Arc::new(Mutex::new(Vec::new()));
    for svc in [&a, &b] {
        let ends = Arc::clone(&ends);
        svc.observe(Arc::new(move |event: Event| {
            if event.channel.name() == "refresh:end" {
                ends.lock().unwrap().push(event.outcome);
            }
        }));
    }
    let jwt = assertion(7);
    a.exchange(request(&a, &jwt, true)).await.unwrap();
    b.exchange(request(&b, &jwt, true)).await.unwrap();
    assert_eq!(idp.received().len(), 1, "b took a's token from Redis");
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (served_a, due_a) = due(&a, &jwt);
    let (served_b, due_b) = due(&b, &jwt);
    assert_eq!(
        (served_a.as_str(), served_b.as_str()),
        ("at-first", "at-first")
    );
    assert!(due_a && due_b, "both are past their refresh point");
    let refresh_a = a.refresh(request(&a, &jwt, true)).unwrap();
    let refresh_b = b.refresh(request(&b, &jwt, true)).unwrap();
    tokio::join!(refresh_a, refresh_b);
    assert_eq!(idp.received().len(), 2, "one refresh for both processes");
    let mut outcomes = ends.lock().unwrap().clone();
    outcomes.sort_by_key(|o| format!("{o:?}"));
    assert_eq!(
        outcomes,
        [Some(Outcome::Skipped), Some(Outcome::Success)],
        "the loser's refresh:end says it skipped"
    );
    // Each look at the cache is a hit that may claim the next refresh, so look once.
    let after: Vec<(String, bool)> = [&a, &b].iter().map(|svc| due(svc, &jwt)).collect();
    let winner = after.iter().position(|(token, _)| token == "at-refreshed");
    let loser = match winner {
        Some(0) => &b,
        Some(_) => &a,
        None => panic!("nobody refreshed: {after:?}"),
    };
    let (old, due_again) = &after[1 - winner.unwrap()];
    assert_eq!(
        (old.as_str(), *due_again),
        ("at-first", true),
        "the loser kept serving its valid token and is due again"
    );
    // Its next refresh adopts the winner's token from Redis, with no exchange.
    loser.refresh(request(loser, &jwt, true)).unwrap().await;
    assert_eq!(due(loser, &jwt).0, "at-refreshed");
    assert_eq!(idp.received().len(), 2, "adopted, not exchanged again");
}
