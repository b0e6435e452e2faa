//! A token as the shared tier stores it (before sealing): JSON with the absolute
//! `expires_at`, so every process judges expiry from the same instant, re-checked
//! against the buffer on every read (a record Redis still holds is not proof of life).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::cache::refresh_points::NEVER;
use crate::cache::token::OboToken;
use crate::cache::traffic::Traffic;
use crate::ground::expiry;

#[derive(Serialize, Deserialize)]
struct Record {
    /// Format version.
    v: u8,
    access_token: String,
    expires_in: u64,
    expires_at: u64,
    scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    issued_token_type: Option<String>,
}

const VERSION: u8 = 1;

/// The plaintext of a token's record.
pub fn encode(token: &OboToken) -> Vec<u8> {
    serde_json::to_vec(&Record {
        v: VERSION,
        access_token: token.access_token.clone(),
        expires_in: token.expires_in,
        expires_at: token.expires_at,
        scope: token.scope.clone(),
        issued_token_type: token.issued_token_type.clone(),
    })
    .expect("a record serializes")
}

/// The token of a record, with `id` 0 and no refresh point (the caller stamps its
/// own: each process jitters its refresh point); `None` when the
/// plaintext is not a record of this version, or the token has no more than `buffer`
/// left at `now_ms`.
pub fn decode(plaintext: &[u8], buffer: Duration, now_ms: u64) -> Option<OboToken> {
    let record: Record = serde_json::from_slice(plaintext).ok()?;
    if record.v != VERSION
        || record.access_token.is_empty()
        || !expiry::is_usable(record.expires_at, buffer, now_ms)
    {
        return None;
    }
    Some(OboToken {
        id: 0,
        access_token: record.access_token,
        expires_in: record.expires_in,
        expires_at: record.expires_at,
        refresh_at: NEVER,
        traffic: Traffic::fixed(),
        scope: record.scope,
        issued_token_type: record.issued_token_type,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(expires_at: u64) -> OboToken {
        OboToken {
            id: 42,
            access_token: "eyJ.at".into(),
            expires_in: 3600,
            expires_at,
            refresh_at: NEVER,
            traffic: Traffic::fixed(),
            scope: "api://x/.default".into(),
            issued_token_type: Some("urn:ietf:params:oauth:token-type:access_token".into()),
        }
    }

    #[test]
    fn round_trip_drops_the_id_and_rechecks_expiry() {
        let buffer = Duration::from_secs(30);
        let live = token(1_000_000);
        let back = decode(&encode(&live), buffer, 900_000).unwrap();
        assert_eq!(
            back,
            OboToken {
                id: 0,
                ..live.clone()
            }
        );
        assert!(decode(&encode(&live), buffer, 970_000).is_none());
        assert!(decode(b"{}", buffer, 0).is_none());
        assert!(decode(b"not json", buffer, 0).is_none());
        let mut wrong_version = encode(&live);
        wrong_version[5] = b'9';
        assert!(decode(&wrong_version, buffer, 0).is_none());
    }
}
