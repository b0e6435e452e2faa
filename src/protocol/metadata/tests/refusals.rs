//! What the documents must say: the exact resource and issuer, a listed authorization
//! server, and ID-JAG's grant profile and jwt-bearer grant in the lists that are present.

use super::*;

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

    let (authorization, mcp) = listed_server(&["http://127.0.0.1:9"]).await;
    let issuer = authorization.url.clone();
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
