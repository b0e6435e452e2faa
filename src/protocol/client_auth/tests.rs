//! Client authentication: secrets in the form or the Basic header, and signed
//! client assertions verified by signature.

use super::signing_key::certificate_der;
use super::*;
use base64::prelude::{Engine, BASE64_STANDARD, BASE64_URL_SAFE_NO_PAD};
use jsonwebtoken::Algorithm;
use ring::digest::{digest, SHA256};
use ring::rand::SystemRandom;

fn secret_auth(method: Option<&str>, id: &str, secret: &str) -> ClientAuth {
    let options = CredentialOptions {
        method,
        client_secret: Some(secret.into()),
        ..CredentialOptions::default()
    };
    ClientAuth::new(id.into(), "https://idp.example", options).unwrap()
}

#[test]
fn debug_hides_the_secret() {
    let auth = secret_auth(None, "id", "top-secret");
    assert_eq!(
        format!("{auth:?}"),
        r#"ClientAuth { method: ClientSecretPost, client_id: "id", credential: "[redacted]" }"#
    );
    assert_eq!(auth.method(), Method::ClientSecretPost);
}

#[test]
fn basic_auth_urlencodes_before_base64() {
    let auth = secret_auth(Some("client_secret_basic"), "a:b", "p w&");
    let mut form = Vec::new();
    let request = auth
        .apply(
            reqwest::Client::new().post("http://127.0.0.1/"),
            &mut form,
            None,
        )
        .build()
        .unwrap();
    assert!(form.is_empty());
    let header = request.headers()["authorization"].to_str().unwrap();
    // base64("a%3Ab:p+w%26")
    assert_eq!(header, "Basic YSUzQWI6cCt3JTI2");
}

#[test]
fn unknown_method_and_missing_key_are_named() {
    let options = CredentialOptions {
        method: Some("tls_client_auth"),
        ..CredentialOptions::default()
    };
    let err = ClientAuth::new("id".into(), "https://i", options).unwrap_err();
    assert_eq!(err.option, "clientAuthMethod");
    let options = CredentialOptions {
        method: Some("private_key_jwt"),
        ..CredentialOptions::default()
    };
    let err = ClientAuth::new("id".into(), "https://i", options).unwrap_err();
    assert_eq!(err.option, "clientAssertionKey");
}

#[test]
fn rejects_keys_it_cannot_use_with_a_reason() {
    for (pem, option, says) in [
        ("not a key", "clientAssertionKey", "not a PEM"),
        (
            "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----",
            "clientAssertionKey",
            "PKCS#8",
        ),
        (
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----",
            "clientAssertionKey",
            "encrypted",
        ),
    ] {
        let options = CredentialOptions {
            method: Some("private_key_jwt"),
            client_assertion_key: Some(pem),
            client_assertion_key_id: Some("k".into()),
            ..CredentialOptions::default()
        };
        let err = ClientAuth::new("id".into(), "https://i", options).unwrap_err();
        assert_eq!(err.option, option);
        assert!(err.problem.contains(says), "{}", err.problem);
        assert!(!err.to_string().contains("AAAA"));
    }
}

/// A fresh P-256 key as PKCS#8 PEM, and its public point for verification.
pub(super) fn p256_key() -> (String, Vec<u8>) {
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let body = BASE64_STANDARD.encode(pkcs8.as_ref());
    let pem = format!("-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n");
    (pem, pair.public_key().as_ref().to_vec())
}

