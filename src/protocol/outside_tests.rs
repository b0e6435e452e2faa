//! The documents read before an exchange, from a hostile or broken server: a body that
//! breaks off after its head may pass (as a reset connection does), and a URL or a list
//! longer than the package reads is refused with `ERR_FIELD_TOO_LONG` where it is read.

use super::discovery::Discovery;
use super::metadata;
use super::ssrf::Guard;
use crate::ground::error::ExchangeError;
use crate::test_server::{http_client as http, json, Reply, TestServer};

fn cut_short() -> Reply {
    Reply::Raw(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"issuer\":"
            .into(),
    )
}

async fn discover(document: impl FnOnce(&str) -> Reply) -> Result<(), ExchangeError> {
    let server = TestServer::start_with(|url| vec![document(url)]).await;
    Discovery::new(server.url.clone(), None)
        .endpoint(&http())
        .await
        .map(|_| ())
}

fn discovery_document(issuer: &str, token_endpoint: &str, grants: usize) -> Reply {
    let grants = vec!["urn:x"; grants];
    let document = serde_json::json!({
        "issuer": issuer, "authorization_endpoint": format!("{issuer}/auth"),
        "token_endpoint": token_endpoint, "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"], "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"], "grant_types_supported": grants,
    });
    json(200, &document.to_string())
}

/// `https://h/` and then `a`s up to `chars` characters.
fn long_url(chars: usize) -> String {
    format!("https://h/{}", "a".repeat(chars - "https://h/".len()))
}

#[tokio::test]
async fn a_discovery_document_cut_short_may_pass() {
    let error = discover(|_| cut_short()).await.unwrap_err();
    assert!(error.is_retryable(), "{error}");
}

#[tokio::test]
async fn a_discovered_endpoint_or_list_past_its_bound_is_refused_with_a_code() {
    let fits = discover(|issuer| discovery_document(issuer, &long_url(4096), 64)).await;
    assert!(fits.is_ok(), "{fits:?}");
    let long = discover(|issuer| discovery_document(issuer, &long_url(100_000), 1))
        .await
        .unwrap_err();
    assert_eq!(long.code(), Some("ERR_FIELD_TOO_LONG"), "{long}");
    assert!(!long.is_retryable());
    assert!(
        long.to_string()
            .ends_with("has 100000 characters in token_endpoint; at most 4096 are read"),
        "{long}"
    );
    let many = discover(|issuer| discovery_document(issuer, &format!("{issuer}/t"), 65))
        .await
        .unwrap_err();
    assert!(
        many.to_string()
            .ends_with("has 65 entries in grant_types_supported; at most 64 are read"),
        "{many}"
    );
}

/// The chain of an MCP server at `resource` whose metadata is `document(resource)`.
async fn chain(document: impl FnOnce(&str) -> Reply) -> ExchangeError {
    let mcp = TestServer::start_with(|url| vec![document(&format!("{url}/mcp"))]).await;
    let resource = format!("{}/mcp", mcp.url);
    let guard = Guard::listing(&["127.0.0.1"], http());
    metadata::discover(&http(), &guard, &resource, None, None)
        .await
        .unwrap_err()
}

#[tokio::test]
async fn protected_resource_metadata_cut_short_may_pass() {
    let error = chain(|_| cut_short()).await;
    assert!(error.is_retryable(), "{error}");
    assert_eq!(error.code(), Some("ERR_ID_JAG_METADATA"));
}

#[tokio::test]
async fn metadata_past_its_bounds_is_refused_with_a_code() {
    let servers = |count: usize, url: String| {
        move |resource: &str| {
            let document = serde_json::json!({ "resource": resource, "authorization_servers": vec![url; count] });
            json(200, &document.to_string())
        }
    };
    let many = chain(servers(65, "https://as.example".into())).await;
    assert_eq!(many.code(), Some("ERR_FIELD_TOO_LONG"), "{many}");
    assert!(many
        .to_string()
        .ends_with("has 65 entries in authorization_servers; at most 64 are read"));
    let long = chain(servers(1, long_url(4097))).await;
    assert_eq!(long.code(), Some("ERR_FIELD_TOO_LONG"), "{long}");
    let as_server = TestServer::start_with(|issuer| {
        let document = serde_json::json!({
            "issuer": issuer, "token_endpoint": long_url(4097),
            "authorization_grant_profiles_supported": ["urn:ietf:params:oauth:grant-profile:id-jag"],
        });
        vec![json(200, &document.to_string())]
    })
    .await;
    let endpoint = chain(servers(1, as_server.url.clone())).await;
    assert!(
        endpoint
            .to_string()
            .ends_with("has 4097 characters in token_endpoint; at most 4096 are read"),
        "{endpoint}"
    );
}

#[tokio::test]
async fn another_resource_or_issuer_is_quoted_cut_short() {
    let other = format!("https://other.example/{}", "r".repeat(10_000));
    let error = chain(|_| {
        let document = serde_json::json!({ "resource": other, "authorization_servers": [] });
        json(200, &document.to_string())
    })
    .await;
    let message = error.to_string();
    assert!(message.len() < 1_000, "{} bytes", message.len());
    assert!(message.contains("https://other.example/rrr"), "{message}");
}
