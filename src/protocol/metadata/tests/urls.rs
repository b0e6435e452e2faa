//! Where the chain's documents are read: the well-known paths and their fallbacks, a
//! challenge's `resource_metadata` first, and which URLs are secure enough to read.

use super::*;

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
    let (authorization, mcp) = listed_server(&[]).await;
    let issuer = authorization.url.clone();
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
