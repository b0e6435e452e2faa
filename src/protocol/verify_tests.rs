//! `validateAssertion` against a loopback JWKS: keys, claims, issuers, refetching.
use super::*;
use crate::protocol::issuer::Accepted;
use crate::test_server::{json, TestServer};
use base64::prelude::{Engine, BASE64_STANDARD, BASE64_URL_SAFE_NO_PAD};
use jsonwebtoken::{EncodingKey, Header};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

const ISSUER: &str = "https://idp.example";
const AUDIENCE: &str = "api://middle-tier";

/// A P-256 signing key and its public JWK under `kid`.
fn key(kid: &str) -> (EncodingKey, Value) {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let point = pair.public_key().as_ref();
    let jwk = serde_json::json!({
        "kty": "EC", "crv": "P-256", "kid": kid, "use": "sig",
        "x": BASE64_URL_SAFE_NO_PAD.encode(&point[1..33]),
        "y": BASE64_URL_SAFE_NO_PAD.encode(&point[33..]),
    });
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        BASE64_STANDARD.encode(pkcs8.as_ref())
    );
    (EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(), jwk)
}

fn now() -> i64 {
    crate::ground::expiry::now_ms() as i64 / 1000
}

fn token(key: &EncodingKey, kid: &str, claims: Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.into());
    let mut base = serde_json::json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "exp": now() + 600, "nbf": now() - 10,
    });
    base.as_object_mut()
        .unwrap()
        .extend(claims.as_object().unwrap().clone());
    jsonwebtoken::encode(&header, &base, key).unwrap()
}

fn verifier() -> Verifier {
    Verifier::new(Rules {
        audiences: vec![AUDIENCE.into()],
        issuers: None,
        leeway_secs: 60,
    })
}

/// The issuer discovery accepted, named exactly.
fn accepted_issuer() -> DocumentIssuer {
    DocumentIssuer {
        named: ISSUER.into(),
        accepted: Accepted::Exact,
    }
}

async fn jwks_server(keys: &[&Value]) -> (TestServer, Url) {
    let body = serde_json::json!({ "keys": keys }).to_string();
    let server = TestServer::start(vec![json(200, &body)]).await;
    let url = Url::parse(&format!("{}/jwks", server.url)).unwrap();
    (server, url)
}

fn reason(result: Result<(), ExchangeError>) -> String {
    match result {
        Err(ExchangeError::Assertion(AssertionProblem::Invalid { reason, .. })) => reason,
        other => panic!("expected an invalid assertion, got {other:?}"),
    }
}

#[tokio::test]
async fn a_good_assertion_verifies_and_the_keys_are_fetched_once() {
    let (signing, jwk) = key("k1");
    let (server, uri) = jwks_server(&[&jwk]).await;
    let (v, http) = (verifier(), Client::new());
    for _ in 0..3 {
        let assertion = token(&signing, "k1", serde_json::json!({}));
        v.verify(&assertion, &uri, &accepted_issuer(), &http)
            .await
            .unwrap();
    }
    assert_eq!(server.received().len(), 1);
}

#[tokio::test]
async fn claims_outside_the_rules_are_refused_with_a_reason() {
    let (signing, jwk) = key("k1");
    let (_server, uri) = jwks_server(&[&jwk]).await;
    let (v, http) = (verifier(), Client::new());
    let check = |claims: Value| {
        let assertion = token(&signing, "k1", claims);
        let (v, http, uri) = (&v, &http, &uri);
        async move { v.verify(&assertion, uri, &accepted_issuer(), http).await }
    };
    let kind =
        |result: &Result<(), ExchangeError>| result.as_ref().err().and_then(ExchangeError::kind);
    let graph = check(serde_json::json!({"aud": "00000003-0000-0000-c000-000000000000"})).await;
    assert_eq!(kind(&graph), Some("audience"));
    let graph = reason(graph);
    assert!(graph.contains("its aud \"00000003-0000-0000-c000-000000000000\" is not among the accepted audiences [api://middle-tier]"), "{graph}");
    let issuer = check(serde_json::json!({"iss": "https://evil.example"})).await;
    assert_eq!(kind(&issuer), Some("issuer"));
    let issuer = reason(issuer);
    assert!(issuer.contains("iss \"https://evil.example\""), "{issuer}");
    let expired = check(serde_json::json!({"exp": now() - 120})).await;
    assert_eq!(kind(&expired), None, "only a refused aud or iss has a kind");
    assert!(reason(expired).starts_with("it expired"));
    assert!(reason(check(serde_json::json!({"nbf": now() + 600})).await)
        .starts_with("it is not valid yet"));
    let within_leeway = token(&signing, "k1", serde_json::json!({"exp": now() - 30}));
    v.verify(&within_leeway, &uri, &accepted_issuer(), &http)
        .await
        .unwrap();
}

#[tokio::test]
async fn forged_signatures_and_symmetric_algorithms_are_refused() {
    let (_signing, jwk) = key("k1");
    let (forger, _) = key("k1");
    let (_server, uri) = jwks_server(&[&jwk]).await;
    let (v, http) = (verifier(), Client::new());
    let forged = token(&forger, "k1", serde_json::json!({}));
    assert!(
        reason(v.verify(&forged, &uri, &accepted_issuer(), &http).await)
            .contains("signature does not verify")
    );
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("k1".into());
    let claims = serde_json::json!({"iss": ISSUER, "aud": AUDIENCE, "exp": now() + 600});
    let hmac = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(b"s")).unwrap();
    assert!(reason(v.verify(&hmac, &uri, &accepted_issuer(), &http).await).contains("HS256"));
}

