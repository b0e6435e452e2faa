//! Refresh-ahead and the events: a hit past the refresh point is served at once and
//! starts one background exchange; a failure keeps the token and waits for a backoff;
//! an assertion about to expire is not sent; events tell all of it and no secret.

use std::sync::Mutex;

use super::*;

/// Two seconds of life, and the IdP's `refresh_in` puts the refresh point about 100 ms
/// after the exchange, whatever the traffic (a fixed point: see `traffic.rs`).
const FIRST: &str = r#"{"access_token":"first-at","expires_in":2,"refresh_in":0.1}"#;
/// Two seconds of life and no `refresh_in`: the point is `refreshAhead` of it, and the
/// traffic may move it later.
const FIRST_BY_FRACTION: &str = r#"{"access_token":"first-at","expires_in":2}"#;
const SECOND: &str = r#"{"access_token":"second-at","expires_in":60}"#;
const REFUSED: &str = r#"{"error":"invalid_grant","error_description":"AADSTS50013: alice@example.com, assertion refused","error_codes":[50013]}"#;

struct Watched {
    svc: OboService,
    logs: Arc<Mutex<Vec<(Level, String)>>>,
    events: Arc<Mutex<Vec<Event>>>,
}

fn watched(server: &TestServer, tweak: impl FnOnce(&mut Options)) -> Watched {
    let mut options = Options {
        max_retries: Some(0.0),
        expiry_buffer_seconds: Some(0.0),
        refresh_ahead: Some(crate::config::RefreshAhead::Fraction(0.05)),
        ..options(server)
    };
    tweak(&mut options);
    let logs = Arc::new(Mutex::new(Vec::new()));
    let logger: Logger = {
        let logs = Arc::clone(&logs);
        Arc::new(move |level, line| logs.lock().unwrap().push((level, line)))
    };
    let svc = OboService::new(Config::from_options(options).unwrap(), Some(logger)).unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink: EventSink = {
        let events = Arc::clone(&events);
        Arc::new(move |event| events.lock().unwrap().push(event))
    };
    svc.observe(sink);
    Watched { svc, logs, events }
}

fn lookup(svc: &OboService) -> Option<Hit> {
    lookup_for(svc, ASSERTION)
}

/// The hot path's lookup of alice's token for `assertion`.
fn lookup_for(svc: &OboService, assertion: &str) -> Option<Hit> {
    let digest = AssertionDigest::of(assertion);
    svc.cached_by_digest(
        &user("alice"),
        None,
        digest.as_str(),
        "api://mcp/.default",
        &Target::default(),
    )
    .unwrap()
}

/// Waits until `token`'s refresh point has passed.
async fn past_refresh_point(token: &OboToken) {
    // Bounded, so a wrong refresh point fails the test instead of hanging it.
    let wait = token.refresh_at.saturating_sub(expiry::now_ms()) + 20;
    tokio::time::sleep(Duration::from_millis(wait.min(5_000))).await;
}

