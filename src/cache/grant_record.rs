//! What a scheduled grant keeps in the caller's store: the downstream refresh token,
//! the access token it last yielded and their expiries, sealed with AES-256-GCM
//! (`shared::Keyring`) under the record's store key, so the store never holds a token
//! in the plain and a record copied under another schedule's key does not open.
//! LibreChat's token storage likewise encrypts both tokens before it writes them.

use base64::prelude::{Engine, BASE64_STANDARD_NO_PAD};
use serde::{Deserialize, Serialize};

use super::shared::Keyring;
use crate::consent::ScopeBinding;
use crate::ground::redact::redacted_debug;

/// A stored downstream token with less than this left is renewed first (LibreChat's 45 s).
const RENEW_WITHIN_MS: u64 = 45_000;
/// Format tag of a sealed record, so a later layout can be told apart.
const VERSION: &str = "sog1.";

/// One schedule's grant for one server.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct GrantRecord {
    pub refresh_token: String,
    pub access_token: String,
    /// Epoch ms, stamped when the token was requested.
    pub expires_at_ms: u64,
    pub refresh_expires_at_ms: u64,
    /// The scopes it was granted for (without `offline_access`): a record answers only
    /// for the same scopes, as LibreChat binds its stored client info to them.
    pub scopes: String,
    /// What an Entra `.default` selector stood for at enrolment (`consent.rs`).
    pub binding: Option<ScopeBinding>,
}

redacted_debug!(GrantRecord {
    shown: [expires_at_ms, refresh_expires_at_ms, scopes, binding],
    hidden: [refresh_token, access_token]
});

impl GrantRecord {
    /// Whether its access token is still served at `now` (epoch ms): at least 45 s of it is
    /// left, as LibreChat renews one with less.
    pub fn serves_at(&self, now: u64) -> bool {
        self.expires_at_ms >= now + RENEW_WITHIN_MS
    }

    /// The record as the text the store keeps: `sog1.` and the base64 of the sealed JSON.
    pub fn seal(&self, ring: &Keyring, name: &str) -> String {
        let plain = serde_json::to_vec(self).expect("a record serializes");
        let sealed = ring.seal(name, &plain);
        format!("{VERSION}{}", BASE64_STANDARD_NO_PAD.encode(sealed))
    }

    /// The record sealed under `name`, or `None` when the text is not one this ring
    /// opens under that name (another format, another key, altered, or another name).
    pub fn open(ring: &Keyring, name: &str, text: &str) -> Option<Self> {
        let sealed = BASE64_STANDARD_NO_PAD
            .decode(text.strip_prefix(VERSION)?)
            .ok()?;
        let plain = ring.open(name, &sealed).ok()?;
        serde_json::from_slice(&plain).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RingKey;

    fn ring(id: u8, byte: u8) -> Keyring {
        Keyring::new(&[RingKey {
            id,
            key: [byte; 32],
        }])
    }

    fn record() -> GrantRecord {
        GrantRecord {
            refresh_token: "rt-secret".into(),
            access_token: "at-secret".into(),
            expires_at_ms: 1,
            refresh_expires_at_ms: 2,
            scopes: "api://x/a".into(),
            binding: None,
        }
    }

    #[test]
    fn a_record_opens_under_its_name_and_key_only() {
        let keys = ring(1, 7);
        let sealed = record().seal(&keys, "schedule-obo:s1:files");
        assert!(sealed.starts_with(VERSION));
        assert!(!sealed.contains("secret") && !sealed.contains("api://"));
        assert_eq!(
            GrantRecord::open(&keys, "schedule-obo:s1:files", &sealed),
            Some(record())
        );
        let name = "schedule-obo:s1:files";
        assert_eq!(
            GrantRecord::open(&keys, "schedule-obo:s2:files", &sealed),
            None
        );
        assert_eq!(GrantRecord::open(&ring(2, 8), name, &sealed), None);
        assert_eq!(
            GrantRecord::open(&keys, name, &sealed[VERSION.len()..]),
            None
        );
        assert_eq!(GrantRecord::open(&keys, name, "sog1.!!"), None);
        let debug = format!("{:?}", record());
        assert!(!debug.contains("secret"), "{debug}");
    }

    #[test]
    fn a_token_is_served_while_45_seconds_are_left() {
        let record = GrantRecord {
            expires_at_ms: 100_000,
            ..record()
        };
        assert!(record.serves_at(55_000));
        assert!(!record.serves_at(55_001));
        assert!(record.serves_at(0));
    }

    #[test]
    fn two_seals_differ() {
        let keys = ring(1, 7);
        assert_ne!(record().seal(&keys, "n"), record().seal(&keys, "n"));
    }
}