#[tokio::test]
async fn an_unknown_kid_refetches_at_most_once_a_minute() {
    let (signing, jwk) = key("k1");
    let (server, uri) = jwks_server(&[&jwk]).await;
    let (v, http) = (verifier(), Client::new());
    v.verify(
        &token(&signing, "k1", serde_json::json!({})),
        &uri,
        &accepted_issuer(),
        &http,
    )
    .await
    .unwrap();
    let (rotated, _) = key("k2");
    for _ in 0..3 {
        let assertion = token(&rotated, "k2", serde_json::json!({}));
        let why = reason(v.verify(&assertion, &uri, &accepted_issuer(), &http).await);
        assert_eq!(why, "no key with kid 'k2' in the issuer's JWKS");
    }
    assert_eq!(
        server.received().len(),
        1,
        "the first fetch is less than a minute old"
    );
    v.lock().fetched_at = Some(Instant::now() - REFETCH_INTERVAL);
    let _ = v
        .verify(
            &token(&rotated, "k2", serde_json::json!({})),
            &uri,
            &accepted_issuer(),
            &http,
        )
        .await;
    assert_eq!(server.received().len(), 2);
}

#[tokio::test]
async fn under_entras_template_the_iss_must_name_the_tokens_own_tid() {
    let (signing, jwk) = key("k1");
    let (_server, uri) = jwks_server(&[&jwk]).await;
    let (v, http) = (verifier(), Client::new());
    let template = DocumentIssuer {
        named: "https://login.microsoftonline.com/{tenantid}/v2.0".into(),
        accepted: Accepted::Entra,
    };
    let tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    let of = |tid: &str| format!("https://login.microsoftonline.com/{tid}/v2.0");
    let check = |claims: Value| {
        let assertion = token(&signing, "k1", claims);
        let (v, http, uri, template) = (&v, &http, &uri, &template);
        async move { v.verify(&assertion, uri, template, http).await }
    };
    check(serde_json::json!({"iss": of(tenant), "tid": tenant}))
        .await
        .unwrap();
    let other = reason(check(serde_json::json!({"iss": of("other-tenant"), "tid": tenant})).await);
    assert!(
        other.contains(&format!(
            "is not among the accepted issuers [{}]",
            of(tenant)
        )),
        "{other}"
    );
    let untenanted = reason(check(serde_json::json!({"iss": of(tenant)})).await);
    assert!(
        untenanted.starts_with(
            "it has no tid claim, and the issuer https://login.microsoftonline.com/{tenantid}/v2.0"
        ),
        "{untenanted}"
    );
    let numeric = reason(check(serde_json::json!({"iss": of("7"), "tid": 7})).await);
    assert!(
        numeric.starts_with("it has no tid claim"),
        "a tid must be a string: {numeric}"
    );
    let literal =
        reason(check(serde_json::json!({"iss": template.named.clone(), "tid": tenant})).await);
    assert!(
        literal.contains("its iss"),
        "the template itself is no issuer: {literal}"
    );
}

#[tokio::test]
async fn configured_issuers_replace_the_discovered_one() {
    let (signing, jwk) = key("k1");
    let (_server, uri) = jwks_server(&[&jwk]).await;
    let v = Verifier::new(Rules {
        issuers: Some(vec!["https://sts.example/".into()]),
        ..verifier().rules
    });
    let http = Client::new();
    let ours = token(
        &signing,
        "k1",
        serde_json::json!({"iss": "https://sts.example/"}),
    );
    v.verify(&ours, &uri, &accepted_issuer(), &http)
        .await
        .unwrap();
    let discovered = token(&signing, "k1", serde_json::json!({}));
    let why = reason(v.verify(&discovered, &uri, &accepted_issuer(), &http).await);
    assert!(
        why.contains("accepted issuers [https://sts.example/]"),
        "{why}"
    );
}

/// What verifying `assertion` fails with when the JWKS answers `reply`.
async fn jwks_failure(reply: crate::test_server::Reply) -> ExchangeError {
    let (signing, _) = key("k1");
    let server = TestServer::start(vec![reply]).await;
    let url = Url::parse(&format!("{}/jwks", server.url)).unwrap();
    let assertion = token(&signing, "k1", serde_json::json!({}));
    verifier()
        .verify(&assertion, &url, &accepted_issuer(), &Client::new())
        .await
        .unwrap_err()
}

#[tokio::test]
async fn a_jwks_that_cannot_be_had_is_transient_only_as_the_fetcher_judges() {
    for (reply, retryable, says) in [
        (json(503, "{}"), true, "the JWKS request failed (HTTP 503)"),
        (json(429, "{}"), true, "the JWKS request failed (HTTP 429)"),
        (json(404, "{}"), false, "the JWKS request failed (HTTP 404)"),
        (
            json(200, "<html>"),
            false,
            "the JWKS document cannot be read",
        ),
        (
            json(200, r#"{"keys":{}}"#),
            false,
            "the document has no keys array",
        ),
    ] {
        let error = jwks_failure(reply).await;
        assert!(
            matches!(&error, ExchangeError::Jwks { uri, detail, .. }
                if uri.ends_with("/jwks") && detail.starts_with(says)),
            "{error:?}"
        );
        assert_eq!(error.is_retryable(), retryable, "{error}");
        assert_eq!(error.code(), Some("ERR_JWKS_UNAVAILABLE"));
    }
}

#[tokio::test]
async fn keys_this_library_cannot_read_are_skipped() {
    let (signing, jwk) = key("k1");
    let odd = serde_json::json!({ "kty": "XYZ", "kid": "k0" });
    let (_server, url) = jwks_server(&[&odd, &jwk]).await;
    let assertion = token(&signing, "k1", serde_json::json!({}));
    verifier()
        .verify(&assertion, &url, &accepted_issuer(), &Client::new())
        .await
        .unwrap();
}
