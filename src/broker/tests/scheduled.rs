//! A scheduled chat's grant against a scripted token endpoint: what each grant sends,
//! what is sealed and when the stored token is reused, and LibreChat's verdicts.

use super::*;
use crate::cache::grant_record::GrantRecord;
use crate::cache::shared::Keyring;
use crate::config::RingKey;
use crate::ground::error::{ScheduledFailure, ScheduledReason, Stage};
use crate::protocol::offline::REFRESH_TOKEN;
use std::sync::Mutex;

const NAME: &str = "schedule-obo:s1:files";
const SCOPES: &str = "api://mcp/files.read";
const GRANTED: &str = r#"{"access_token":"at-1","refresh_token":"rt-secret-1","expires_in":3599,
    "scope":"api://mcp/files.read","token_type":"Bearer"}"#;
const RENEWED: &str = r#"{"access_token":"at-2","refresh_token":"rt-secret-2","expires_in":600,
    "refresh_token_expires_in":86400}"#;

fn ring() -> Keyring {
    Keyring::new(&[RingKey {
        id: 1,
        key: [9; 32],
    }])
}

fn field(received: &crate::test_server::Received, name: &str) -> Option<String> {
    form_of(received)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// A record as `scheduled_enroll` would store it, its access token `left_ms` from expiry.
fn stored(ring: &Keyring, left_ms: i64, refresh_token: &str) -> String {
    let now = expiry::now_ms() as i64;
    GrantRecord {
        refresh_token: refresh_token.into(),
        access_token: "at-stored".into(),
        expires_at_ms: (now + left_ms) as u64,
        refresh_expires_at_ms: (now + 3_600_000) as u64,
        scopes: SCOPES.into(),
        binding: None,
    }
    .seal(ring, NAME)
}

fn logging_service(server: &TestServer) -> (OboService, Arc<Mutex<Vec<String>>>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    let logger: Logger = Arc::new(move |_, line| sink.lock().unwrap().push(line));
    let config = Config::from_options(options(server)).unwrap();
    (OboService::new(config, Some(logger)).unwrap(), lines)
}

#[tokio::test]
async fn enrolment_sends_on_behalf_of_with_offline_access_and_seals_the_grant() {
    let server = TestServer::start(vec![json(200, GRANTED)]).await;
    let svc = service(&server, |_| {});
    let ring = ring();
    let before = expiry::now_ms();
    let granted = svc
        .scheduled_enroll(&ring, NAME, ASSERTION, SCOPES)
        .await
        .unwrap();
    assert_eq!(granted.access_token, "at-1");
    assert!(granted.expires_at_ms >= before + 3_599_000);
    assert!(granted.expires_at_ms <= expiry::now_ms() + 3_599_000);
    let (record, keep_ms) = granted.store.unwrap();
    assert!(!record.contains("rt-secret") && !record.contains("at-1"));
    let opened = GrantRecord::open(&ring, NAME, &record).unwrap();
    assert_eq!(opened.refresh_token, "rt-secret-1");
    assert_eq!(opened.scopes, SCOPES);
    let year = expiry::DEFAULT_REFRESH_LIFETIME_SECS * 1000;
    assert!(keep_ms > year - 60_000 && keep_ms <= year, "{keep_ms}");

    let sent = &server.received()[0];
    assert_eq!(
        field(sent, "grant_type").as_deref(),
        Some(grant::JWT_BEARER)
    );
    assert_eq!(field(sent, "assertion").as_deref(), Some(ASSERTION));
    let offline_scopes = format!("{SCOPES} offline_access");
    assert_eq!(field(sent, "scope"), Some(offline_scopes));
    assert_eq!(
        field(sent, "requested_token_use").as_deref(),
        Some("on_behalf_of")
    );
    assert_eq!(
        field(sent, "client_secret").as_deref(),
        Some("middle-secret")
    );
}

#[tokio::test]
async fn enrolment_without_a_refresh_token_or_a_lifetime_stores_nothing() {
    let no_refresh = r#"{"access_token":"at-1","expires_in":3599}"#;
    let short = r#"{"access_token":"at-1","refresh_token":"rt","expires_in":30}"#;
    let fewer = r#"{"access_token":"at-1","refresh_token":"rt","expires_in":99,"scope":"other"}"#;
    for (body, wanted) in [
        (no_refresh, "no refresh"),
        (short, "lifetime"),
        (fewer, "scope"),
    ] {
        let server = TestServer::start(vec![json(200, body)]).await;
        let svc = service(&server, |_| {});
        let failure = svc
            .scheduled_enroll(&ring(), NAME, ASSERTION, SCOPES)
            .await
            .unwrap_err();
        assert!(failure.to_string().contains(wanted), "{failure}");
        let verdict = failure.verdict(Stage::Enroll);
        assert_eq!(verdict.reason, ScheduledReason::MissingUpstreamProvider);
        assert!(!verdict.retryable);
    }
}

#[tokio::test]
async fn a_fresh_stored_token_is_served_without_a_request() {
    let server = TestServer::start(vec![json(200, RENEWED)]).await;
    let svc = service(&server, |_| {});
    let ring = ring();
    let record = stored(&ring, 46_000, "rt-old");
    let granted = svc
        .scheduled_token(&ring, NAME, &record, SCOPES, false)
        .await
        .unwrap();
    assert_eq!(granted.access_token, "at-stored");
    assert!(granted.store.is_none());
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn a_token_near_its_end_or_a_forced_call_renews_by_refresh_token() {
    let server = TestServer::start(vec![json(200, RENEWED)]).await;
    let svc = service(&server, |_| {});
    let ring = ring();
    for (left_ms, force) in [(44_000, false), (3_000_000, true)] {
        let record = stored(&ring, left_ms, "rt-old");
        let before = expiry::now_ms();
        let granted = svc
            .scheduled_token(&ring, NAME, &record, SCOPES, force)
            .await
            .unwrap();
        assert_eq!(granted.access_token, "at-2");
        assert!(granted.expires_at_ms >= before + 600_000);
        let (record, keep_ms) = granted.store.unwrap();
        let opened = GrantRecord::open(&ring, NAME, &record).unwrap();
        assert_eq!(opened.refresh_token, "rt-secret-2", "rotated");
        assert!(keep_ms > 86_340_000 && keep_ms <= 86_400_000, "{keep_ms}");
    }
    let sent = server.received();
    assert_eq!(sent.len(), 2);
    assert_eq!(
        field(&sent[0], "grant_type").as_deref(),
        Some(REFRESH_TOKEN)
    );
    assert_eq!(field(&sent[0], "refresh_token").as_deref(), Some("rt-old"));
    assert_eq!(field(&sent[0], "scope").as_deref(), Some(SCOPES));
    assert_eq!(field(&sent[0], "client_id").as_deref(), Some("middle-tier"));
    assert_eq!(field(&sent[0], "assertion"), None);
}

#[tokio::test]
async fn a_renewal_without_rotation_keeps_the_refresh_token_and_its_expiry() {
    let server = TestServer::start(vec![json(
        200,
        r#"{"access_token":"at-3","expires_in":900}"#,
    )])
    .await;
    let svc = service(&server, |_| {});
    let ring = ring();
    let record = stored(&ring, 0, "rt-kept");
    let before = GrantRecord::open(&ring, NAME, &record).unwrap();
    let granted = svc
        .scheduled_token(&ring, NAME, &record, SCOPES, false)
        .await
        .unwrap();
    let after = GrantRecord::open(&ring, NAME, &granted.store.unwrap().0).unwrap();
    assert_eq!(after.refresh_token, "rt-kept");
    assert_eq!(after.refresh_expires_at_ms, before.refresh_expires_at_ms);
    assert_eq!(after.access_token, "at-3");
}

#[tokio::test]
async fn a_record_for_other_scopes_another_name_or_key_or_past_its_life_is_no_grant() {
    let server = TestServer::start(vec![json(200, RENEWED)]).await;
    let svc = service(&server, |_| {});
    let ring = ring();
    let record = stored(&ring, 0, "rt");
    let other_ring = Keyring::new(&[RingKey {
        id: 2,
        key: [3; 32],
    }]);
    let attempts = [
        svc.scheduled_token(&ring, NAME, &record, "api://mcp/files.write", false)
            .await,
        svc.scheduled_token(&ring, "schedule-obo:s2:files", &record, SCOPES, false)
            .await,
        svc.scheduled_token(&other_ring, NAME, &record, SCOPES, false)
            .await,
        svc.scheduled_token(&ring, NAME, "not a record", SCOPES, false)
            .await,
    ];
    for attempt in attempts {
        assert!(matches!(attempt.unwrap_err(), ScheduledFailure::NoGrant));
    }
    let expired = GrantRecord {
        refresh_expires_at_ms: expiry::now_ms(),
        ..GrantRecord::open(&ring, NAME, &record).unwrap()
    }
    .seal(&ring, NAME);
    let failure = svc
        .scheduled_token(&ring, NAME, &expired, SCOPES, true)
        .await
        .unwrap_err();
    assert!(matches!(failure, ScheduledFailure::Expired));
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn a_refused_refresh_is_a_spent_grant_and_never_shows_the_refresh_token() {
    let refused = r#"{"error":"invalid_grant","error_description":"AADSTS70000: token rt-secret-old was revoked"}"#;
    let server = TestServer::start(vec![json(400, refused)]).await;
    let (svc, lines) = logging_service(&server);
    let ring = ring();
    let record = stored(&ring, 0, "rt-secret-old");
    let failure = svc
        .scheduled_token(&ring, NAME, &record, SCOPES, false)
        .await
        .unwrap_err();
    let verdict = failure.verdict(Stage::Renew);
    assert_eq!(verdict.reason, ScheduledReason::MissingUpstreamProvider);
    assert!(verdict.drop_grant && !verdict.retryable);
    let error = failure.exchange_error().unwrap();
    let description = error.idp_body().unwrap().error_description.clone().unwrap();
    assert!(!description.contains("rt-secret-old"), "{description}");
    assert!(!failure.to_string().contains("rt-secret-old"), "{failure}");
    let lines = lines.lock().unwrap();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains(NAME) && !lines[0].contains("rt-secret"),
        "{lines:?}"
    );
}

#[tokio::test]
async fn a_transient_refresh_failure_is_sent_once_and_keeps_the_grant() {
    let server = TestServer::start(vec![json(503, r#"{"error":"temporarily_unavailable"}"#)]).await;
    let svc = service(&server, |_| {});
    let ring = ring();
    let record = stored(&ring, 0, "rt");
    let failure = svc
        .scheduled_token(&ring, NAME, &record, SCOPES, false)
        .await
        .unwrap_err();
    let verdict = failure.verdict(Stage::Renew);
    assert_eq!(verdict.reason, ScheduledReason::SessionRefreshFailed);
    assert!(verdict.retryable && !verdict.drop_grant);
    assert_eq!(server.received().len(), 1, "no retry here");
}

#[tokio::test]
async fn the_token_endpoint_is_discovered_when_not_configured() {
    let server = TestServer::start_with(|url| {
        vec![
            json(200, &discovery_document(url, None)),
            json(200, GRANTED),
        ]
    })
    .await;
    let svc = service(&server, |o| o.token_endpoint = None);
    svc.scheduled_enroll(&ring(), NAME, ASSERTION, SCOPES)
        .await
        .unwrap();
    assert_eq!(
        server.paths(),
        ["/.well-known/openid-configuration", "/token"]
    );
}

#[tokio::test]
async fn a_renewal_that_loses_a_scope_spends_the_grant() {
    let fewer = r#"{"access_token":"at-2","refresh_token":"rt-2","expires_in":600,"scope":"api://mcp/other"}"#;
    let server = TestServer::start(vec![json(200, fewer)]).await;
    let svc = service(&server, |_| {});
    let ring = ring();
    let failure = svc
        .scheduled_token(&ring, NAME, &stored(&ring, 0, "rt"), SCOPES, false)
        .await
        .unwrap_err();
    assert!(matches!(failure, ScheduledFailure::ScopesNotGranted { .. }));
    assert!(failure.verdict(Stage::Renew).drop_grant);
}

#[tokio::test]
async fn a_grant_that_changed_is_logged_at_debug_and_a_reused_one_not_at_all() {
    let server = TestServer::start(vec![json(200, GRANTED)]).await;
    let (svc, lines) = logging_service(&server);
    let ring = ring();
    let granted = svc
        .scheduled_enroll(&ring, NAME, ASSERTION, SCOPES)
        .await
        .unwrap();
    let (record, _) = granted.store.unwrap();
    assert_eq!(
        lines.lock().unwrap().as_slice(),
        [format!(
            "[OboTokenService] Scheduled OBO grant enrolment succeeded for {NAME}"
        )]
    );
    svc.scheduled_token(&ring, NAME, &record, SCOPES, false)
        .await
        .unwrap();
    assert_eq!(
        lines.lock().unwrap().len(),
        1,
        "a reused token logs nothing"
    );
}
