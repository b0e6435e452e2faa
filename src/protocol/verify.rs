//! Optional full verification of the user's assertion before it is exchanged
//! (`validateAssertion`): its signature against the issuer's published keys, and its
//! `iss`, `aud`, `exp` and `nbf`.
//!
//! The IdP verifies the assertion anyway; verifying here first means a token meant for
//! another application (Graph, say: `OPENID_SCOPE` without the app's own API scope) or
//! from another issuer is refused with a plain reason and without a round trip, and a
//! forged token never reaches the IdP under this client's credentials. Only asymmetric
//! algorithms are accepted (never `none`, never an HMAC: an HMAC key would have to be a
//! secret the middle tier shares). Keys are fetched once and again when a token names an
//! unknown `kid` (the IdP rotated its keys), at most once a minute.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::Client;
use serde_json::Value;
use url::Url;

use super::document::fetch_json;
use super::issuer::DocumentIssuer;
use crate::ground::error::{AssertionProblem, ExchangeError, RefusedClaim};

/// Algorithms an assertion may be signed with.
const ALLOWED: [Algorithm; 6] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::ES256,
    Algorithm::ES384,
];
/// The keys are fetched again for an unknown `kid` no more often than this.
const REFETCH_INTERVAL: Duration = Duration::from_secs(60);
/// A claim quoted in an error message is cut after this many characters.
const MAX_CLAIM_CHARS: usize = 200;

/// What an assertion must satisfy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    /// Accepted `aud` values (the middle tier's client id and/or application ID URI).
    pub audiences: Vec<String>,
    /// Accepted `iss` values; `None`: the issuer discovery accepted (for Entra's
    /// multi-tenant template, with the token's own `tid` in it).
    pub issuers: Option<Vec<String>>,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway_secs: u64,
}

