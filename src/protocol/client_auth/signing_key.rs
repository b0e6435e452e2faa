//! The key behind `private_key_jwt`: read from PEM once (and proven by signing, so a
//! bad key fails at start-up), then a freshly signed client assertion per request.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::prelude::{Engine, BASE64_STANDARD, BASE64_URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::digest::{digest, SHA1_FOR_LEGACY_USE_ONLY, SHA256};
use ring::rand::{SecureRandom, SystemRandom};
use serde::Serialize;

use crate::ground::error::ConfigError;

/// Lifetime of a client assertion: Entra allows 5-10 minutes; we use 5.
const ASSERTION_LIFETIME_SECS: u64 = 300;

/// The key options as configured (see `CredentialOptions`).
pub struct KeyOptions<'a> {
    /// PEM: PKCS#8 (RSA or EC P-256/P-384) or PKCS#1 RSA.
    pub pem: Option<&'a str>,
    pub key_id: Option<&'a str>,
    /// PEM certificate of the key: its thumbprints go into the header (Entra).
    pub certificate: Option<&'a str>,
    pub alg: Option<&'a str>,
    /// `token_endpoint` (default) or `issuer`.
    pub audience: Option<&'a str>,
}

/// What signs the client assertions.
#[derive(Clone)]
pub struct SigningKey {
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

impl SigningKey {
    pub fn new(issuer: &str, options: &KeyOptions) -> Result<Self, ConfigError> {
        let pem = options
            .pem
            .filter(|pem| !pem.trim().is_empty())
            .ok_or_else(|| {
                ConfigError::new("clientAssertionKey", "is required for private_key_jwt")
            })?;
        let (key, alg) = parse_key(pem, options.alg)?;
        let mut header = Header::new(alg);
        header.typ = Some("JWT".into());
        header.kid = options
            .key_id
            .filter(|kid| !kid.is_empty())
            .map(str::to_owned);
        if let Some(certificate) = options.certificate {
            let der = certificate_der(certificate)?;
            header.x5t_s256 = Some(BASE64_URL_SAFE_NO_PAD.encode(digest(&SHA256, &der)));
            header.x5t =
                Some(BASE64_URL_SAFE_NO_PAD.encode(digest(&SHA1_FOR_LEGACY_USE_ONLY, &der)));
        }
        if header.kid.is_none() && header.x5t_s256.is_none() {
            return Err(ConfigError::new(
                "clientAssertionKeyId",
                "or options.clientAssertionCertificate is required for private_key_jwt (the IdP picks the key by kid or by x5t#S256)",
            ));
        }
        let audience = match options.audience.map(str::trim) {
            None | Some("token_endpoint") => AssertionAudience::TokenEndpoint,
            Some("issuer") => AssertionAudience::Issuer(issuer.to_owned()),
            Some(other) => {
                return Err(ConfigError::new(
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
    pub fn sign(
        &self,
        client_id: &str,
        endpoint: &str,
    ) -> Result<String, jsonwebtoken::errors::Error> {
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
        return Err(ConfigError::new(
            "clientAssertionKey",
            "is encrypted; give the decrypted PEM",
        ));
    }
    if pem.contains("BEGIN EC PRIVATE KEY") {
        return Err(ConfigError::new(
            "clientAssertionKey",
            "is a SEC1 EC key; convert it to PKCS#8 (openssl pkcs8 -topk8 -nocrypt)",
        ));
    }
    let wanted = alg
        .map(|name| {
            name.trim().parse::<Algorithm>().ok().filter(|a| RSA_ALGS.contains(a) || EC_ALGS.contains(a)).ok_or_else(|| {
                ConfigError::new(
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
            return Err(ConfigError::new(
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
            ConfigError::new(
                "clientAssertionAlg",
                format!("{alg:?} does not fit the key in options.clientAssertionKey"),
            )
        })?,
        None => *family.iter().find(|alg| signs(alg)).ok_or_else(|| {
            ConfigError::new(
                "clientAssertionKey",
                "cannot sign with RS256, ES256 or ES384",
            )
        })?,
    };
    Ok((key, alg))
}

/// The DER bytes of the first certificate in a PEM.
pub(super) fn certificate_der(pem: &str) -> Result<Vec<u8>, ConfigError> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let bad = || {
        ConfigError::new(
            "clientAssertionCertificate",
            "is not a PEM certificate (-----BEGIN CERTIFICATE-----)",
        )
    };
    let start = pem.find(BEGIN).ok_or_else(bad)? + BEGIN.len();
    let end = start + pem[start..].find(END).ok_or_else(bad)?;
    let body: String = pem[start..end].split_whitespace().collect();
    BASE64_STANDARD.decode(body).map_err(|_| bad())
}
