//! What happens around exchanges: invalidation by user and scope, clearing, the log
//! lines, and an expired assertion refused before the network.

use std::sync::Mutex;

use super::*;

/// A service whose cache holds alice's and bob's tokens for two scopes each.
async fn filled(server: &TestServer) -> OboService {
    let svc = service(server, |_| {});
    for subject in ["alice", "bob"] {
        for scopes in ["api://mcp/.default", "api://mail/.default"] {
            let call = Call {
                scopes,
                ..call(subject, ASSERTION)
            };
            svc.exchange(svc.prepare(call).unwrap()).await.unwrap();
        }
    }
    svc
}

#[tokio::test]
async fn invalidate_drops_one_users_tokens_or_one_scope_and_returns_their_ids() {
    let server = TestServer::start(vec![json(200, OK)]).await;
    let svc = filled(&server).await;
    let alice_mcp = hit(&svc, "alice").unwrap();
    let (one_scope, _) = svc
        .invalidate(&user("alice"), None, Some("api://mcp/.default"))
        .unwrap();
    assert_eq!(one_scope, [alice_mcp.id]);
    assert_eq!(hit(&svc, "alice"), None);
    assert_eq!(svc.stats().entries, 3);
    let (rest, _) = svc.invalidate(&user("alice"), None, None).unwrap();
    assert_eq!(rest.len(), 1, "alice's mail token");
    assert!(hit(&svc, "bob").is_some(), "bob is untouched");
    assert_eq!(svc.stats().entries, 2);
    assert_eq!(
        svc.invalidate(&user(" "), None, None),
        Err(RequestError::NotOpenIdUser)
    );
}

#[tokio::test]
async fn clear_drops_every_token() {
    let server = TestServer::start(vec![json(200, OK)]).await;
    let svc = filled(&server).await;
    svc.clear();
    assert_eq!(svc.stats().entries, 0);
    assert_eq!(hit(&svc, "bob"), None);
}

#[tokio::test]
async fn an_assertion_that_just_expired_is_refused_before_the_network() {
    let server = TestServer::start(vec![json(200, OK)]).await;
    let svc = service(&server, |_| {});
    let exp = expiry::now_ms() / 1000 - 5;
    let payload = base64::Engine::encode(
        &base64::prelude::BASE64_URL_SAFE_NO_PAD,
        format!(r#"{{"sub":"alice","exp":{exp}}}"#),
    );
    let assertion = format!("eyJhbGciOiJSUzI1NiJ9.{payload}.c2ln");
    let error = svc
        .exchange(svc.prepare(call("alice", &assertion)).unwrap())
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("ERR_ASSERTION_EXPIRED"));
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn the_logger_hears_librechats_lines_without_the_token() {
    let server = TestServer::start(vec![json(200, OK)]).await;
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    let logger: Logger = Arc::new(move |level, line| sink.lock().unwrap().push((level, line)));
    let svc = OboService::new(
        Config::from_options(options(&server)).unwrap(),
        Some(logger),
    )
    .unwrap();
    svc.exchange(request(&svc, "alice", true)).await.unwrap();
    let lines = lines.lock().unwrap();
    assert_eq!(
        lines.first(),
        Some(&(
            Level::Debug,
            "[OboTokenService] Requesting new OBO token for user: alice, scopes: api://mcp/.default"
                .to_owned()
        ))
    );
    assert_eq!(
        lines.last().map(|(_, line)| line.as_str()),
        Some("[OboTokenService] Obtained and cached OBO token for user: alice")
    );
    for (_, line) in lines.iter() {
        assert!(!line.contains("downstream-at") && !line.contains(ASSERTION));
    }
}
