//! The broker against scripted token endpoints on 127.0.0.1: what is sent, what is
//! cached, single-flight, retry; discovery and the grant choice in `discovery`, invalidation,
//! clearing, logging and refusals in `lifecycle`; two services sharing a real Redis in
//! `shared`.

mod discovery;
mod id_jag;
mod lifecycle;
mod refresh_ahead;
mod scheduled;
mod shared;

use super::*;
use crate::config::Options;
use crate::test_server::{json, Reply, TestServer};
use std::time::{Duration, Instant};

const OK: &str = r#"{"access_token":"downstream-at","token_type":"Bearer","expires_in":"3599"}"#;
/// {"alg":"RS256","typ":"JWT"}.{"sub":"alice","exp":4102444800}.signature
const ASSERTION: &str =
    "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6NDEwMjQ0NDgwMH0.c2ln";

/// Options of a service whose token endpoint is `server`'s, retries 1 ms apart.
fn options(server: &TestServer) -> Options {
    Options {
        issuer: Some(server.url.clone()),
        client_id: Some("middle-tier".into()),
        client_secret: Some("middle-secret".into()),
        token_endpoint: Some(format!("{}/token", server.url)),
        retry_delay_ms: Some(1.0),
        ..Options::default()
    }
}

fn service(server: &TestServer, tweak: impl FnOnce(&mut Options)) -> OboService {
    let mut options = options(server);
    tweak(&mut options);
    OboService::new(Config::from_options(options).unwrap(), None).unwrap()
}

fn user(subject: &str) -> IdentitySource<'_> {
    IdentitySource {
        subject: Some(subject),
        ..IdentitySource::default()
    }
}

fn call<'a>(subject: &'a str, access_token: &'a str) -> Call<'a> {
    Call {
        user: user(subject),
        context: None,
        access_token,
        scopes: "api://mcp/.default",
        target: Target::default(),
        claims: None,
        resource_metadata: None,
        from_cache: true,
    }
}

fn request(svc: &OboService, subject: &str, from_cache: bool) -> Request {
    svc.prepare(Call {
        from_cache,
        ..call(subject, ASSERTION)
    })
    .unwrap()
}

fn discovery_document(url: &str, grants: Option<&str>) -> String {
    let grants = grants.map_or(String::new(), |g| {
        format!(r#","grant_types_supported":{g}"#)
    });
    format!(
        r#"{{"issuer":"{url}","authorization_endpoint":"{url}/auth",
        "token_endpoint":"{url}/token","jwks_uri":"{url}/jwks",
        "response_types_supported":["code"],"subject_types_supported":["public"],
        "id_token_signing_alg_values_supported":["RS256"]{grants}}}"#
    )
}

fn form_of(received: &crate::test_server::Received) -> Vec<(String, String)> {
    url::form_urlencoded::parse(received.body.as_bytes())
        .into_owned()
        .collect()
}

/// The cached token of `subject` for `ASSERTION`, as the wrapper's hot path asks.
fn hit(svc: &OboService, subject: &str) -> Option<Arc<OboToken>> {
    let digest = AssertionDigest::of(ASSERTION);
    svc.cached_by_digest(
        &user(subject),
        None,
        digest.as_str(),
        "api://mcp/.default",
        &Target::default(),
    )
    .unwrap()
    .map(|hit| hit.token)
}

#[tokio::test]
async fn sends_librechats_grant_and_caches_the_answer() {
    let server = TestServer::start(vec![json(200, OK)]).await;
    let svc = service(&server, |_| {});
    let before = expiry::now_ms();
    let token = svc.exchange(request(&svc, "alice", true)).await.unwrap();
    assert_eq!(token.access_token, "downstream-at");
    assert_eq!(token.expires_in, 3599);
    assert!(
        token.expires_at >= before + 3_599_000 && token.expires_at <= expiry::now_ms() + 3_599_000
    );
    assert_eq!(token.scope, "api://mcp/.default");

    let sent = server.received();
    assert_eq!(sent.len(), 1);
    let form: Vec<(String, String)> = url::form_urlencoded::parse(sent[0].body.as_bytes())
        .into_owned()
        .collect();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(field("grant_type"), Some(grant::JWT_BEARER));
    assert_eq!(field("assertion"), Some(ASSERTION));
    assert_eq!(field("scope"), Some("api://mcp/.default"));
    assert_eq!(field("requested_token_use"), Some("on_behalf_of"));
    assert_eq!(field("client_id"), Some("middle-tier"));
    assert_eq!(field("client_secret"), Some("middle-secret"));

    assert_eq!(hit(&svc, "alice"), Some(token));
    assert_eq!(hit(&svc, "bob"), None);
    let stats = svc.stats();
    assert_eq!(
        (stats.hits, stats.misses, stats.exchanges, stats.entries),
        (1, 1, 1, 1)
    );
}

