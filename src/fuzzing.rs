//! The parsers of outside input, reachable by the fuzz targets in `fuzz/` (this module
//! exists only with the `fuzzing` feature, which also leaves the napi bindings out).
//!
//! Each entry takes bytes as a server, Redis or the JS wrapper could send them, runs them
//! through the code production runs, and asserts what must hold whatever came in: a
//! failed assertion is a finding, as a panic is. Inputs that carry more than one value
//! split them on newlines, so the seed corpora stay readable.

use std::time::{Duration, SystemTime};

use serde::Deserialize;
use serde_json::Value;
use url::Url;

use crate::cache::grant_record::GrantRecord;
use crate::cache::shared::{decode_record, hear, Eviction, Evictor, Keyring, Names};
use crate::config::RingKey;
use crate::ground::bounds;
use crate::ground::error::ExchangeError;
use crate::ground::expiry;
use crate::ground::identity::{self, IdentityTuple, Target, SEPARATOR};
use crate::ground::redact::Sensitive;
use crate::protocol::assertion::{self, Demand};
use crate::protocol::challenge::bearer_challenge;
use crate::protocol::{discovery, grant, http, metadata, offline};
use crate::resolve::{self, ErrorFacts, ResolverAnswer, UpstreamField, UpstreamTokens};

/// A secret the token-answer entry "sent", in a shape with every character that its
/// encoded forms change (`~`, `+`, `/`, `=`, a space).
const SECRET: &str = "Hz8Q~a+b/c= d";
const CLIENT_ID: &str = "client-id";
/// A fixed instant, so that a finding replays.
const NOW_MS: u64 = 1_800_000_000_000;

/// The first line of `data` and the rest (all of it and nothing when there is no newline).
fn line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|b| *b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[]),
    }
}

fn text(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(bytes).ok()
}

/// A `WWW-Authenticate` value: parsed or not, and a parsed one holds only real scopes.
pub fn challenge(data: &[u8]) {
    let Some(header) = text(data) else { return };
    if let Some(challenge) = bearer_challenge(header) {
        assert!(challenge
            .scopes
            .iter()
            .all(|s| !s.is_empty() && !s.contains(' ')));
    }
}

/// A token endpoint's answer: the status (first line), `Retry-After` (second), and the
/// body, read as every grant reads it (the exchange's and the offline grant's fields,
/// the error body, the lifetimes). No form of the secret survives into an error.
pub fn token_answer(data: &[u8]) {
    let (status, rest) = line(data);
    let (retry_after, body) = line(rest);
    let Some(status) = text(status).and_then(|s| s.trim().parse::<u16>().ok()) else {
        return;
    };
    let retry_after = text(retry_after).and_then(|v| {
        http::parse_retry_after(v, SystemTime::UNIX_EPOCH + Duration::from_millis(NOW_MS))
    });
    let mut sensitive = Sensitive::default();
    sensitive.basic(CLIENT_ID, SECRET);
    match grant::answer_fields(status, retry_after, body, &sensitive) {
        Ok(fields) => {
            if let Ok(response) = grant::parse_success(fields.clone()) {
                expiry::normalize_expires_in(response.expires_in.as_ref());
                expiry::declared_lifetime_secs(response.refresh_in.as_ref());
            }
            if let Ok(offline) = offline::parse(fields) {
                expiry::scheduled_lifetime_secs(offline.expires_in.as_ref(), None, NOW_MS);
                expiry::refresh_expires_at_ms(offline.refresh_token_expires_in.as_ref(), NOW_MS);
            }
        }
        Err(error) => no_secret_in(&error),
    }
}

/// Every form in which `SECRET` goes out, written out by hand rather than made by
/// `Sensitive` (a form it missed would then be missed by this check too): as it is, form
/// encoded (`+` or `%20` for the space), and inside the base64 of `client_secret_basic`
/// (of the encoded parts, and of the raw ones that some servers echo).
const SECRET_FORMS: [&str; 5] = [
    SECRET,
    "Hz8Q%7Ea%2Bb%2Fc%3D+d",
    "Hz8Q%7Ea%2Bb%2Fc%3D%20d",
    "Y2xpZW50LWlkOkh6OFElN0VhJTJCYiUyRmMlM0QrZA==",
    "Y2xpZW50LWlkOkh6OFF+YStiL2M9IGQ=",
];

