use std::time::Duration;

use super::*;
use crate::protocol::http::{client, ClientSettings};
use crate::test_server::{json, Reply, TestServer};

const PROFILE_DOC: &str =
    r#""authorization_grant_profiles_supported":["urn:ietf:params:oauth:grant-profile:id-jag"]"#;

fn http() -> Client {
    client(&ClientSettings {
        timeout: Duration::from_secs(5),
        proxy: None,
    })
    .unwrap()
}

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

#[tokio::test]
async fn the_chain_runs_from_the_resource_to_an_authorization_server_with_the_profile() {
    let (found, authorization, mcp) = chain(
        |issuer| vec![json(200, &as_document(issuer, &format!(",{PROFILE_DOC}")))],
        |resource, issuer| vec![json(200, &resource_document(resource, &[issuer]))],
        None,
    )
    .await;
    let found = found.unwrap();
    assert_eq!(found.issuer, authorization.url);
    assert_eq!(
        found.token_endpoint.as_str(),
        format!("{}/token", authorization.url)
    );
    assert_eq!(mcp.paths(), ["/.well-known/oauth-protected-resource/mcp"]);
    assert_eq!(
        authorization.paths(),
        ["/.well-known/oauth-authorization-server"]
    );
}

#[tokio::test]
async fn missing_documents_fall_back_to_the_host_s_resource_document_and_to_openid_configuration() {
    let (found, authorization, mcp) = chain(
        |issuer| {
            vec![
                json(404, "{}"),
                json(200, &as_document(issuer, &format!(",{PROFILE_DOC}"))),
            ]
        },
        |resource, issuer| {
            vec![
                json(401, "{}"),
                json(200, &resource_document(resource, &[issuer])),
            ]
        },
        None,
    )
    .await;
    assert!(found.is_ok(), "{found:?}");
    assert_eq!(
        mcp.paths(),
        [
            "/.well-known/oauth-protected-resource/mcp",
            "/.well-known/oauth-protected-resource"
        ]
    );
    assert_eq!(
        authorization.paths(),
        [
            "/.well-known/oauth-authorization-server",
            "/.well-known/openid-configuration"
        ]
    );
}

#[tokio::test]
async fn a_document_about_another_resource_or_issuer_is_refused() {
    let (found, authorization, _mcp) = chain(
        |issuer| vec![json(200, &as_document(issuer, &format!(",{PROFILE_DOC}")))],
        |_, issuer| {
            vec![json(
                200,
                &resource_document("https://elsewhere.example/mcp", &[issuer]),
            )]
        },
        None,
    )
    .await;
    let error = found.unwrap_err();
    assert_eq!(problem(&error), MetadataProblem::ResourceMismatch);
    let (text, retryable) = detail(&error);
    assert!(
        text.contains("names the resource https://elsewhere.example/mcp"),
        "{text}"
    );
    assert!(!retryable);
    assert!(
        authorization.received().is_empty(),
        "nothing asked of the AS"
    );

    let (found, _, _) = chain(
        |_| {
            vec![json(
                200,
                &as_document("https://other.example", &format!(",{PROFILE_DOC}")),
            )]
        },
        |resource, issuer| vec![json(200, &resource_document(resource, &[issuer]))],
        None,
    )
    .await;
    let error = found.unwrap_err();
    assert_eq!(problem(&error), MetadataProblem::IssuerMismatch);
    let (text, _) = detail(&error);
    assert!(
        text.contains("names the issuer https://other.example"),
        "{text}"
    );
}

