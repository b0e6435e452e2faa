//! The key ring of the shared tier: AES-256-GCM records, HMAC key names, and the
//! HKDF derivation from LibreChat's `CREDS_KEY`.
//!
//! A record is `kid (1) || nonce (12, random) || ciphertext || tag (16)`, sealed with
//! the full Redis key name as associated data, so a record copied under another name
//! does not open. Every configured key is first run through HKDF-SHA256 (its own
//! `info` per use), so the AEAD key, the name key and the raw configured bytes are
//! all different.
//!
//! The first key of the ring seals; every key opens (by its id). Names are HMACs
//! under a key derived from the LAST key of the ring: rotation prepends the new key
//! (`"2:<new>,1:<old>"`), so while it rolls out, old and new processes compute the
//! same names and keep sharing entries; dropping the old key later changes the names
//! once (the shared cache starts cold, as after a flush).

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::hkdf::{KeyType, Salt, HKDF_SHA256};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use crate::config::RingKey;

const SALT: &[u8] = b"librechat-obo shared cache v1";
const INFO_SEAL: &[u8] = b"librechat-obo l2 aes-256-gcm v1";
const INFO_NAMES: &[u8] = b"librechat-obo l2 hmac-sha256 names v1";
const INFO_CREDS: &[u8] = b"librechat-obo l2 key from CREDS_KEY v1";
const TAG_LEN: usize = 16;

/// The `CREDS_KEY` that LibreChat's `.env.example` ships: public, so never a key.
pub const EXAMPLE_CREDS_KEY: &str =
    "f34be427ebb29de8d88c107a71546019685ed8b241d8f2ed00c3df97ad2566f0";

/// Why a record did not open. Each is a miss to the caller, never an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenError {
    /// Shorter than a header and a tag.
    Malformed,
    /// Sealed under a key id this ring does not hold.
    UnknownKey,
    /// Tampered, or sealed under another name.
    Forged,
}

struct Len32;

impl KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

fn expand(secret: &[u8; 32], info: &[u8]) -> [u8; 32] {
    let prk = Salt::new(HKDF_SHA256, SALT).extract(secret);
    let mut out = [0u8; 32];
    prk.expand(&[info], Len32)
        .and_then(|okm| okm.fill(&mut out))
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    out
}

/// The ring: keys that open records, the one that seals, and the names key.
pub struct Keyring {
    /// (id, AEAD key); the first one seals.
    keys: Vec<(u8, LessSafeKey)>,
    names: hmac::Key,
    random: SystemRandom,
}

impl Keyring {
    /// Builds the ring from validated keys (at least one; ids distinct).
    pub fn new(keys: &[RingKey]) -> Self {
        let last = keys
            .last()
            .expect("the configuration holds at least one key");
        Self {
            keys: keys
                .iter()
                .map(|k| {
                    let bytes = expand(&k.key, INFO_SEAL);
                    let key = UnboundKey::new(&AES_256_GCM, &bytes).expect("32-byte AES key");
                    (k.id, LessSafeKey::new(key))
                })
                .collect(),
            names: hmac::Key::new(hmac::HMAC_SHA256, &expand(&last.key, INFO_NAMES)),
            random: SystemRandom::new(),
        }
    }

    /// Seals `plaintext` under the first key, bound to `name` (the Redis key or channel).
    pub fn seal(&self, name: &str, plaintext: &[u8]) -> Vec<u8> {
        let (id, key) = &self.keys[0];
        let mut nonce = [0u8; NONCE_LEN];
        self.random
            .fill(&mut nonce)
            .expect("the system random source works");
        let mut record = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + TAG_LEN);
        record.push(*id);
        record.extend_from_slice(&nonce);
        let mut body = plaintext.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(name.as_bytes()),
            &mut body,
        )
        .expect("a record fits AES-GCM's length limit");
        record.extend_from_slice(&body);
        record
    }

    /// Opens a record sealed under `name` by any key of the ring.
    pub fn open(&self, name: &str, record: &[u8]) -> Result<Vec<u8>, OpenError> {
        if record.len() < 1 + NONCE_LEN + TAG_LEN {
            return Err(OpenError::Malformed);
        }
        let (header, body) = record.split_at(1 + NONCE_LEN);
        let (_, key) = self
            .keys
            .iter()
            .find(|(id, _)| *id == header[0])
            .ok_or(OpenError::UnknownKey)?;
        let nonce: [u8; NONCE_LEN] = header[1..].try_into().expect("12 bytes");
        let mut body = body.to_vec();
        let plain = key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(name.as_bytes()),
                &mut body,
            )
            .map_err(|_| OpenError::Forged)?;
        Ok(plain.to_vec())
    }

    /// 32 lowercase hex characters of HMAC-SHA256(names key, `label` || 0 || `text`).
    pub fn name(&self, label: &str, text: &str) -> String {
        let mut context = hmac::Context::with_key(&self.names);
        context.update(label.as_bytes());
        context.update(&[0]);
        context.update(text.as_bytes());
        hex::encode(&context.sign().as_ref()[..16])
    }
}

/// 32 random hex characters: a lease owner, or this process's tier instance.
pub fn random_id() -> String {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system random source works");
    hex::encode(bytes)
}