#[tokio::test]
async fn digest_lookup_finds_what_the_exchange_cached() {
    let server = TestServer::start(vec![json(200, OK)]).await;
    let svc = service(&server, |_| {});
    let token = svc.exchange(request(&svc, "alice", true)).await.unwrap();
    let digest = AssertionDigest::of(ASSERTION);
    let lookup = |subject: &str, digest: &str, scopes: &str| {
        svc.cached_by_digest(&user(subject), None, digest, scopes, &Target::default())
            .map(|hit| hit.map(|hit| hit.token))
    };
    assert_eq!(
        lookup("alice", digest.as_str(), "api://mcp/.default"),
        Ok(Some(token))
    );
    assert_eq!(
        lookup("bob", digest.as_str(), "api://mcp/.default"),
        Ok(None)
    );
    let other = AssertionDigest::of("another-assertion");
    assert_eq!(
        lookup("alice", other.as_str(), "api://mcp/.default"),
        Ok(None)
    );
    assert_eq!(
        lookup("alice", ASSERTION, "api://mcp/.default"),
        Err(RequestError::NotADigest)
    );
    assert_eq!(
        lookup(" ", digest.as_str(), "s"),
        Err(RequestError::NotOpenIdUser)
    );
    assert_eq!(svc.stats().hits, 1);
}

#[tokio::test]
async fn concurrent_misses_make_one_request() {
    let server = TestServer::start(vec![json(200, OK).delayed(Duration::from_millis(100))]).await;
    let svc = service(&server, |_| {});
    let calls = (0..50).map(|_| svc.exchange(request(&svc, "alice", true)));
    let results = futures_util::future::join_all(calls).await;
    assert!(results
        .iter()
        .all(|r| r.as_ref().unwrap().access_token == "downstream-at"));
    assert_eq!(server.received().len(), 1);
    let stats = svc.stats();
    assert_eq!(
        (stats.misses, stats.coalesced, stats.exchanges),
        (50, 49, 1)
    );
}

#[tokio::test]
async fn forced_exchange_neither_reads_nor_joins_but_writes() {
    let server = TestServer::start(vec![json(200, OK)]).await;
    let svc = service(&server, |_| {});
    svc.exchange(request(&svc, "alice", true)).await.unwrap();
    svc.exchange(request(&svc, "alice", false)).await.unwrap();
    assert_eq!(server.received().len(), 2);
    assert!(hit(&svc, "alice").is_some());
}

#[tokio::test]
async fn claims_are_sent_and_bypass_the_cache() {
    let server = TestServer::start(vec![json(200, OK)]).await;
    let svc = service(&server, |_| {});
    svc.exchange(request(&svc, "alice", true)).await.unwrap();
    let claims = r#"{"access_token":{"capolids":{"essential":true,"values":["p1"]}}}"#;
    let answering = svc
        .prepare(Call {
            claims: Some(claims),
            ..call("alice", ASSERTION)
        })
        .unwrap();
    svc.exchange(answering).await.unwrap();
    let sent = server.received();
    assert_eq!(sent.len(), 2);
    let form: Vec<(String, String)> = url::form_urlencoded::parse(sent[1].body.as_bytes())
        .into_owned()
        .collect();
    assert!(form.contains(&("claims".to_owned(), claims.to_owned())));
}

#[tokio::test]
async fn an_assertion_that_is_not_a_jwt_never_reaches_the_idp() {
    let server = TestServer::start(vec![json(200, OK)]).await;
    let svc = service(&server, |_| {});
    let request = svc.prepare(call("alice", "opaque")).unwrap();
    let error = svc.exchange(request).await.unwrap_err();
    assert_eq!(error.code(), Some("ERR_ASSERTION_NOT_JWS"));
    assert!(!error.is_retryable());
    assert!(server.received().is_empty());
    assert_eq!((svc.stats().exchanges, svc.stats().failures), (0, 1));
}

#[tokio::test]
async fn an_opaque_subject_token_goes_to_the_idp_under_token_exchange() {
    let server = TestServer::start(vec![json(200, OK)]).await;
    let svc = service(&server, |o| o.grant_type = Some("token_exchange".into()));
    let request = svc
        .prepare(call("alice", "opaque-reference-token"))
        .unwrap();
    svc.exchange(request).await.unwrap();
    let sent = server.received();
    assert_eq!(sent.len(), 1);
    assert!(form_of(&sent[0]).contains(&(
        "subject_token".to_owned(),
        "opaque-reference-token".to_owned()
    )));
}

#[tokio::test]
async fn an_idp_that_echoes_the_assertion_and_the_secret_gets_them_redacted() {
    let echo = format!(
        r#"{{"error":"invalid_client","error_description":"bad secret middle-secret for {ASSERTION}","suberror":"middle-secret","claims":"{ASSERTION}"}}"#
    );
    let server = TestServer::start(vec![json(401, &echo)]).await;
    let svc = service(&server, |_| {});
    let error = svc
        .exchange(request(&svc, "alice", true))
        .await
        .unwrap_err();
    let body = error.idp_body().unwrap();
    let texts = [
        Some(error.to_string()),
        body.error_description.clone(),
        body.suberror.clone(),
        body.claims.clone(),
    ];
    for text in texts.iter().flatten() {
        assert!(
            !text.contains("middle-secret") && !text.contains(ASSERTION),
            "leaked in {text}"
        );
    }
    assert_eq!(
        body.error_description.as_deref(),
        Some("bad secret [redacted] for [redacted]")
    );
}

