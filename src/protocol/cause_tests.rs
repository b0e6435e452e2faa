//! A document fetch that failed below HTTP (nothing listens, or the server drops the
//! connection) is the cause of discovery's, the JWKS's and the metadata chain's error, as
//! a token request's transport failure is of its error; a failure with a status has none.

use std::error::Error as _;

use url::Url;

use super::discovery::Discovery;
use super::issuer::{Accepted, DocumentIssuer};
use super::metadata;
use super::ssrf::Guard;
use super::verify::{Rules, Verifier};
use crate::ground::error::ExchangeError;
use crate::test_server::{http_client as http, json, Reply, TestServer};

/// Port 9 (discard) on loopback: nothing listens there in a test run.
const CLOSED: &str = "http://127.0.0.1:9";

/// The HTTP client's error is `error`'s source and the first of its `causes()`, with its
/// own cause after it; every link is in the message already, and none names the URL.
fn assert_caused_below_http(error: &ExchangeError) {
    let cause = error
        .source()
        .unwrap_or_else(|| panic!("no cause: {error}"));
    let links = error.causes(8);
    assert_eq!(links[0].message, cause.to_string(), "{links:?}");
    assert_eq!(links[0].code, None);
    assert!(
        links.len() >= 2,
        "the client's error keeps its own: {links:?}"
    );
    let message = error.to_string();
    for link in &links {
        assert!(message.contains(&link.message), "{link:?} in {message}");
        assert!(!link.message.contains("127.0.0.1"), "{link:?}");
    }
}

/// A failure that `reply` answered with a status: retryable, and nothing below it.
fn assert_no_cause(error: &ExchangeError) {
    assert!(error.is_retryable(), "{error}");
    assert!(error.source().is_none(), "{error}");
    assert!(error.causes(8).is_empty(), "{error}");
}

async fn discover(issuer: &str) -> ExchangeError {
    Discovery::new(issuer.to_owned(), None)
        .metadata(&http())
        .await
        .unwrap_err()
}

#[tokio::test]
async fn discovery_keeps_a_failure_below_http_as_its_cause() {
    let refused = discover(CLOSED).await;
    assert!(
        matches!(refused, ExchangeError::Discovery { .. }),
        "{refused}"
    );
    assert_caused_below_http(&refused);
    // No OpenID document (404), then the RFC 8414 URL drops the connection.
    let server = TestServer::start(vec![json(404, "{}"), Reply::Drop]).await;
    let dropped = discover(&server.url).await;
    assert_eq!(server.paths().len(), 2, "{dropped}");
    assert_caused_below_http(&dropped);
    let server = TestServer::start(vec![json(503, "{}")]).await;
    assert_no_cause(&discover(&server.url).await);
}

async fn fetch_keys(jwks_uri: &str) -> ExchangeError {
    let verifier = Verifier::new(Rules {
        audiences: vec!["api://middle-tier".into()],
        issuers: Some(vec!["https://idp.example".into()]),
        leeway_secs: 0,
    });
    let issuer = DocumentIssuer {
        named: "https://idp.example".into(),
        accepted: Accepted::Exact,
    };
    // Only the header is read before the keys are fetched: ES256, kid "k1".
    let assertion = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0.e30.c2ln";
    let uri = Url::parse(jwks_uri).unwrap();
    verifier
        .verify(assertion, &uri, &issuer, &http())
        .await
        .unwrap_err()
}

#[tokio::test]
async fn the_jwks_keeps_a_failure_below_http_as_its_cause() {
    let refused = fetch_keys(&format!("{CLOSED}/jwks")).await;
    assert!(matches!(refused, ExchangeError::Jwks { .. }), "{refused}");
    assert_caused_below_http(&refused);
    let server = TestServer::start(vec![json(503, "{}")]).await;
    let unavailable = fetch_keys(&format!("{}/jwks", server.url)).await;
    assert!(matches!(unavailable, ExchangeError::Jwks { .. }));
    assert_no_cause(&unavailable);
}

async fn read_chain(resource: &str) -> ExchangeError {
    let guard = Guard::listing(&["127.0.0.1"], http());
    metadata::discover(&http(), &guard, resource, None, None)
        .await
        .unwrap_err()
}

#[tokio::test]
async fn the_metadata_chain_keeps_a_failure_below_http_as_its_cause() {
    let refused = read_chain(&format!("{CLOSED}/mcp")).await;
    assert!(
        matches!(refused, ExchangeError::Metadata { .. }),
        "{refused}"
    );
    assert_caused_below_http(&refused);
    let server = TestServer::start(vec![json(503, "{}")]).await;
    let unavailable = read_chain(&format!("{}/mcp", server.url)).await;
    assert!(matches!(unavailable, ExchangeError::Metadata { .. }));
    assert_no_cause(&unavailable);
}