#[test]
fn private_key_jwt_signs_a_fresh_short_assertion_for_each_request() {
    let (pem, public) = p256_key();
    let cert_der = b"certificate DER";
    let cert = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----",
        BASE64_STANDARD.encode(cert_der)
    );
    let options = CredentialOptions {
        method: Some("private_key_jwt"),
        client_assertion_key: Some(&pem),
        client_assertion_key_id: Some("key-1".into()),
        client_assertion_certificate: Some(&cert),
        ..CredentialOptions::default()
    };
    let auth = ClientAuth::new("middle-tier".into(), "https://idp.example", options).unwrap();
    assert!(!format!("{auth:?}").contains("PRIVATE"));
    let endpoint = Url::parse("https://idp.example/token").unwrap();
    let first = auth.client_assertion(&endpoint).unwrap().unwrap();
    let second = auth.client_assertion(&endpoint).unwrap().unwrap();

    let header = jsonwebtoken::decode_header(&first).unwrap();
    assert_eq!(header.alg, Algorithm::ES256);
    assert_eq!(header.kid.as_deref(), Some("key-1"));
    let sha256 = BASE64_URL_SAFE_NO_PAD.encode(digest(&SHA256, cert_der));
    assert_eq!(header.x5t_s256, Some(sha256));
    assert_eq!(header.x5t.map(|t| t.len()), Some(27), "SHA-1 is 20 bytes");

    let key = jsonwebtoken::DecodingKey::from_ec_der(&public);
    let mut validation = jsonwebtoken::Validation::new(Algorithm::ES256);
    validation.set_audience(&["https://idp.example/token"]);
    validation.set_issuer(&["middle-tier"]);
    let claims = |jwt: &str| {
        jsonwebtoken::decode::<serde_json::Value>(jwt, &key, &validation)
            .unwrap()
            .claims
    };
    let (a, b) = (claims(&first), claims(&second));
    assert_eq!(a["sub"], "middle-tier");
    assert_ne!(a["jti"], b["jti"]);
    let lifetime = a["exp"].as_u64().unwrap() - a["iat"].as_u64().unwrap();
    assert!(lifetime <= 300, "{lifetime}");

    let mut form = Vec::new();
    let _request = auth.apply(
        reqwest::Client::new().post(endpoint.as_str()),
        &mut form,
        Some(&first),
    );
    let names: Vec<&str> = form.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        names,
        ["client_id", "client_assertion_type", "client_assertion"]
    );
}

#[test]
fn assertion_audience_can_be_the_issuer_and_alg_must_fit_the_key() {
    let (pem, _) = p256_key();
    let options = |alg: Option<&'static str>, audience: Option<&'static str>| CredentialOptions {
        method: Some("private_key_jwt"),
        client_assertion_key: Some(pem.as_str()),
        client_assertion_key_id: Some("k".into()),
        assertion_alg: alg,
        assertion_audience: audience,
        ..CredentialOptions::default()
    };
    let auth =
        ClientAuth::new("c".into(), "https://issuer", options(None, Some("issuer"))).unwrap();
    let jwt = auth
        .client_assertion(&Url::parse("https://issuer/token").unwrap())
        .unwrap()
        .unwrap();
    let payload = jwt.split('.').nth(1).unwrap();
    let claims: serde_json::Value =
        serde_json::from_slice(&BASE64_URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(claims["aud"], "https://issuer");
    assert!(ClientAuth::new("c".into(), "https://i", options(Some("ES256"), None)).is_ok());
    for (alg, option) in [
        (Some("RS256"), "clientAssertionAlg"),
        (Some("ES384"), "clientAssertionAlg"),
        (Some("HS256"), "clientAssertionAlg"),
        (Some("none"), "clientAssertionAlg"),
    ] {
        let err = ClientAuth::new("c".into(), "https://i", options(alg, None)).unwrap_err();
        assert_eq!(err.option, option, "{alg:?}");
    }
    let err = ClientAuth::new("c".into(), "https://i", options(None, Some("aud"))).unwrap_err();
    assert_eq!(err.option, "clientAssertionAudience");
}

/// A throwaway 2048-bit RSA key made for these tests only (ring cannot generate RSA keys).
const TEST_ONLY_RSA_KEY: &str = include_str!("test-only-rsa-key.pem");

#[test]
fn an_rsa_key_signs_rs256_by_default_and_any_rsa_alg_it_is_given() {
    let options = |alg: Option<&'static str>| CredentialOptions {
        method: Some("private_key_jwt"),
        client_assertion_key: Some(TEST_ONLY_RSA_KEY),
        client_assertion_key_id: Some("k".into()),
        assertion_alg: alg,
        ..CredentialOptions::default()
    };
    let endpoint = Url::parse("https://issuer/token").unwrap();
    for (alg, expected) in [
        (None, Algorithm::RS256),
        (Some("PS256"), Algorithm::PS256),
        (Some("RS512"), Algorithm::RS512),
    ] {
        let auth = ClientAuth::new("c".into(), "https://issuer", options(alg)).unwrap();
        let jwt = auth.client_assertion(&endpoint).unwrap().unwrap();
        assert_eq!(jsonwebtoken::decode_header(&jwt).unwrap().alg, expected);
    }
    let err = ClientAuth::new("c".into(), "https://i", options(Some("ES256"))).unwrap_err();
    assert_eq!(err.option, "clientAssertionAlg");
}

#[test]
fn certificate_thumbprints_are_taken_from_its_der() {
    let der = b"not really a certificate, but DER bytes all the same";
    let pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        BASE64_STANDARD.encode(der)
    );
    assert_eq!(certificate_der(&pem).unwrap(), der);
    assert_eq!(
        certificate_der("garbage").unwrap_err().option,
        "clientAssertionCertificate"
    );
}
