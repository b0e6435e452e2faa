//! Documents that cannot be had: outages that may pass, documents missing at every URL
//! tried, unreadable ones, a server that is not there.

use super::*;

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
