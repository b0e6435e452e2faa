//! How the middle-tier client proves itself at the token endpoint.
//!
//! `client_secret_post` is the default because it is what LibreChat (openid-client)
//! sends; `client_secret_basic` is RFC 6749 §2.3.1, which Entra also accepts.
//! `private_key_jwt` (RFC 7523 §2.2, Entra's certificate credentials) signs a short-lived
//! JWT with the client's key for every request: a fresh `jti` each time, so an IdP that
//! remembers `jti`s never sees one twice, and no assertion outlives five minutes.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::prelude::{Engine, BASE64_STANDARD, BASE64_URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::RequestBuilder;
use ring::digest::{digest, SHA1_FOR_LEGACY_USE_ONLY, SHA256};
use ring::rand::{SecureRandom, SystemRandom};
use serde::Serialize;
use url::form_urlencoded::byte_serialize;
use url::Url;

use crate::config::ConfigError;
use crate::error::ExchangeError;

/// RFC 7523 §2.2 `client_assertion_type`.
const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Lifetime of a client assertion: Entra allows 5-10 minutes; the issue asks for at most 5.
const ASSERTION_LIFETIME_SECS: u64 = 300;

/// The supported client authentication methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    ClientSecretPost,
    ClientSecretBasic,
    PrivateKeyJwt,
}

impl Method {
    fn parse(name: Option<&str>) -> Result<Self, ConfigError> {
        match name.map(str::trim) {
            None | Some("client_secret_post") => Ok(Self::ClientSecretPost),
            Some("client_secret_basic") => Ok(Self::ClientSecretBasic),
            Some("private_key_jwt") => Ok(Self::PrivateKeyJwt),
            Some(other) => Err(invalid(
                "clientAuthMethod",
                format!("must be 'client_secret_post', 'client_secret_basic' or 'private_key_jwt', got '{other}'"),
            )),
        }
    }

    /// The method's registered name.
    pub fn name(self) -> &'static str {
        match self {
            Self::ClientSecretPost => "client_secret_post",
            Self::ClientSecretBasic => "client_secret_basic",
            Self::PrivateKeyJwt => "private_key_jwt",
        }
    }
}

/// Credential options as configured (see `config::Options`).
#[derive(Default)]
pub struct CredentialOptions<'a> {
    pub method: Option<&'a str>,
    pub client_secret: Option<String>,
    /// PEM: PKCS#8 (RSA or EC P-256/P-384) or PKCS#1 RSA.
    pub client_assertion_key: Option<&'a str>,
    pub client_assertion_key_id: Option<String>,
    /// PEM certificate of the key: its thumbprints go into the header (Entra).
    pub client_assertion_certificate: Option<&'a str>,
    pub assertion_alg: Option<&'a str>,
    /// `token_endpoint` (default, what Entra wants) or `issuer` (RFC 7523bis servers).
    pub assertion_audience: Option<&'a str>,
}

/// A client identity and its credential. `Debug` never shows the secret or the key.
#[derive(Clone)]
pub struct ClientAuth {
    client_id: String,
    credential: Credential,
}

#[derive(Clone)]
enum Credential {
    SecretPost(String),
    SecretBasic(String),
    Key(Box<SigningKey>),
}

/// What signs the client assertions.
#[derive(Clone)]
struct SigningKey {
    key: EncodingKey,
    header: Header,
    audience: AssertionAudience,
}

/// The `aud` of client assertions.
#[derive(Clone, Debug, PartialEq, Eq)]
enum AssertionAudience {
    TokenEndpoint,
    Issuer(String),
}

impl fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientAuth")
            .field("method", &self.method())
            .field("client_id", &self.client_id)
            .field("credential", &"[redacted]")
            .finish()
    }
}

/// The claims of a client assertion (RFC 7523 §3).
#[derive(Serialize)]
struct AssertionClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    jti: String,
    iat: u64,
    nbf: u64,
    exp: u64,
}