#[tokio::test]
async fn a_token_inside_the_default_30_s_buffer_is_not_served_again() {
    let short = r#"{"access_token":"short-at","token_type":"Bearer","expires_in":29}"#;
    let long = r#"{"access_token":"long-at","token_type":"Bearer","expires_in":40}"#;
    let server = TestServer::start(vec![json(200, short), json(200, short), json(200, long)]).await;
    let svc = service(&server, |_| {});
    for _ in 0..2 {
        svc.exchange(request(&svc, "alice", true)).await.unwrap();
        assert_eq!(hit(&svc, "alice"), None, "29 s left is inside the buffer");
    }
    let long_lived = svc.exchange(request(&svc, "alice", true)).await.unwrap();
    assert_eq!(
        hit(&svc, "alice"),
        Some(long_lived),
        "40 s left is outside it"
    );
    assert_eq!(server.received().len(), 3);
}

#[tokio::test]
async fn transient_failure_then_success_makes_two_requests() {
    let unavailable = json(503, r#"{"error":"temporarily_unavailable"}"#);
    let server = TestServer::start(vec![unavailable, json(200, OK)]).await;
    let svc = service(&server, |_| {});
    svc.exchange(request(&svc, "alice", true)).await.unwrap();
    assert_eq!(server.received().len(), 2);
    assert_eq!(svc.stats().retries, 1);
}

#[tokio::test]
async fn dropped_connection_is_retried() {
    let server = TestServer::start(vec![Reply::Drop, json(200, OK)]).await;
    let svc = service(&server, |_| {});
    svc.exchange(request(&svc, "alice", true)).await.unwrap();
    assert_eq!(server.received().len(), 2);
}

#[tokio::test]
async fn permanent_failure_is_returned_at_once_and_not_cached() {
    let body = r#"{"error":"invalid_grant","error_description":"AADSTS50013: Assertion failed signature validation.","error_codes":[50013]}"#;
    let server = TestServer::start(vec![json(400, body), json(200, OK)]).await;
    let svc = service(&server, |o| o.max_retries = Some(3.0));
    let error = svc
        .exchange(request(&svc, "alice", true))
        .await
        .unwrap_err();
    assert!(!error.is_retryable());
    assert_eq!(error.status(), Some(400));
    assert_eq!(error.idp_body().unwrap().error_codes, Some(vec![50013]));
    assert_eq!(server.received().len(), 1);
    assert_eq!(svc.stats().entries, 0);
    assert_eq!(svc.stats().failures, 1);
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let throttled = json(429, "{}").header("retry-after", "1");
    let server = TestServer::start(vec![throttled, json(200, OK)]).await;
    let svc = service(&server, |_| {});
    let started = Instant::now();
    svc.exchange(request(&svc, "alice", true)).await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(server.received().len(), 2);
}

#[tokio::test]
async fn a_response_without_access_token_caches_nothing() {
    let server = TestServer::start(vec![json(200, r#"{"token_type":"Bearer"}"#)]).await;
    let svc = service(&server, |_| {});
    let error = svc
        .exchange(request(&svc, "alice", true))
        .await
        .unwrap_err();
    assert_eq!(
        error.failure_reason(),
        crate::ground::error::FailureReason::EmptyExchangeResponse
    );
    assert_eq!(svc.stats().entries, 0);
}

/// A discovery document for `url` advertising `grants` (a JSON array, or none).
#[test]
fn arguments_are_checked_in_librechats_order() {
    let svc = OboService::new(
        Config::from_options(Options {
            issuer: Some("https://idp.example".into()),
            client_id: Some("c".into()),
            client_secret: Some("s".into()),
            ..Options::default()
        })
        .unwrap(),
        None,
    )
    .unwrap();
    let check = |subject: &str, token: &str, scopes: &str| {
        svc.prepare(Call {
            scopes,
            ..call(subject, token)
        })
        .unwrap_err()
    };
    assert_eq!(check("", "", ""), RequestError::MissingAccessToken);
    assert_eq!(check("", "t", " "), RequestError::MissingScopes);
    assert_eq!(check(" ", "t", "s"), RequestError::NotOpenIdUser);
    assert_eq!(
        check("a", "t", "s\u{1f}x"),
        RequestError::SeparatorInValue("scopes")
    );
    let alice = svc.prepare(call("a", "t1")).unwrap();
    let other_token = svc.prepare(call("a", "t2")).unwrap();
    assert_ne!(alice.key, other_token.key);
    assert!(!alice.key.contains("t1"));
}