/// Verifies assertions against one issuer's keys.
#[derive(Debug)]
pub struct Verifier {
    rules: Rules,
    keys: Mutex<Keys>,
    /// One fetch at a time; callers that waited find the keys already fetched.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default)]
struct Keys {
    set: Vec<Jwk>,
    fetched_at: Option<Instant>,
}

impl Verifier {
    pub fn new(rules: Rules) -> Self {
        Self {
            rules,
            keys: Mutex::default(),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    /// Refuses the assertion unless it is signed by one of the issuer's keys with an
    /// allowed algorithm and its claims fit the rules; `issuer` is the one discovery
    /// accepted.
    pub async fn verify(
        &self,
        assertion: &str,
        jwks_uri: &Url,
        issuer: &DocumentIssuer,
        http: &Client,
    ) -> Result<(), ExchangeError> {
        let invalid = |reason: String| {
            ExchangeError::Assertion(AssertionProblem::Invalid {
                reason,
                claim: None,
            })
        };
        let issuers = self.issuers(assertion, issuer).map_err(invalid)?;
        let header = jsonwebtoken::decode_header(assertion)
            .map_err(|_| invalid("its header cannot be read".into()))?;
        if !ALLOWED.contains(&header.alg) {
            return Err(invalid(format!(
                "it is signed with {:?}; only RS256, RS384, RS512, PS256, ES256 and ES384 are accepted",
                header.alg
            )));
        }
        let key = self
            .key_for(header.kid.as_deref(), header.alg, jwks_uri, http)
            .await?
            .ok_or_else(|| {
                invalid(match &header.kid {
                    Some(kid) => format!("no key with kid '{kid}' in the issuer's JWKS"),
                    None => format!("no {:?} key in the issuer's JWKS", header.alg),
                })
            })?;
        jsonwebtoken::decode::<Value>(assertion, &key, &self.validation(header.alg, &issuers))
            .map(drop)
            .map_err(|error| {
                let reason = self.describe(error.kind(), assertion, &issuers);
                ExchangeError::Assertion(AssertionProblem::Invalid {
                    reason,
                    claim: refused_claim(error.kind()),
                })
            })
    }

    /// The `iss` values accepted: the configured ones, else the one discovery accepted,
    /// which for Entra's multi-tenant template is the template with the token's `tid`
    /// (read unverified here; the signature check that follows covers it).
    fn issuers(&self, assertion: &str, issuer: &DocumentIssuer) -> Result<Vec<String>, String> {
        if let Some(configured) = &self.rules.issuers {
            return Ok(configured.clone());
        }
        let tid = unverified_value(assertion, "tid");
        let tid = tid.as_ref().and_then(Value::as_str);
        issuer
            .expected_iss(tid)
            .map(|iss| vec![iss])
            .ok_or_else(|| {
                format!(
                    "it has no tid claim, and the issuer {} takes the tenant from it",
                    issuer.named
                )
            })
    }

    fn validation(&self, alg: Algorithm, issuers: &[String]) -> Validation {
        let mut validation = Validation::new(alg);
        validation.set_audience(&self.rules.audiences);
        validation.set_issuer(issuers);
        validation.leeway = self.rules.leeway_secs;
        validation.validate_nbf = true;
        validation.required_spec_claims = HashSet::from(["exp", "iss", "aud"].map(String::from));
        validation
    }

    /// A reason an operator can act on; claim values are shown (they are not secret),
    /// the token never is.
    fn describe(&self, kind: &ErrorKind, assertion: &str, issuers: &[String]) -> String {
        let claim = |name: &str| unverified_claim(assertion, name).unwrap_or_else(|| "none".into());
        match kind {
            ErrorKind::InvalidSignature => "its signature does not verify with the issuer's key".into(),
            ErrorKind::ExpiredSignature => format!("it expired (exp {})", claim("exp")),
            ErrorKind::ImmatureSignature => format!("it is not valid yet (nbf {})", claim("nbf")),
            ErrorKind::InvalidAudience => format!(
                "its aud {} is not among the accepted audiences [{}] (a token for another API, such as Graph, cannot be exchanged by this app)",
                claim("aud"),
                self.rules.audiences.join(", ")
            ),
            ErrorKind::InvalidIssuer => format!(
                "its iss {} is not among the accepted issuers [{}]",
                claim("iss"),
                issuers.join(", ")
            ),
            ErrorKind::MissingRequiredClaim(name) => format!("it has no {name} claim"),
            other => format!("it cannot be verified ({other:?})"),
        }
    }

    /// The key for `kid` (or, without a `kid`, the first key that fits `alg`),
    /// fetching the JWKS when nothing was fetched yet or the `kid` is unknown and the
    /// last fetch is more than a minute old.
    async fn key_for(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
        jwks_uri: &Url,
        http: &Client,
    ) -> Result<Option<DecodingKey>, ExchangeError> {
        if let Some(key) = self.find(kid, alg) {
            return Ok(Some(key));
        }
        let _one_fetch = self.fetching.lock().await;
        let due = self
            .lock()
            .fetched_at
            .is_none_or(|at| at.elapsed() >= REFETCH_INTERVAL);
        if due {
            let set = fetch_jwks(jwks_uri, http).await?;
            *self.lock() = Keys {
                set,
                fetched_at: Some(Instant::now()),
            };
        }
        Ok(self.find(kid, alg))
    }

    fn find(&self, kid: Option<&str>, alg: Algorithm) -> Option<DecodingKey> {
        let keys = self.lock();
        keys.set
            .iter()
            .filter(|jwk| kid.is_none_or(|kid| jwk.common.key_id.as_deref() == Some(kid)))
            .filter(|jwk| fits(jwk, alg))
            .find_map(|jwk| DecodingKey::from_jwk(jwk).ok())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Keys> {
        self.keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Whether a JWK can verify `alg`: the right key type, and its own `alg` if it names one.
fn fits(jwk: &Jwk, alg: Algorithm) -> bool {
    let named = jwk
        .common
        .key_algorithm
        .and_then(|a| a.to_string().parse::<Algorithm>().ok());
    if named.is_some_and(|named| named != alg) {
        return false;
    }
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => matches!(
            alg,
            Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 | Algorithm::PS256
        ),
        AlgorithmParameters::EllipticCurve(_) => {
            matches!(alg, Algorithm::ES256 | Algorithm::ES384)
        }
        _ => false,
    }
}

/// The issuer's keys; entries this library cannot read (another key type, an unknown
/// curve) are skipped, not fatal, which `JwkSet` would not allow. Every failure names
/// the JWKS URI and is transient as the document fetcher judges it; a fetch that failed
/// below HTTP keeps that failure as its cause.
async fn fetch_jwks(uri: &Url, http: &Client) -> Result<Vec<Jwk>, ExchangeError> {
    let document: Value = fetch_json(http, uri)
        .await
        .map_err(|error| ExchangeError::Jwks {
            uri: uri.to_string(),
            detail: error.describe("the JWKS"),
            retryable: error.is_transient(),
            cause: error.cause(),
        })?;
    let keys = document
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| ExchangeError::Jwks {
            uri: uri.to_string(),
            detail: "the document has no keys array".into(),
            retryable: false,
            cause: None,
        })?;
    Ok(keys
        .iter()
        .filter_map(|key| serde_json::from_value(key.clone()).ok())
        .collect())
}

/// A claim read from the payload without verification.
fn unverified_value(assertion: &str, name: &str) -> Option<Value> {
    use base64::prelude::{Engine, BASE64_URL_SAFE_NO_PAD};
    let payload = assertion.split('.').nth(1)?;
    let bytes = BASE64_URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let mut claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims.get_mut(name).map(Value::take)
}

/// A claim read from the payload without verification, for error messages only.
fn unverified_claim(assertion: &str, name: &str) -> Option<String> {
    let text = unverified_value(assertion, name)?.to_string();
    Some(match text.char_indices().nth(MAX_CLAIM_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    })
}

/// The claim a verification failure is about, when it is one whose value was refused.
fn refused_claim(kind: &ErrorKind) -> Option<RefusedClaim> {
    match kind {
        ErrorKind::InvalidAudience => Some(RefusedClaim::Audience),
        ErrorKind::InvalidIssuer => Some(RefusedClaim::Issuer),
        _ => None,
    }
}

#[cfg(test)]
#[path = "verify_tests.rs"]
mod tests;
