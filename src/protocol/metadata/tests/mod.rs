//! The MCP authorization metadata chain against scripted loopback servers; the tests are
//! split by concern, and this module holds what they share.

mod failures;
mod refusals;
mod urls;

use super::*;
use crate::test_server::{http_client as http, json, Reply, TestServer};

const PROFILE_DOC: &str =
    r#""authorization_grant_profiles_supported":["urn:ietf:params:oauth:grant-profile:id-jag"]"#;

/// The chain's servers run on loopback, which the SSRF policy refuses unless listed.
fn guard() -> Guard {
    Guard::listing(&["127.0.0.1"], http())
}

/// An authorization server answering `replies(issuer)` in order.
async fn server(replies: impl FnOnce(&str) -> Vec<Reply>) -> TestServer {
    TestServer::start_with(replies).await
}

fn as_document(issuer: &str, extra: &str) -> String {
    format!(r#"{{"issuer":"{issuer}","token_endpoint":"{issuer}/token"{extra}}}"#)
}

fn resource_document(resource: &str, servers: &[&str]) -> String {
    let list: Vec<String> = servers.iter().map(|s| format!(r#""{s}""#)).collect();
    format!(
        r#"{{"resource":"{resource}","authorization_servers":[{}]}}"#,
        list.join(",")
    )
}

/// An authorization server that advertises the ID-JAG profile, and an MCP server (its
/// resource at `/mcp`) whose metadata lists `before`, then that server.
async fn listed_server(before: &[&str]) -> (TestServer, TestServer) {
    let authorization =
        server(|issuer| vec![json(200, &as_document(issuer, &format!(",{PROFILE_DOC}")))]).await;
    let mut listed = before.to_vec();
    listed.push(&authorization.url);
    let mcp = TestServer::start_with(|url| {
        vec![json(
            200,
            &resource_document(&format!("{url}/mcp"), &listed),
        )]
    })
    .await;
    (authorization, mcp)
}

async fn chain(
    as_replies: impl FnOnce(&str) -> Vec<Reply>,
    resource_replies: impl FnOnce(&str, &str) -> Vec<Reply>,
    expected: Option<&str>,
) -> (
    Result<AuthorizationServer, ExchangeError>,
    TestServer,
    TestServer,
) {
    let authorization = server(as_replies).await;
    let issuer = authorization.url.clone();
    let mcp = TestServer::start_with(|url| resource_replies(&format!("{url}/mcp"), &issuer)).await;
    let resource = format!("{}/mcp", mcp.url);
    let outcome = discover(&http(), &guard(), &resource, expected, None).await;
    (outcome, authorization, mcp)
}

fn detail(error: &ExchangeError) -> (String, bool) {
    match error {
        ExchangeError::Metadata {
            detail, retryable, ..
        } => (detail.clone(), *retryable),
        other => panic!("not a metadata error: {other}"),
    }
}

/// What a metadata error says failed; the doctor switches on it (`kind`).
fn problem(error: &ExchangeError) -> MetadataProblem {
    match error {
        ExchangeError::Metadata { problem, .. } => *problem,
        other => panic!("not a metadata error: {other}"),
    }
}