fn no_secret_in(error: &ExchangeError) {
    let message = error.message_from("The identity provider");
    let fields = format!("{message} {:?}", error.idp_body());
    for form in SECRET_FORMS {
        assert!(
            !fields.contains(form),
            "a form of the secret is in the error"
        );
    }
}

/// An IdP's discovery document: the configured issuer (first line), then the document,
/// read as the OpenID one or (with a leading `8`) as the RFC 8414 one.
pub fn discovery_document(data: &[u8]) {
    let (issuer, body) = line(data);
    let Some(issuer_text) = text(issuer) else {
        return;
    };
    let Ok(configured) = bounds::parse_url(issuer_text) else {
        return;
    };
    let (openid, body) = match body.split_first() {
        Some((b'8', rest)) => (false, rest),
        _ => (true, body),
    };
    let Ok(document) = serde_json::from_slice::<discovery::Document>(body) else {
        return;
    };
    let url = configured.clone();
    let Ok(read) = discovery::read(&configured, url, document, openid) else {
        return;
    };
    if discovery::within_bounds(issuer_text, &read).is_ok() {
        read.issuer
            .expected_iss(Some("9188040d-6c67-4c5b-b112-36a304b66dad"));
        read.issuer.describe();
    }
}

/// MCP authorization metadata. `r`: the resource (first line), the operator's issuer
/// (second, may be empty) and RFC 9728 metadata; `s`: the issuer and RFC 8414 metadata;
/// anything else: a `resource_metadata` hint and the well-known URLs derived from it.
pub fn mcp_metadata(data: &[u8]) {
    let Some((&mode, data)) = data.split_first() else {
        return;
    };
    let (first, rest) = line(data);
    let Some(first) = text(first) else { return };
    let url =
        Url::parse("https://mcp.example/.well-known/oauth-protected-resource").expect("a URL");
    match mode {
        b'r' => {
            let (expected, body) = line(rest);
            let expected = text(expected).filter(|e| !e.is_empty());
            if let Ok(document) = serde_json::from_slice(body) {
                if let Ok(issuer) = metadata::resource_issuer(&url, &document, first, expected) {
                    assert!(expected.is_none_or(|e| e == issuer));
                }
            }
        }
        b's' => {
            if let Ok(document) = serde_json::from_slice(rest) {
                if let Ok(endpoint) = metadata::server_token_endpoint(&url, &document, first) {
                    assert!(metadata::secure(&endpoint));
                }
            }
        }
        _ => {
            if let Ok(base) = metadata::metadata_base(first, "the hint") {
                let suffixes = [metadata::RESOURCE_SUFFIX].into_iter();
                for suffix in suffixes.chain(metadata::SERVER_SUFFIXES) {
                    metadata::well_known(&base, suffix, mode % 2 == 0);
                }
            }
        }
    }
}

/// The user's assertion, as the precheck and the expiry readers see it: a token that is
/// not a signed JWS passes only where an opaque token may.
pub fn assertion(data: &[u8]) {
    let Some(token) = text(data) else { return };
    let now = (NOW_MS / 1000) as i64;
    let jws = assertion::unverified_claims(token).is_some();
    assertion::expires_at_secs(token);
    assertion::precheck(token, now, Demand::AnyToken).ok();
    if !jws {
        assert!(assertion::precheck(token, now, Demand::Jws).is_err());
    }
}

fn ring() -> Keyring {
    Keyring::new(&[
        RingKey {
            id: 2,
            key: [7; 32],
        },
        RingKey {
            id: 1,
            key: [9; 32],
        },
    ])
}