#[tokio::test]
async fn a_hit_past_the_refresh_point_is_served_and_starts_one_refresh() {
    let server = TestServer::start(vec![
        json(200, FIRST),
        json(200, SECOND).delayed(Duration::from_millis(150)),
    ])
    .await;
    let Watched { svc, logs, events } = watched(&server, |_| {});
    let first = svc.exchange(request(&svc, "alice", true)).await.unwrap();
    let offset = (first.refresh_at - first.obtained_at()) as f64;
    assert!(
        (100.0 * 0.95..=100.0 * 1.05).contains(&offset),
        "refresh point {offset} ms after the exchange"
    );
    assert!(!lookup(&svc).unwrap().refresh_due, "not before the point");

    past_refresh_point(&first).await;
    let due = lookup(&svc).unwrap();
    assert_eq!((due.token.id, due.refresh_due), (first.id, true));
    let again = lookup(&svc).unwrap();
    assert_eq!(
        (again.token.id, again.refresh_due),
        (first.id, false),
        "one refresh per key"
    );

    let work = svc
        .refresh(request(&svc, "alice", true))
        .expect("the claim starts it");
    assert!(
        svc.refresh(request(&svc, "alice", true)).is_none(),
        "and only once"
    );
    let running = tokio::spawn(work);
    tokio::time::sleep(Duration::from_millis(30)).await;
    let during = lookup(&svc).unwrap();
    assert_eq!(
        (during.token.id, during.refresh_due),
        (first.id, false),
        "served meanwhile"
    );
    running.await.unwrap();

    let after = lookup(&svc).unwrap();
    assert_eq!(after.token.access_token, "second-at");
    assert!(!after.refresh_due);
    assert_eq!(server.received().len(), 2);
    let stats = svc.stats();
    assert_eq!(
        (
            stats.refreshes_started,
            stats.refreshes_succeeded,
            stats.refreshes_failed
        ),
        (1, 1, 0)
    );
    assert_eq!(stats.served_during_refresh, 3);
    assert_eq!((stats.exchanges, stats.failures), (2, 0));
    assert!(logs
        .lock()
        .unwrap()
        .iter()
        .all(|(level, _)| *level == Level::Debug));

    let names: Vec<(&str, bool)> = events
        .lock()
        .unwrap()
        .iter()
        .map(|e| (e.channel.name(), e.refresh))
        .collect();
    assert_eq!(
        names,
        [
            ("exchange:start", false),
            ("exchange:end", false),
            ("refresh:start", false),
            ("exchange:start", true),
            ("exchange:end", true),
            ("refresh:end", false),
        ]
    );
    let events = events.lock().unwrap();
    let end = &events[4];
    assert_eq!(end.outcome, Some(Outcome::Success));
    assert_eq!(end.grant, Some(grant::GrantKind::OnBehalfOf));
    let took = end.duration_ms.unwrap();
    assert!(
        (100.0..900.0).contains(&took),
        "{took} ms for a 150 ms answer"
    );
    assert_eq!(end.scopes, "api://mcp/.default");
    assert_eq!(events[5].outcome, Some(Outcome::Success));
    let refresh_took = events[5].duration_ms.unwrap();
    assert!((100.0..900.0).contains(&refresh_took), "{refresh_took} ms");
    assert!(events
        .iter()
        .all(|e| e.identity == events[0].identity && e.key == events[0].key));
}

#[tokio::test]
async fn a_failed_refresh_keeps_the_token_and_waits_for_its_backoff() {
    let server = TestServer::start(vec![
        json(200, FIRST),
        json(
            503,
            r#"{"error":"temporarily_unavailable","error_codes":[50196]}"#,
        ),
        json(200, SECOND),
    ])
    .await;
    let Watched { svc, logs, events } = watched(&server, |_| {});
    let first = svc.exchange(request(&svc, "alice", true)).await.unwrap();
    past_refresh_point(&first).await;
    assert!(lookup(&svc).unwrap().refresh_due);
    svc.refresh(request(&svc, "alice", true)).unwrap().await;

    let kept = lookup(&svc).unwrap();
    assert_eq!(kept.token, first, "the valid token stays");
    assert!(!kept.refresh_due, "no retry before the backoff");
    let stats = svc.stats();
    assert_eq!(
        (stats.refreshes_failed, stats.failures, stats.entries),
        (1, 0, 1)
    );
    let warnings: Vec<String> = logs
        .lock()
        .unwrap()
        .iter()
        .filter(|(level, _)| *level != Level::Debug)
        .map(|(level, line)| format!("{level:?} {line}"))
        .collect();
    assert_eq!(warnings.len(), 1, "logged once: {warnings:?}");
    assert!(
        warnings[0].starts_with("Warn [OboTokenService] OBO refresh-ahead failed for user: alice")
    );
    assert!(
        warnings[0].contains("next attempt in 1 s"),
        "{}",
        warnings[0]
    );
    {
        let events = events.lock().unwrap();
        let end = events
            .iter()
            .find(|e| e.channel == Channel::ExchangeEnd && e.refresh)
            .unwrap();
        assert_eq!(end.outcome, Some(Outcome::Failure));
        assert_eq!(end.error.as_deref(), Some("temporarily_unavailable"));
        assert_eq!(end.error_codes, Some(vec![50196]));
        assert_eq!(end.status, Some(503));
        assert_eq!(events.last().unwrap().outcome, Some(Outcome::Failure));
    }

    // After the backoff (1 s), the next hit tries again, and that one succeeds.
    tokio::time::sleep(Duration::from_millis(1_050)).await;
    assert!(lookup(&svc).unwrap().refresh_due);
    svc.refresh(request(&svc, "alice", true)).unwrap().await;
    assert_eq!(lookup(&svc).unwrap().token.access_token, "second-at");
    assert_eq!(server.received().len(), 3);
}