#[tokio::test]
async fn the_named_authorization_server_must_be_listed_and_is_chosen() {
    let (found, authorization, _) = chain(
        |issuer| vec![json(200, &as_document(issuer, &format!(",{PROFILE_DOC}")))],
        |resource, issuer| {
            vec![json(
                200,
                &resource_document(resource, &["http://127.0.0.1:9", issuer]),
            )]
        },
        None,
    )
    .await;
    let text = found.unwrap_err().to_string();
    assert!(
        text.contains("(http://127.0.0.1:9/.well-known/oauth-authorization-server)"),
        "the first listed was tried: {text}"
    );
    assert!(authorization.received().is_empty());

    let authorization =
        server(|issuer| vec![json(200, &as_document(issuer, &format!(",{PROFILE_DOC}")))]).await;
    let issuer = authorization.url.clone();
    let mcp = TestServer::start_with(|url| {
        vec![json(
            200,
            &resource_document(&format!("{url}/mcp"), &["http://127.0.0.1:9", &issuer]),
        )]
    })
    .await;
    let resource = format!("{}/mcp", mcp.url);
    let found = discover(&http(), &guard(), &resource, Some(&issuer), None)
        .await
        .unwrap();
    assert_eq!(found.issuer, issuer);
    let refused = discover(
        &http(),
        &guard(),
        &resource,
        Some("https://unlisted.example"),
        None,
    )
    .await
    .unwrap_err();
    let (text, _) = detail(&refused);
    assert!(
        text.contains("does not list the authorization server https://unlisted.example"),
        "{text}"
    );
    assert_eq!(problem(&refused), MetadataProblem::ServerNotListed);
    let (kind, empty) = choose(&[], None).unwrap_err();
    assert!(empty.contains("lists no authorization_servers"));
    assert_eq!(kind, MetadataProblem::NoAuthorizationServers);
}