impl ClientAuth {
    /// Builds the credential: a secret for the secret methods, a key for
    /// `private_key_jwt` (`parse_key` signs with it once, so a bad key fails at start-up
    /// rather than at the first exchange).
    pub fn new(
        client_id: String,
        issuer: &str,
        options: CredentialOptions,
    ) -> Result<Self, ConfigError> {
        let method = Method::parse(options.method)?;
        let secret = || {
            options
                .client_secret
                .clone()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| {
                    invalid("clientSecret", format!("is required for {}", method.name()))
                })
        };
        let credential = match method {
            Method::ClientSecretPost => Credential::SecretPost(secret()?),
            Method::ClientSecretBasic => Credential::SecretBasic(secret()?),
            Method::PrivateKeyJwt => Credential::Key(Box::new(SigningKey::new(issuer, &options)?)),
        };
        Ok(Self {
            client_id,
            credential,
        })
    }

    pub fn method(&self) -> Method {
        match self.credential {
            Credential::SecretPost(_) => Method::ClientSecretPost,
            Credential::SecretBasic(_) => Method::ClientSecretBasic,
            Credential::Key(_) => Method::PrivateKeyJwt,
        }
    }

    /// The secret, which must never leave this process in a message.
    pub fn sensitive(&self) -> Option<&str> {
        match &self.credential {
            Credential::SecretPost(secret) | Credential::SecretBasic(secret) => Some(secret),
            Credential::Key(_) => None,
        }
    }

    /// A freshly signed client assertion for a request to `endpoint`
    /// (`private_key_jwt` only).
    pub fn client_assertion(&self, endpoint: &Url) -> Result<Option<String>, ExchangeError> {
        match &self.credential {
            Credential::Key(key) => key
                .sign(&self.client_id, endpoint.as_str())
                .map(Some)
                .map_err(|e| ExchangeError::ClientAssertion(e.to_string())),
            _ => Ok(None),
        }
    }

    /// Adds the credential to a token request: form fields for `client_secret_post`
    /// and `private_key_jwt` (with `client_assertion` from `client_assertion`), an
    /// `Authorization: Basic` header (with form-urlencoded parts, as RFC 6749
    /// requires) for `client_secret_basic`.
    pub fn apply<'a>(
        &'a self,
        request: RequestBuilder,
        form: &mut Vec<(&'static str, &'a str)>,
        client_assertion: Option<&'a str>,
    ) -> RequestBuilder {
        match &self.credential {
            Credential::SecretPost(secret) => {
                form.push(("client_id", &self.client_id));
                form.push(("client_secret", secret));
                request
            }
            Credential::SecretBasic(secret) => {
                let id: String = byte_serialize(self.client_id.as_bytes()).collect();
                let secret: String = byte_serialize(secret.as_bytes()).collect();
                request.basic_auth(id, Some(secret))
            }
            Credential::Key(_) => {
                form.push(("client_id", &self.client_id));
                form.push(("client_assertion_type", JWT_BEARER_ASSERTION));
                form.extend(client_assertion.map(|jwt| ("client_assertion", jwt)));
                request
            }
        }
    }
}

impl SigningKey {
    fn new(issuer: &str, options: &CredentialOptions) -> Result<Self, ConfigError> {
        let pem = options
            .client_assertion_key
            .filter(|pem| !pem.trim().is_empty())
            .ok_or_else(|| invalid("clientAssertionKey", "is required for private_key_jwt"))?;
        let (key, alg) = parse_key(pem, options.assertion_alg)?;
        let mut header = Header::new(alg);
        header.typ = Some("JWT".into());
        header.kid = options
            .client_assertion_key_id
            .clone()
            .filter(|kid| !kid.is_empty());
        if let Some(certificate) = options.client_assertion_certificate {
            let der = certificate_der(certificate)?;
            header.x5t_s256 = Some(BASE64_URL_SAFE_NO_PAD.encode(digest(&SHA256, &der)));
            header.x5t =
                Some(BASE64_URL_SAFE_NO_PAD.encode(digest(&SHA1_FOR_LEGACY_USE_ONLY, &der)));
        }
        if header.kid.is_none() && header.x5t_s256.is_none() {
            return Err(invalid(
                "clientAssertionKeyId",
                "or options.clientAssertionCertificate is required for private_key_jwt (the IdP picks the key by kid or by x5t#S256)",
            ));
        }
        let audience = match options.assertion_audience.map(str::trim) {
            None | Some("token_endpoint") => AssertionAudience::TokenEndpoint,
            Some("issuer") => AssertionAudience::Issuer(issuer.to_owned()),
            Some(other) => {
                return Err(invalid(
                    "clientAssertionAudience",
                    format!("must be 'token_endpoint' or 'issuer', got '{other}'"),
                ))
            }
        };
        Ok(Self {
            key,
            header,
            audience,
        })
    }