/// The shared tier's key derived from LibreChat's `CREDS_KEY` by HKDF-SHA256 (its own
/// salt and info, so it is never the key LibreChat encrypts credentials with). Refuses
/// the example key of LibreChat's `.env.example` and anything but 64 hex characters.
pub fn key_from_creds_key(creds_key: &str) -> Result<[u8; 32], String> {
    let text = creds_key.trim();
    if text.eq_ignore_ascii_case(EXAMPLE_CREDS_KEY) {
        return Err("CREDS_KEY is the example value from LibreChat's .env.example, which is public; set OBO_CACHE_KEY (or generate a new CREDS_KEY) to use the shared cache".into());
    }
    let bytes: [u8; 32] = (text.len() == 64)
        .then(|| hex::decode(text).ok())
        .flatten()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            "CREDS_KEY must be 64 hex characters (32 bytes) to derive the shared cache key; set OBO_CACHE_KEY instead".to_owned()
        })?;
    Ok(expand(&bytes, INFO_CREDS))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(keys: &[(u8, u8)]) -> Keyring {
        Keyring::new(
            &keys
                .iter()
                .map(|(id, fill)| RingKey {
                    id: *id,
                    key: [*fill; 32],
                })
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn round_trip_and_layout() {
        let keys = ring(&[(1, 0xaa)]);
        let record = keys.seal("OBO_L2:v:{t}:e", b"token");
        assert_eq!(record[0], 1);
        assert_eq!(record.len(), 1 + 12 + 5 + 16);
        assert!(!record.windows(5).any(|w| w == b"token"));
        assert_eq!(keys.open("OBO_L2:v:{t}:e", &record).unwrap(), b"token");
        assert_ne!(keys.seal("n", b"token"), keys.seal("n", b"token"));
    }

    #[test]
    fn tampered_copied_or_unknown_records_do_not_open() {
        let keys = ring(&[(1, 0xaa)]);
        let record = keys.seal("name-a", b"token");
        for i in 1..record.len() {
            let mut bad = record.clone();
            bad[i] ^= 1;
            assert_eq!(
                keys.open("name-a", &bad),
                Err(OpenError::Forged),
                "byte {i}"
            );
        }
        assert_eq!(keys.open("name-b", &record), Err(OpenError::Forged));
        let mut other_id = record.clone();
        other_id[0] = 9;
        assert_eq!(keys.open("name-a", &other_id), Err(OpenError::UnknownKey));
        assert_eq!(
            keys.open("name-a", &record[..20]),
            Err(OpenError::Malformed)
        );
        assert_eq!(
            ring(&[(1, 0xbb)]).open("name-a", &record),
            Err(OpenError::Forged)
        );
    }

    #[test]
    fn rotation_reads_old_records_and_writes_with_the_new_key() {
        let old = ring(&[(1, 0xaa)]);
        let rotated = ring(&[(2, 0xbb), (1, 0xaa)]);
        let record = old.seal("n", b"t");
        assert_eq!(rotated.open("n", &record).unwrap(), b"t");
        let fresh = rotated.seal("n", b"t");
        assert_eq!(fresh[0], 2);
        assert_eq!(old.open("n", &fresh), Err(OpenError::UnknownKey));
        assert_eq!(
            ring(&[(2, 0xbb)]).open("n", &record),
            Err(OpenError::UnknownKey)
        );
        // Names follow the last key, so they hold while the new key rolls out.
        assert_eq!(old.name("e", "k"), rotated.name("e", "k"));
        assert_ne!(old.name("e", "k"), ring(&[(2, 0xbb)]).name("e", "k"));
        assert_ne!(old.name("e", "k"), old.name("i", "k"));
        assert_eq!(old.name("e", "k").len(), 32);
    }

    #[test]
    fn creds_key_derivation_refuses_the_example_and_non_hex() {
        let good = "0123456789abcdef".repeat(4);
        let key = key_from_creds_key(&good).unwrap();
        assert_eq!(key, key_from_creds_key(&good).unwrap());
        assert_ne!(key.to_vec(), hex::decode(&good).unwrap());
        let example = key_from_creds_key(EXAMPLE_CREDS_KEY).unwrap_err();
        assert!(example.contains("CREDS_KEY") && example.contains("example"));
        assert!(key_from_creds_key(&EXAMPLE_CREDS_KEY.to_uppercase()).is_err());
        for bad in ["", "abc", &"g".repeat(64), &"0".repeat(62)] {
            let message = key_from_creds_key(bad).unwrap_err();
            assert!(message.starts_with("CREDS_KEY must be 64 hex"), "{bad}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// The name is the record's associated data: under its own name a record opens to
        /// what was sealed, under any other it is forged.
        #[test]
        fn a_sealed_record_opens_only_under_its_own_name(
            name in ".{0,40}",
            other in ".{0,40}",
            plain in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256),
        ) {
            let keys = ring(&[(2, 0x11), (1, 0x22)]);
            let record = keys.seal(&name, &plain);
            proptest::prop_assert_eq!(keys.open(&name, &record), Ok(plain));
            if other != name {
                proptest::prop_assert_eq!(keys.open(&other, &record), Err(OpenError::Forged));
            }
        }
    }
}
