//! What a token endpoint's answer may not do: break off after its head, echo the
//! secrets it received, or hand over a token that is not a bearer token.

use std::time::Duration;

use base64::prelude::{Engine, BASE64_STANDARD};

use super::*;
use crate::protocol::client_auth::CredentialOptions;
use crate::test_server::{http_client, json, Reply, TestServer};

/// An Entra-style secret: `~`, and what else form encoding changes.
const SECRET: &str = "Hz8Q~vX3.a+b/c=d e&f";
const ASSERTION: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln+/=";

fn auth(method: &str) -> ClientAuth {
    let options = CredentialOptions {
        method: Some(method),
        client_secret: Some(SECRET.into()),
        ..Default::default()
    };
    ClientAuth::new("middle tier:1".into(), "", options).unwrap()
}

async fn exchange_with(
    server: &TestServer,
    auth: &ClientAuth,
) -> Result<GrantResponse, ExchangeError> {
    let http = http_client();
    let endpoint = Url::parse(&format!("{}/token", server.url)).unwrap();
    let grant = GrantRequest {
        assertion: ASSERTION,
        scopes: "api://mcp/.default",
        claims: None,
        audience: None,
        resource: None,
    };
    let settings = TokenExchangeSettings {
        subject_token_type: ACCESS_TOKEN_TYPE.into(),
        requested_token_type: None,
    };
    let kind = GrantKind::OnBehalfOf;
    request_token(&http, &endpoint, auth, kind, &settings, &grant).await
}

async fn exchange(replies: Vec<Reply>) -> Result<GrantResponse, ExchangeError> {
    let server = TestServer::start(replies).await;
    exchange_with(&server, &auth("client_secret_post")).await
}

fn token_answer(token: &str) -> Reply {
    let body =
        serde_json::json!({ "access_token": token, "token_type": "Bearer", "expires_in": 3600 });
    json(200, &body.to_string())
}

#[tokio::test]
async fn a_body_cut_short_is_a_reset_that_keeps_its_status_and_retry_after() {
    let cut = |status: u16, extra: &str| {
        Reply::Raw(format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n{extra}content-length: 100\r\n\r\n{{\"access_token\":\"x\""
        ))
    };
    let chunked = |chunks: &str| {
        Reply::Raw(format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n{chunks}"
        ))
    };
    let cases = [
        (cut(200, ""), 200, None),
        (
            cut(503, "retry-after: 2\r\n"),
            503,
            Some(Duration::from_secs(2)),
        ),
        (chunked("5\r\n{\"acc\r\nzz\r\n"), 200, None),
        (chunked("5\r\n{\"acc\r\n"), 200, None),
    ];
    for (reply, status, retry_after) in cases {
        let error = exchange(vec![reply]).await.unwrap_err();
        assert_eq!(error.code(), Some("ECONNRESET"), "{error}");
        assert!(error.is_retryable(), "{error}");
        assert_eq!(error.status(), Some(status), "{error}");
        assert_eq!(error.retry_after(), retry_after, "{error}");
        assert!(
            error
                .to_string()
                .contains(&format!("answered HTTP {status}")),
            "{error}"
        );
    }
}

#[tokio::test]
async fn a_connection_closed_before_the_head_is_a_reset_without_a_status() {
    let error = exchange(vec![Reply::Drop]).await.unwrap_err();
    assert_eq!(error.code(), Some("ECONNRESET"), "{error}");
    assert!(error.is_retryable());
    assert_eq!(error.status(), None);
}

/// Every form in which `SECRET`, the assertion and the Basic credential went out, as the
/// server received them.
fn forms_sent(server: &TestServer) -> Vec<String> {
    let request = server.received().pop().unwrap();
    let mut forms: Vec<String> = request
        .body
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(name, _)| ["client_secret", "assertion"].contains(name))
        .map(|(_, value)| value.to_owned())
        .collect();
    forms.extend(request.head.lines().find_map(|line| {
        let (name, value) = line.split_once(": ")?;
        let credential = value.strip_prefix("Basic ")?;
        name.eq_ignore_ascii_case("authorization")
            .then(|| credential.to_owned())
    }));
    forms.extend([SECRET.to_owned(), ASSERTION.to_owned()]);
    forms.push(BASE64_STANDARD.encode(format!("middle tier:1:{SECRET}")));
    forms
}

#[tokio::test]
async fn an_echoed_secret_is_redacted_in_every_form_it_was_sent_in() {
    for method in ["client_secret_post", "client_secret_basic"] {
        let server = TestServer::start(vec![Reply::Echo(401)]).await;
        let error = exchange_with(&server, &auth(method)).await.unwrap_err();
        let forms = forms_sent(&server);
        assert_eq!(forms.len(), 5, "{method}: {forms:?}");
        let body = error.idp_body().unwrap();
        let description = body.error_description.as_deref().unwrap();
        assert!(
            description.contains("[redacted]"),
            "{method}: {description}"
        );
        assert!(
            description.contains("grant_type="),
            "the echo arrived: {description}"
        );
        for form in &forms {
            assert!(
                !description.contains(form.as_str()),
                "{method}: {form} in {description}"
            );
            assert!(
                !error.to_string().contains(form.as_str()),
                "{method}: {form} in {error}"
            );
        }
    }
}

#[tokio::test]
async fn a_token_that_is_not_a_bearer_token_is_refused_without_being_shown() {
    for token in [
        "abc\r\nX-Injected: 1",
        " ",
        "\u{0}",
        "tök",
        "a=b",
        "==",
        "a\"b",
    ] {
        let error = exchange(vec![token_answer(token)]).await.unwrap_err();
        assert_eq!(
            error.code(),
            Some("ERR_TOKEN_MALFORMED"),
            "{token:?}: {error}"
        );
        assert!(!error.is_retryable());
        let message = error.to_string();
        assert!(
            !message.contains("Injected") && !message.contains("tök"),
            "{message}"
        );
    }
    for token in [
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln-_",
        "EwB4A8l6BAAU+/xyz==",
        "ya29.a0Af~x_y-z",
        "0",
    ] {
        let answer = exchange(vec![token_answer(token)]).await.unwrap();
        assert_eq!(answer.access_token, token);
    }
}

#[tokio::test]
async fn a_token_over_64_kib_is_refused_and_one_at_the_limit_is_kept() {
    let at_limit = "a".repeat(64 * 1024);
    let answer = exchange(vec![token_answer(&at_limit)]).await.unwrap();
    assert_eq!(answer.access_token.len(), 64 * 1024);
    let error = exchange(vec![token_answer(&format!("{at_limit}b"))])
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("ERR_TOKEN_TOO_LARGE"));
    assert_eq!(
        error.to_string(),
        "The token endpoint returned an access token of 65537 bytes; tokens over 65536 bytes are refused"
    );
}

#[tokio::test]
async fn an_issued_token_type_past_512_characters_is_refused() {
    let answer = |kind: &str| {
        let body = serde_json::json!({ "access_token": "t", "issued_token_type": kind });
        json(200, &body.to_string())
    };
    let kept = exchange(vec![answer(&"k".repeat(512))]).await.unwrap();
    assert_eq!(kept.issued_token_type.map(|k| k.len()), Some(512));
    let error = exchange(vec![answer(&"k".repeat(513))]).await.unwrap_err();
    assert_eq!(error.code(), Some("ERR_FIELD_TOO_LONG"));
    assert_eq!(
        error.to_string(),
        "The token response has 513 characters in issued_token_type; at most 512 are read"
    );
}
