//! Discovery against scripted loopback servers: which documents are read, in which
//! order, what they must and need not hold, and which failures may pass.

use super::*;
use crate::test_server::{http_client as http, json, Reply, TestServer};

/// A document naming `issuer` with the given extra members (a JSON fragment).
fn document(issuer: &str, extra: &str) -> String {
    format!(r#"{{"issuer":"{issuer}"{extra}}}"#)
}

/// Serves `script` (built from the server's URL) and discovers the issuer
/// `url` + `issuer_path`; answers the outcome and the paths asked for.
async fn discover_at(
    issuer_path: &str,
    script: impl FnOnce(&str) -> Vec<Reply>,
) -> (Result<Metadata, ExchangeError>, Vec<String>) {
    let server = TestServer::start_with(script).await;
    let discovery = Discovery::new(format!("{}{issuer_path}", server.url), None);
    let outcome = discovery.metadata(&http()).await.cloned();
    (outcome, server.paths())
}

#[tokio::test]
async fn throttling_and_outages_may_pass_and_are_not_a_missing_document() {
    for status in [429, 503] {
        let (outcome, paths) = discover_at("", |_| vec![json(status, "{}")]).await;
        let error = outcome.unwrap_err();
        assert!(error.is_retryable(), "{status}: {error}");
        assert!(error.to_string().contains(&format!("HTTP {status}")));
        assert_eq!(paths, ["/.well-known/openid-configuration"], "no fallback");
    }
    let (outcome, paths) = discover_at("", |_| vec![json(200, "[1]")]).await;
    let error = outcome.unwrap_err();
    assert!(!error.is_retryable());
    assert!(error.to_string().contains("cannot be read"), "{error}");
    assert_eq!(paths.len(), 1, "a broken OpenID document is not absent");
}

#[tokio::test]
async fn another_issuer_is_refused() {
    let (outcome, _) = discover_at("", |url| {
        vec![json(
            200,
            &document(
                "https://elsewhere.example",
                &format!(r#","token_endpoint":"{url}/token""#),
            ),
        )]
    })
    .await;
    let error = outcome.unwrap_err();
    assert!(!error.is_retryable());
    assert!(
        error
            .to_string()
            .contains("another issuer (https://elsewhere.example)"),
        "{error}"
    );
}

#[tokio::test]
async fn a_document_with_only_what_an_exchange_needs_is_enough() {
    let (outcome, _) = discover_at("/realm", |url| {
        vec![json(
            200,
            &document(
                &format!("{url}/realm"),
                &format!(r#","token_endpoint":"{url}/token""#),
            ),
        )]
    })
    .await;
    let metadata = outcome.unwrap();
    assert!(metadata
        .token_endpoint
        .unwrap()
        .as_str()
        .ends_with("/token"));
    assert_eq!((metadata.grant_types, metadata.jwks_uri), (None, None));
    assert!(metadata
        .document
        .as_str()
        .ends_with("/realm/.well-known/openid-configuration"));
}

#[tokio::test]
async fn without_an_openid_document_the_rfc_8414_one_is_read_at_its_inserted_path() {
    let (outcome, paths) = discover_at("/tenant/", |url| {
        let oauth = document(
            &format!("{url}/tenant/"),
            &format!(
                r#","token_endpoint":"{url}/token","grant_types_supported":["client_credentials"]"#
            ),
        );
        vec![json(404, "{}"), json(200, &oauth)]
    })
    .await;
    let metadata = outcome.unwrap();
    assert_eq!(
        paths,
        [
            "/tenant/.well-known/openid-configuration",
            "/.well-known/oauth-authorization-server/tenant"
        ]
    );
    assert_eq!(
        metadata.grant_types.as_deref(),
        Some(&["client_credentials".to_owned()][..])
    );
    assert!(metadata
        .document
        .as_str()
        .ends_with("/.well-known/oauth-authorization-server/tenant"));
}

#[tokio::test]
async fn when_neither_document_is_there_both_urls_are_named() {
    let (outcome, paths) = discover_at("", |_| vec![json(404, "{}"), json(410, "{}")]).await;
    let error = outcome.unwrap_err();
    let text = error.to_string();
    assert!(!error.is_retryable());
    assert!(
        text.contains("/.well-known/openid-configuration (HTTP 404) nor at "),
        "{text}"
    );
    assert!(
        text.ends_with("/.well-known/oauth-authorization-server (HTTP 410)"),
        "{text}"
    );
    assert_eq!(paths.len(), 2);
    let (outcome, _) = discover_at("", |_| vec![json(404, "{}"), json(503, "{}")]).await;
    assert!(
        outcome.unwrap_err().is_retryable(),
        "the RFC 8414 server may come back"
    );
}

#[tokio::test]
async fn an_rfc_8414_document_gets_no_entra_exception() {
    // The configured issuer is not Entra's here, so the check is exact either way; the
    // `openid` flag is what decides (see issuer.rs); this pins that 8414 passes `false`.
    let (outcome, _) = discover_at("", |url| {
        vec![
            json(404, "{}"),
            json(200, &document(&format!("{url}/other"), "")),
        ]
    })
    .await;
    assert!(outcome.unwrap_err().to_string().contains("another issuer"));
}

#[tokio::test]
async fn unknown_grants_are_kept_as_names_and_odd_members_are_refused_plainly() {
    let grants = |members: &'static str| async move {
        let (outcome, _) =
            discover_at("", move |url| vec![json(200, &document(url, members))]).await;
        outcome.map(|m| m.grant_types).map_err(|e| e.to_string())
    };
    assert_eq!(
        grants(r#","grant_types_supported":["urn:example:new",7,null,"implicit"]"#).await,
        Ok(Some(vec![
            "urn:example:new".to_owned(),
            "implicit".to_owned()
        ]))
    );
    assert_eq!(grants(r#","grant_types_supported":[]"#).await, Ok(None));
    assert_eq!(grants(r#","grant_types_supported":null"#).await, Ok(None));
    assert!(grants(r#","grant_types_supported":"implicit""#)
        .await
        .unwrap_err()
        .contains("grant_types_supported is not a list"));
    assert!(grants(r#","token_endpoint":"/token""#)
        .await
        .unwrap_err()
        .contains("token_endpoint '/token' is not a URL"));
    assert!(grants(r#","jwks_uri":5"#)
        .await
        .unwrap_err()
        .contains("jwks_uri is not a string"));
    let (outcome, _) = discover_at("", |_| vec![json(200, "{}")]).await;
    assert!(outcome.unwrap_err().to_string().contains("has no issuer"));
    let (outcome, _) = discover_at("", |_| vec![json(200, r#"{"issuer":1}"#)]).await;
    assert!(outcome
        .unwrap_err()
        .to_string()
        .contains("issuer is not a string"));
}

#[tokio::test]
async fn the_endpoint_and_the_keys_are_asked_for_only_when_used() {
    let server = TestServer::start_with(|url| vec![json(200, &document(url, ""))]).await;
    let discovery = Discovery::new(server.url.clone(), None);
    let http = http();
    let error = discovery.endpoint(&http).await.unwrap_err();
    assert!(error.to_string().contains("no token_endpoint"), "{error}");
    let error = discovery.keys(&http).await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("no jwks_uri, which validateAssertion needs"),
        "{error}"
    );
    assert_eq!(server.paths().len(), 1, "the document is kept");
    let configured = Url::parse("http://127.0.0.1:9/token").unwrap();
    let discovery = Discovery::new(server.url.clone(), Some(configured.clone()));
    let endpoint = discovery.endpoint(&http).await.unwrap();
    assert_eq!((endpoint.url, endpoint.grant_types), (&configured, None));
    assert_eq!(
        server.paths().len(),
        1,
        "a configured endpoint skips discovery"
    );
    let bad = Discovery::new("not a url".into(), None);
    assert!(bad
        .metadata(&http)
        .await
        .unwrap_err()
        .to_string()
        .contains("the issuer is not a URL"));
}

#[test]
fn well_known_urls_follow_openid_and_rfc_8414() {
    let at = |issuer: &str, path, insert| {
        well_known(&Url::parse(issuer).unwrap(), path, insert).to_string()
    };
    assert_eq!(
        at("https://as.example", OPENID_PATH, false),
        "https://as.example/.well-known/openid-configuration"
    );
    assert_eq!(
        at("https://as.example/", OAUTH_PATH, true),
        "https://as.example/.well-known/oauth-authorization-server"
    );
    assert_eq!(
        at("https://as.example/t/v2.0", OPENID_PATH, false),
        "https://as.example/t/v2.0/.well-known/openid-configuration"
    );
    assert_eq!(
        at("https://as.example/t/v2.0/", OAUTH_PATH, true),
        "https://as.example/.well-known/oauth-authorization-server/t/v2.0"
    );
}

#[tokio::test]
async fn only_the_token_requests_transient_statuses_may_pass() {
    let (outcome, _) = discover_at("", |_| vec![json(501, "{}")]).await;
    let error = outcome.unwrap_err();
    assert!(!error.is_retryable(), "{error}");
    assert!(
        error
            .to_string()
            .contains(": the discovery request failed (HTTP 501) (http://"),
        "{error}"
    );
    let (outcome, _) = discover_at("", |_| vec![json(404, "{}"), json(502, "{}")]).await;
    let error = outcome.unwrap_err();
    assert!(error.is_retryable(), "{error}");
    assert!(
        error.to_string().ends_with(
            "/.well-known/oauth-authorization-server (the discovery request failed (HTTP 502))"
        ),
        "{error}"
    );
}