#[tokio::test]
async fn lists_that_are_present_must_name_the_id_jag_profile_and_jwt_bearer() {
    use MetadataProblem::{NoIdJagProfile, NoJwtBearer};
    for (extra, expected, kind) in [
        (
            r#","authorization_grant_profiles_supported":["urn:example:other"]"#.to_owned(),
            "does not advertise the ID-JAG grant profile (urn:ietf:params:oauth:grant-profile:id-jag) in authorization_grant_profiles_supported [urn:example:other]",
            NoIdJagProfile,
        ),
        (
            r#","authorization_grant_profiles_supported":[]"#.to_owned(),
            "in authorization_grant_profiles_supported []",
            NoIdJagProfile,
        ),
        (
            format!(r#",{PROFILE_DOC},"grant_types_supported":["authorization_code"]"#),
            "does not advertise the jwt-bearer grant",
            NoJwtBearer,
        ),
        (
            r#","grant_types_supported":["authorization_code"]"#.to_owned(),
            "does not advertise the jwt-bearer grant",
            NoJwtBearer,
        ),
    ] {
        let (found, _, _) = chain(
            |issuer| vec![json(200, &as_document(issuer, &extra))],
            |resource, issuer| vec![json(200, &resource_document(resource, &[issuer]))],
            None,
        )
        .await;
        let error = found.unwrap_err();
        assert_eq!(error.code(), Some("ERR_ID_JAG_METADATA"));
        assert_eq!(error.kind(), Some(kind.name()));
        let (text, retryable) = detail(&error);
        assert!(text.contains(expected), "{text}");
        assert!(!retryable);
    }
}

/// What the conformance suite's authorization server publishes: no grant profiles, and
/// absent lists say nothing (the ID-JAG draft's SHOULD is no precondition).
#[tokio::test]
async fn lists_that_are_absent_say_nothing() {
    for extra in [
        String::new(),
        format!(r#","grant_types_supported":["{JWT_BEARER}"]"#),
        format!(r#",{PROFILE_DOC},"grant_types_supported":["{JWT_BEARER}"]"#),
        format!(
            r#","grant_types_supported":["{JWT_BEARER}"],"token_endpoint_auth_methods_supported":["client_secret_basic"]"#
        ),
    ] {
        let (found, _, _) = chain(
            |issuer| vec![json(200, &as_document(issuer, &extra))],
            |resource, issuer| vec![json(200, &resource_document(resource, &[issuer]))],
            None,
        )
        .await;
        let found = found.unwrap_or_else(|e| panic!("{extra}: {e}"));
        let methods = extra
            .contains("token_endpoint_auth")
            .then(|| vec!["client_secret_basic".to_owned()]);
        assert_eq!(found.auth_methods, methods, "{extra}");
    }
}

#[tokio::test]
async fn outages_may_pass_and_a_token_endpoint_is_required() {
    let (found, _, _) = chain(
        |_| vec![json(200, "{}")],
        |_, _| vec![json(503, "{}")],
        None,
    )
    .await;
    let error = found.unwrap_err();
    assert_eq!(problem(&error), MetadataProblem::Unavailable);
    let (text, retryable) = detail(&error);
    assert!(text.contains("HTTP 503") && retryable, "{text}");
    let (found, _, _) = chain(
        |issuer| {
            vec![json(
                200,
                &format!(r#"{{"issuer":"{issuer}",{PROFILE_DOC}}}"#),
            )]
        },
        |resource, issuer| vec![json(200, &resource_document(resource, &[issuer]))],
        None,
    )
    .await;
    let error = found.unwrap_err();
    assert_eq!(problem(&error), MetadataProblem::NoTokenEndpoint);
    let (text, retryable) = detail(&error);
    assert!(
        text.contains("no https token_endpoint") && !retryable,
        "{text}"
    );
    let (found, _, _) = chain(
        |issuer| {
            let document = format!(r#"{{"issuer":"{issuer}","token_endpoint":"http://as.example/token",{PROFILE_DOC}}}"#);
            vec![json(200, &document)]
        },
        |resource, issuer| vec![json(200, &resource_document(resource, &[issuer]))],
        None,
    )
    .await;
    assert!(
        detail(&found.unwrap_err())
            .0
            .contains("no https token_endpoint"),
        "plain http elsewhere is refused"
    );
    let (found, _, _) = chain(
        |_| vec![json(200, "{}")],
        |_, _| vec![json(404, "{}")],
        None,
    )
    .await;
    let error = found.unwrap_err();
    assert_eq!(error.code(), Some("ERR_ID_JAG_NO_RESOURCE_METADATA"));
    assert!(!error.is_retryable());
    let ExchangeError::NoResourceMetadata { detail: text, url } = error else {
        panic!("not a missing resource document: {error}");
    };
    assert!(
        url.ends_with("/.well-known/oauth-protected-resource/mcp"),
        "{url}"
    );
    assert!(
        text.starts_with("No metadata document was found (HTTP 404 at http://127.0.0.1:")
            && text.contains("/.well-known/oauth-protected-resource/mcp, HTTP 404 at http://")
            && text.ends_with("/.well-known/oauth-protected-resource)"),
        "every URL tried is named: {text}"
    );
    let (found, _, _) = chain(
        |_| vec![json(404, "{}"), json(404, "{}")],
        |resource, issuer| vec![json(200, &resource_document(resource, &[issuer]))],
        None,
    )
    .await;
    let error = found.unwrap_err();
    assert_eq!(
        error.code(),
        Some("ERR_ID_JAG_METADATA"),
        "only a missing resource document is told apart"
    );
    assert!(detail(&error)
        .0
        .starts_with("No metadata document was found"));
    assert_eq!(problem(&error), MetadataProblem::NotFound);
    let (found, _, _) = chain(
        |_| vec![json(200, "{}")],
        |_, _| vec![json(429, "{}")],
        None,
    )
    .await;
    assert!(detail(&found.unwrap_err()).1, "429 may pass");
    let (found, _, _) = chain(
        |_| vec![json(200, "{}")],
        |_, _| vec![json(200, "[1]")],
        None,
    )
    .await;
    let error = found.unwrap_err();
    assert!(detail(&error).0.contains("cannot be read"));
    assert_eq!(problem(&error), MetadataProblem::Unreadable);
}

#[test]
fn well_known_urls_insert_the_suffix_before_the_path() {
    let url = |s: &str| Url::parse(s).unwrap();
    let strings = |urls: Vec<Url>| urls.into_iter().map(String::from).collect::<Vec<_>>();
    assert_eq!(
        strings(well_known(
            &url("https://mcp.example/a/mcp?x=1"),
            RESOURCE_SUFFIX,
            true
        )),
        [
            "https://mcp.example/.well-known/oauth-protected-resource/a/mcp?x=1",
            "https://mcp.example/.well-known/oauth-protected-resource"
        ]
    );
    assert_eq!(
        strings(well_known(
            &url("https://mcp.example/a/"),
            RESOURCE_SUFFIX,
            true
        )),
        [
            "https://mcp.example/.well-known/oauth-protected-resource/a/",
            "https://mcp.example/.well-known/oauth-protected-resource"
        ],
        "a resource keeps its path's slash"
    );
    assert_eq!(
        strings(well_known(
            &url("https://mcp.example/"),
            RESOURCE_SUFFIX,
            true
        )),
        ["https://mcp.example/.well-known/oauth-protected-resource"]
    );
    assert_eq!(
        strings(well_known(
            &url("https://as.example/t1"),
            "oauth-authorization-server",
            false
        )),
        ["https://as.example/.well-known/oauth-authorization-server/t1"]
    );
    assert_eq!(
        strings(well_known(
            &url("https://as.example/t1/"),
            "openid-configuration",
            false
        )),
        [
            "https://as.example/.well-known/openid-configuration/t1",
            "https://as.example/t1/.well-known/openid-configuration"
        ]
    );
    assert!(metadata_base("https://mcp.example/mcp#frag", "x").is_err());
    assert!(metadata_base("ftp://mcp.example/mcp", "x").is_err());
    for local in [
        "http://127.0.0.1:1/mcp",
        "http://127.9.0.1/",
        "http://localhost:8/",
        "http://[::1]:8/",
    ] {
        assert!(metadata_base(local, "x").is_ok(), "{local}");
    }
    let plain = metadata_base("http://mcp.example/mcp", "the MCP server's resource").unwrap_err();
    assert!(
        plain
            .to_string()
            .contains("must be an https URL (http only on a loopback host)"),
        "{plain}"
    );
    assert_eq!(problem(&plain), MetadataProblem::InsecureUrl);
    assert!(metadata_base("http://10.0.0.1/mcp", "x").is_err());
    assert!(metadata_base("https://mcp.example/mcp", "x").is_ok());
}

#[tokio::test]
async fn a_challenge_s_metadata_url_is_read_first_and_must_be_secure() {
    let authorization =
        server(|issuer| vec![json(200, &as_document(issuer, &format!(",{PROFILE_DOC}")))]).await;
    let issuer = authorization.url.clone();
    let mcp = TestServer::start_with(|url| {
        vec![json(
            200,
            &resource_document(&format!("{url}/mcp"), &[&issuer]),
        )]
    })
    .await;
    let resource = format!("{}/mcp", mcp.url);
    let hint = format!("{}/meta/files.json", mcp.url);
    let found = discover(&http(), &guard(), &resource, None, Some(&hint))
        .await
        .unwrap();
    assert_eq!(found.issuer, issuer);
    assert_eq!(mcp.paths(), ["/meta/files.json"]);
    let refused = discover(
        &http(),
        &guard(),
        &resource,
        None,
        Some("http://10.0.0.1/meta"),
    )
    .await
    .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("the resource_metadata of the server's challenge must be an https URL"),
        "{refused}"
    );
    assert_eq!(mcp.paths().len(), 1, "nothing fetched for an insecure hint");
}

#[tokio::test]
async fn an_unreachable_server_is_named_as_the_metadata_s_not_the_identity_provider_s() {
    // Port 9 (discard) on loopback: nothing listens there in a test run.
    let error = discover(&http(), &guard(), "http://127.0.0.1:9/mcp", None, None)
        .await
        .unwrap_err();
    assert_eq!(problem(&error), MetadataProblem::Unavailable);
    let (text, retryable) = detail(&error);
    assert!(
        text.starts_with("The metadata request could not connect to the server: "),
        "{text}"
    );
    assert!(!text.contains("identity provider"), "{text}");
    assert!(retryable, "a connection failure may pass");
}