/// What Redis hands back to the shared tier, by the first byte: `o` a record as stored
/// (opened, then read); `p` a record's plaintext, sealed here so that the reading past
/// the AEAD is reached; `m` a channel message as received; `e` an eviction's plaintext,
/// sealed here; `g` a scheduled grant record as stored; `G` a grant record's plaintext,
/// sealed here.
pub fn shared_record(data: &[u8]) {
    const NAME: &str = "OBO_L2:v:{t}:e";
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let ring = ring();
    let buffer = Duration::from_secs(30);
    match mode {
        b'o' => {
            if let Ok(plain) = ring.open(NAME, body) {
                decode_record(&plain, buffer, NOW_MS);
            }
        }
        b'p' => {
            let sealed = ring.seal(NAME, body);
            let plain = ring.open(NAME, &sealed).expect("a sealed record opens");
            if let Some(token) = decode_record(&plain, buffer, NOW_MS) {
                assert!(!token.access_token.is_empty());
                assert!(expiry::is_usable(token.expires_at, buffer, NOW_MS));
            }
            assert!(ring.open("OBO_L2:v:{t}:f", &sealed).is_err());
        }
        b'm' => channel(&ring, body),
        b'e' => {
            let names = Names::new("");
            let mut message = vec![b'x'];
            message.extend(ring.seal(names.channel(), body));
            channel(&ring, &message);
        }
        b'g' => {
            if let Some(text) = text(body) {
                GrantRecord::open(&ring, NAME, text);
            }
        }
        b'G' => {
            use base64::prelude::{Engine, BASE64_STANDARD_NO_PAD};
            let sealed = BASE64_STANDARD_NO_PAD.encode(ring.seal(NAME, body));
            if let Some(record) = GrantRecord::open(&ring, NAME, &format!("sog1.{sealed}")) {
                record.serves_at(NOW_MS);
                let again = record.seal(&ring, NAME);
                assert!(GrantRecord::open(&ring, NAME, &again) == Some(record));
            }
        }
        _ => {}
    }
}

/// One message heard on the shared tier's channel; an eviction names what it evicts.
fn channel(ring: &Keyring, payload: &[u8]) {
    let names = Names::new("");
    let (fills, _heard) = tokio::sync::broadcast::channel(4);
    let evictor: Evictor = std::sync::Arc::new(|eviction| {
        if let Eviction::Key(key) | Eviction::Prefix(key) = eviction {
            assert!(key.len() < 1 << 20);
        }
    });
    hear(payload, ring, &names, &fills, "0123456789abcdef", &evictor);
}

/// The packed identity from the JS wrapper: it unpacks into six fields that pack back
/// into the same string, and the cache key built from it holds no stray separator.
pub fn packed_identity(data: &[u8]) {
    let Some(packed) = text(data) else { return };
    let Some((user, context)) = identity::unpack(packed) else {
        assert_ne!(packed.matches(SEPARATOR).count(), 5);
        return;
    };
    let fields = [user, context].map(|s| [s.subject, s.tenant_id, s.openid_issuer]);
    let repacked = fields
        .iter()
        .flatten()
        .map(|f| f.unwrap_or_default())
        .collect::<Vec<_>>()
        .join(&SEPARATOR.to_string());
    assert_eq!(repacked, packed);
    if let Some(tuple) = IdentityTuple::resolve(&user, Some(&context)) {
        tuple.key_prefix();
        tuple.cache_key("a b", "assertion", &Target::default());
    }
}

/// What the JS wrapper hands `resolve` from LibreChat's user snapshot, the resolver's
/// answer and a thrown value, as JSON.
#[derive(Deserialize)]
struct Snapshot {
    access_token: Option<String>,
    expires_at: Option<f64>,
    #[serde(default)]
    field: String,
    #[serde(default)]
    has_access_token: bool,
    expires_in: Option<Value>,
    answer_expires_at: Option<f64>,
    retryable: Option<bool>,
    status: Option<f64>,
    code: Option<String>,
    message: Option<String>,
    obo_failure_reason: Option<String>,
}

/// LibreChat's `resolveOboToken` rules on a snapshot: nothing handed on is dead.
pub fn resolve_snapshot(data: &[u8]) {
    let Ok(snapshot) = serde_json::from_slice::<Snapshot>(data) else {
        return;
    };
    let tokens = UpstreamTokens {
        access_token: snapshot.access_token,
        expires_at_secs: snapshot.expires_at,
    };
    let field = UpstreamField::parse(&snapshot.field).unwrap_or_default();
    if let Ok(token) = resolve::upstream_assertion(Some(&tokens), field, NOW_MS) {
        assert!(!token.is_empty());
    }
    let answer = ResolverAnswer {
        has_access_token: snapshot.has_access_token,
        expires_in: snapshot.expires_in,
        expires_at_ms: snapshot.answer_expires_at,
    };
    for stamp in [
        resolve::finish(answer, NOW_MS),
        resolve::scheduled_grant(&tokens, NOW_MS),
    ]
    .into_iter()
    .flatten()
    {
        assert!(stamp.expires_at_ms > NOW_MS as f64);
    }
    let facts = ErrorFacts {
        retryable: snapshot.retryable,
        status: snapshot.status,
        code: snapshot.code,
        message: snapshot.message,
        obo_failure_reason: snapshot.obo_failure_reason,
    };
    resolve::session_failure(&facts).user_message();
    resolve::exchange_failure(&facts).reason();
}