#[tokio::test]
async fn a_refusal_stops_refreshes_of_that_token_and_never_reaches_a_caller() {
    let server = TestServer::start(vec![json(200, FIRST), json(400, REFUSED)]).await;
    let Watched { svc, events, .. } = watched(&server, |_| {});
    let first = svc.exchange(request(&svc, "alice", true)).await.unwrap();
    past_refresh_point(&first).await;
    assert!(lookup(&svc).unwrap().refresh_due);
    svc.refresh(request(&svc, "alice", true)).unwrap().await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let hit = lookup(&svc).unwrap();
    assert_eq!(
        (hit.token.id, hit.refresh_due),
        (first.id, false),
        "no further attempt"
    );
    assert_eq!(
        svc.exchange(request(&svc, "alice", true)).await.unwrap(),
        first
    );
    assert_eq!(server.received().len(), 2);
    // No event carries the token, the assertion, the secret, the user or the IdP's text.
    let text = format!("{:?}", events.lock().unwrap());
    for secret in [
        ASSERTION,
        "first-at",
        "middle-secret",
        "alice",
        "AADSTS50013",
        "refused",
    ] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    assert!(text.contains("invalid_grant") && text.contains("50013"));
}

#[tokio::test]
async fn an_assertion_about_to_expire_is_not_sent_for_a_refresh() {
    let server = TestServer::start(vec![json(200, FIRST), json(200, SECOND)]).await;
    let Watched { svc, .. } = watched(&server, |_| {});
    // Expires in 90 s: past the exchange, but not past the longest refresh (30 s
    // timeout, no retry) plus a minute.
    let exp = expiry::now_ms() / 1000 + 90;
    let payload = base64::Engine::encode(
        &base64::prelude::BASE64_URL_SAFE_NO_PAD,
        format!(r#"{{"sub":"alice","exp":{exp}}}"#),
    );
    let assertion = format!("eyJhbGciOiJSUzI1NiJ9.{payload}.c2ln");
    let prepare = || svc.prepare(call("alice", &assertion)).unwrap();
    let first = svc.exchange(prepare()).await.unwrap();
    past_refresh_point(&first).await;
    let look = || lookup_for(&svc, &assertion).unwrap();
    assert!(look().refresh_due);
    assert!(svc.refresh(prepare()).is_none());
    assert!(!look().refresh_due, "and not asked again for this token");
    assert_eq!(server.received().len(), 1);
    assert_eq!(svc.stats().refreshes_started, 0);
}

#[tokio::test]
async fn off_means_no_refresh_point_and_evictions_are_published() {
    let server = TestServer::start(vec![json(200, FIRST)]).await;
    let Watched { svc, events, .. } = watched(&server, |o| {
        o.refresh_ahead = Some(crate::config::RefreshAhead::Switch(false));
    });
    let first = svc.exchange(request(&svc, "alice", true)).await.unwrap();
    assert_eq!(first.refresh_at, crate::cache::refresh_points::NEVER);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(!lookup(&svc).unwrap().refresh_due);
    svc.clear();
    let events = events.lock().unwrap();
    let evicted = events.last().unwrap();
    assert_eq!(evicted.channel, Channel::CacheEvict);
    assert_eq!(
        evicted.cause,
        Some(crate::cache::local::EvictCause::Explicit)
    );
    assert_eq!(evicted.key, events[0].key);
}

#[tokio::test]
async fn a_refresh_sends_no_claims_challenge_even_if_the_call_carried_one() {
    let server = TestServer::start(vec![json(200, FIRST), json(200, SECOND)]).await;
    let Watched { svc, .. } = watched(&server, |_| {});
    let first = svc.exchange(request(&svc, "alice", true)).await.unwrap();
    past_refresh_point(&first).await;
    assert!(lookup(&svc).unwrap().refresh_due);
    let with_claims = svc
        .prepare(Call {
            claims: Some(r#"{"access_token":{"acrs":{"essential":true}}}"#),
            ..call("alice", ASSERTION)
        })
        .unwrap();
    svc.refresh(with_claims).unwrap().await;
    let sent = server.received();
    assert_eq!(sent.len(), 2);
    assert!(form_of(&sent[1]).iter().all(|(name, _)| name != "claims"));
}

/// Hits every 50 ms on a token whose fraction point is 100 ms in: the refresh waits
/// until the time left is about 1.5 × 50 ms plus the exchange, near the end of the
/// 2 s, instead of renewing the token at a twentieth of its life.
#[tokio::test]
async fn a_steady_key_is_refreshed_near_its_end_not_at_its_point() {
    let server = TestServer::start(vec![json(200, FIRST_BY_FRACTION)]).await;
    let Watched { svc, .. } = watched(&server, |_| {});
    let first = svc.exchange(request(&svc, "alice", true)).await.unwrap();
    let usable_end = first.expires_at;
    let mut first_due = None;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let Some(hit) = lookup(&svc) else { break };
        if hit.refresh_due {
            first_due = Some(expiry::now_ms());
            break;
        }
    }
    let due_at = first_due.expect("a hit before the end starts the refresh");
    let left = usable_end.saturating_sub(due_at);
    assert!(
        (1..=300).contains(&left),
        "due {left} ms before the end, not at the point {} ms in",
        first.refresh_at - first.obtained_at()
    );
}

/// A hit after a silence as long as the fraction point starts the refresh there.
#[tokio::test]
async fn after_a_long_silence_the_point_itself_refreshes() {
    let server = TestServer::start(vec![json(200, FIRST_BY_FRACTION)]).await;
    let Watched { svc, .. } = watched(&server, |o| {
        o.refresh_ahead = Some(crate::config::RefreshAhead::Fraction(0.5));
    });
    let first = svc.exchange(request(&svc, "alice", true)).await.unwrap();
    past_refresh_point(&first).await;
    let hit = lookup(&svc).unwrap();
    assert!(hit.refresh_due, "about 1 s of silence against 1 s left");
}

/// The wrapper tells the service whether anyone listens (`watch_events`): while nobody
/// does, an exchange sends nothing; once someone does again, it sends its events.
#[tokio::test]
async fn an_exchange_sends_events_only_while_they_are_watched() {
    let server = TestServer::start(vec![json(200, SECOND), json(200, SECOND)]).await;
    let Watched { svc, events, .. } = watched(&server, |_| {});
    svc.watch_events(false);
    svc.exchange(request(&svc, "alice", false)).await.unwrap();
    assert!(events.lock().unwrap().is_empty());
    svc.watch_events(true);
    svc.exchange(request(&svc, "alice", false)).await.unwrap();
    assert!(!events.lock().unwrap().is_empty());
}