    /// Signs a new assertion: `iss` = `sub` = client id, a random `jti`, five minutes.
    fn sign(&self, client_id: &str, endpoint: &str) -> Result<String, jsonwebtoken::errors::Error> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let aud = match &self.audience {
            AssertionAudience::TokenEndpoint => endpoint,
            AssertionAudience::Issuer(issuer) => issuer,
        };
        let claims = AssertionClaims {
            iss: client_id,
            sub: client_id,
            aud,
            jti: random_jti(),
            iat: now,
            nbf: now,
            exp: now + ASSERTION_LIFETIME_SECS,
        };
        jsonwebtoken::encode(&self.header, &claims, &self.key)
    }
}

/// 128 random bits, hex: unique per assertion.
fn random_jti() -> String {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system random source is available");
    hex::encode(bytes)
}

/// Key families a PEM may hold, with the algorithms each can sign.
const RSA_ALGS: [Algorithm; 6] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];
const EC_ALGS: [Algorithm; 2] = [Algorithm::ES256, Algorithm::ES384];

/// Reads the PEM key and settles the algorithm: the configured one, else RS256 for
/// RSA and ES256 or ES384 by the curve. Which curve a PKCS#8 EC key is on shows only
/// when signing, so the family's algorithms are tried in turn.
fn parse_key(pem: &str, alg: Option<&str>) -> Result<(EncodingKey, Algorithm), ConfigError> {
    let pem = pem.trim();
    if pem.contains("ENCRYPTED PRIVATE KEY") {
        return Err(invalid(
            "clientAssertionKey",
            "is encrypted; give the decrypted PEM",
        ));
    }
    if pem.contains("BEGIN EC PRIVATE KEY") {
        return Err(invalid(
            "clientAssertionKey",
            "is a SEC1 EC key; convert it to PKCS#8 (openssl pkcs8 -topk8 -nocrypt)",
        ));
    }
    let wanted = alg
        .map(|name| {
            name.trim().parse::<Algorithm>().ok().filter(|a| RSA_ALGS.contains(a) || EC_ALGS.contains(a)).ok_or_else(|| {
                invalid(
                    "clientAssertionAlg",
                    format!("must be one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, got '{name}'"),
                )
            })
        })
        .transpose()?;
    let (key, family): (EncodingKey, &[Algorithm]) = match (
        EncodingKey::from_rsa_pem(pem.as_bytes()),
        EncodingKey::from_ec_pem(pem.as_bytes()),
    ) {
        (Ok(rsa), _) => (rsa, &RSA_ALGS),
        (_, Ok(ec)) => (ec, &EC_ALGS),
        _ => {
            return Err(invalid(
                "clientAssertionKey",
                "is not a PEM RSA or EC private key",
            ))
        }
    };
    let signs = |alg: &Algorithm| {
        family.contains(alg)
            && jsonwebtoken::encode(&Header::new(*alg), &serde_json::json!({}), &key).is_ok()
    };
    let alg = match wanted {
        Some(alg) => signs(&alg).then_some(alg).ok_or_else(|| {
            invalid(
                "clientAssertionAlg",
                format!("{alg:?} does not fit the key in options.clientAssertionKey"),
            )
        })?,
        None => *family.iter().find(|alg| signs(alg)).ok_or_else(|| {
            invalid(
                "clientAssertionKey",
                "cannot sign with RS256, ES256 or ES384",
            )
        })?,
    };
    Ok((key, alg))
}

/// The DER bytes of the first certificate in a PEM.
fn certificate_der(pem: &str) -> Result<Vec<u8>, ConfigError> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let bad = || {
        invalid(
            "clientAssertionCertificate",
            "is not a PEM certificate (-----BEGIN CERTIFICATE-----)",
        )
    };
    let start = pem.find(BEGIN).ok_or_else(bad)? + BEGIN.len();
    let end = start + pem[start..].find(END).ok_or_else(bad)?;
    let body: String = pem[start..end].split_whitespace().collect();
    BASE64_STANDARD.decode(body).map_err(|_| bad())
}

fn invalid(option: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        option,
        problem: problem.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(!format!("{auth:?}").contains("top-secret"));
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
    fn p256_key() -> (String, Vec<u8>) {
        use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
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
        let options =
            |alg: Option<&'static str>, audience: Option<&'static str>| CredentialOptions {
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
        for (alg, option) in [
            (Some("RS256"), "clientAssertionAlg"),
            (Some("HS256"), "clientAssertionAlg"),
            (Some("none"), "clientAssertionAlg"),
        ] {
            let err = ClientAuth::new("c".into(), "https://i", options(alg, None)).unwrap_err();
            assert_eq!(err.option, option, "{alg:?}");
        }
        let err = ClientAuth::new("c".into(), "https://i", options(None, Some("aud"))).unwrap_err();
        assert_eq!(err.option, "clientAssertionAudience");
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
}
