//! `sharedCache`: the options of the shared Redis tier, and their validation.
//!
//! The encryption keys are parsed here (hex or base64, optionally `"<id>:<key>"`);
//! what is done with them (AES-256-GCM, HMAC names) is `cache::shared::seal`'s.

use std::time::Duration;

use base64::prelude::{Engine, BASE64_STANDARD, BASE64_URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};

use super::declaration::{declare_options, flag, integer, integer_in, text, texts};
use crate::ground::error::ConfigError;
use crate::ground::redact::redacted_debug;

declare_options! {
    /// `sharedCache`: where the shared tier lives and how its records are sealed.
    pub struct SharedCacheOptions, declared in SHARED_CACHE: SharedCacheDeclarations, under "sharedCache." {
        /// One `redis://` or `rediss://` URL, credentials inside (URL-encoded); or a comma list of a
        /// Redis Cluster's nodes (seeds: the rest of the cluster is discovered).
        url: Option<String> as "url" = text().required().secret(),
        /// LibreChat's resolved `REDIS_KEY_PREFIX`: names are `<prefix>::OBO_L2:…` (`OBO_L2:…` when empty).
        key_prefix: Option<String> as "keyPrefix" = text(),
        /// Redis Cluster: `true` for a cluster reached through one URL; a list of URLs is one already.
        cluster: Option<bool> as "cluster" = flag(),
        /// PEM text (not a path) of the CA that signs the server's certificate; `rediss://` only.
        ca: Option<String> as "ca" = text().secret(),
        /// 32-byte keys as 64 hex characters or base64, each optionally `"<id>:<key>"` (id 1-255):
        /// the first seals, every one opens. Rotate with `["2:<new>", "1:<old>"]`.
        encryption_keys: Vec<String> as "encryptionKeys" = texts().required().secret(),
        /// Hard limit on each Redis operation, default 50.
        op_timeout_ms: Option<f64> as "opTimeoutMs" = integer(50, 1..=10_000),
        /// Lease of a cross-process exchange, default 2 × requestTimeoutMs + 1000.
        lock_ttl_ms: Option<f64> as "lockTtlMs" = integer_in(100..=3_600_000),
        /// Longest wait for another instance's exchange, default min(10000, lockTtlMs).
        max_wait_ms: Option<f64> as "maxWaitMs" = integer_in(0..=3_600_000),
        /// After 3 Redis failures in a row, how long Redis is skipped before one call probes it
        /// again, default 5000: longer spares a Redis that is down, shorter brings the tier back sooner.
        breaker_cooldown_ms: Option<f64> as "breakerCooldownMs" = integer(5_000, 100..=600_000),
    }
}

/// One encryption key of the ring: its id (the record's first byte) and its bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct RingKey {
    pub id: u8,
    pub key: [u8; 32],
}

impl std::fmt::Debug for RingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RingKey {{ id: {}, key: [redacted] }}", self.id)
    }
}

/// The validated shared tier.
#[derive(Clone)]
pub struct SharedCacheConfig {
    /// `redis://` or `rediss://` URLs (credentials, if any, inside): one server, or
    /// the seed nodes of a Redis Cluster.
    pub nodes: Vec<String>,
    /// A Redis Cluster: `sharedCache.cluster`, or several URLs.
    pub cluster: bool,
    /// LibreChat's `REDIS_KEY_PREFIX`, possibly empty.
    pub key_prefix: String,
    pub ca: Option<Vec<u8>>,
    /// The first key writes; every key reads.
    pub keys: Vec<RingKey>,
    pub op_timeout: Duration,
    pub lock_ttl: Duration,
    pub max_wait: Duration,
    /// Consecutive failures that open the breaker, and how long it stays open.
    pub breaker_threshold: u32,
    pub breaker_cooldown: Duration,
}

redacted_debug!(SharedCacheConfig {
    shown: [
        cluster,
        key_prefix,
        keys,
        op_timeout,
        lock_ttl,
        max_wait,
        breaker_threshold,
        breaker_cooldown
    ],
    hidden: [nodes, ca],
});

/// A waiter never waits longer than this by default, however long the lease.
const DEFAULT_MAX_WAIT_MS: u64 = 10_000;

impl SharedCacheConfig {
    /// Validates `sharedCache`; `request_timeout` sets the default lease length
    /// (2 × requestTimeout + 1 s: an exchange with one retry and its delay).
    pub fn from_options(
        options: SharedCacheOptions,
        request_timeout: Duration,
    ) -> Result<Self, ConfigError> {
        let url = SHARED_CACHE.url.required_text(options.url)?;
        let nodes: Vec<String> = url.split(',').map(|u| u.trim().to_owned()).collect();
        for one in &nodes {
            let scheme = url::Url::parse(one).map(|u| u.scheme().to_owned());
            if !matches!(scheme.as_deref(), Ok("redis" | "rediss")) {
                return Err(SHARED_CACHE.url.error(
                    "must be a redis:// or rediss:// URL, or a comma-separated list of them",
                ));
            }
        }
        let cluster = options.cluster.unwrap_or(nodes.len() > 1);
        if !cluster && nodes.len() > 1 {
            return Err(SHARED_CACHE.cluster.error(
                "cannot be false when sharedCache.url names several servers: a list is a Redis Cluster's seed nodes",
            ));
        }
        if options.ca.is_some() && !nodes.iter().all(|u| u.starts_with("rediss://")) {
            return Err(SHARED_CACHE.ca.error("applies only to rediss:// URLs"));
        }
        let key_prefix = options.key_prefix.unwrap_or_default().trim().to_owned();
        let keys = ring_keys(SHARED_CACHE.encryption_keys.path, &options.encryption_keys)?;
        let op_timeout = SHARED_CACHE.op_timeout_ms.integer(options.op_timeout_ms)?;
        let default_lease = 2 * request_timeout.as_millis() as u64 + 1_000;
        let lock_ttl = SHARED_CACHE
            .lock_ttl_ms
            .integer_or(options.lock_ttl_ms, default_lease)?;
        let max_wait = SHARED_CACHE
            .max_wait_ms
            .integer_or(options.max_wait_ms, DEFAULT_MAX_WAIT_MS.min(lock_ttl))?;
        Ok(Self {
            nodes,
            cluster,
            key_prefix,
            ca: options.ca.map(String::into_bytes),
            keys,
            op_timeout: Duration::from_millis(op_timeout),
            lock_ttl: Duration::from_millis(lock_ttl),
            max_wait: Duration::from_millis(max_wait),
            breaker_threshold: 3,
            breaker_cooldown: Duration::from_millis(
                SHARED_CACHE
                    .breaker_cooldown_ms
                    .integer(options.breaker_cooldown_ms)?,
            ),
        })
    }
}

/// Parses the key ring: each entry `<key>` or `<id>:<key>`, the key 32 bytes as hex
/// or base64. An entry without an id gets `derived_key_id(key)`, which every process
/// computes the same way from the key alone. `option` names the option in messages (the
/// shared tier's, or a scheduled grant's `encryptionKeys`).
pub fn ring_keys(option: &'static str, entries: &[String]) -> Result<Vec<RingKey>, ConfigError> {
    if entries.is_empty() {
        return Err(ConfigError::new(
            option,
            "must hold at least one 32-byte key (64 hex characters or base64)",
        ));
    }
    let mut keys: Vec<RingKey> = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let entry = entry.trim();
        let (id, text) = match entry.split_once(':') {
            Some((id, text)) => {
                let id = id
                    .trim()
                    .parse::<u8>()
                    .ok()
                    .filter(|id| *id >= 1)
                    .ok_or_else(|| {
                        ConfigError::new(
                            option,
                            format!("[{index}] has a key id that is not an integer from 1 to 255"),
                        )
                    })?;
                (Some(id), text.trim())
            }
            None => (None, entry),
        };
        let key = decode_key(text).ok_or_else(|| {
            ConfigError::new(
                option,
                format!("[{index}] is not a 32-byte key as 64 hex characters or base64"),
            )
        })?;
        let id = id.unwrap_or_else(|| derived_key_id(&key));
        if let Some(other) = keys.iter().position(|k| k.id == id) {
            return Err(ConfigError::new(
                option,
                format!("[{index}] and [{other}] share the key id {id}; write them as \"<id>:<key>\" with distinct ids"),
            ));
        }
        keys.push(RingKey { id, key });
    }
    Ok(keys)
}

/// 32 bytes from 64 hex characters, or from standard or URL-safe base64.
fn decode_key(text: &str) -> Option<[u8; 32]> {
    let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(text).ok()?
    } else {
        BASE64_STANDARD
            .decode(text)
            .or_else(|_| BASE64_URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
            .ok()?
    };
    bytes.try_into().ok()
}

/// The id of a key given without one: 1 + SHA-256("librechat-obo key id" || key)[0]
/// mod 255, so every process that holds the key computes the same id.
pub fn derived_key_id(key: &[u8; 32]) -> u8 {
    let digest = Sha256::new()
        .chain_update(b"librechat-obo key id")
        .chain_update(key)
        .finalize();
    1 + digest[0] % 255
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    fn options(keys: &[&str]) -> SharedCacheOptions {
        SharedCacheOptions {
            url: Some("redis://127.0.0.1:6379".into()),
            encryption_keys: keys.iter().map(|k| (*k).to_owned()).collect(),
            ..SharedCacheOptions::default()
        }
    }

    fn check(o: SharedCacheOptions) -> Result<SharedCacheConfig, String> {
        SharedCacheConfig::from_options(o, Duration::from_secs(30)).map_err(|e| e.to_string())
    }

    #[test]
    fn a_bare_key_gets_its_id_from_its_digest_and_never_prints() {
        let key: [u8; 32] = hex::decode(HEX).unwrap().try_into().unwrap();
        let digest = Sha256::new()
            .chain_update(b"librechat-obo key id")
            .chain_update(key)
            .finalize();
        let id = derived_key_id(&key);
        assert_eq!(id, 1 + digest[0] % 255);
        assert_ne!(id, derived_key_id(&[7; 32]), "two keys, two ids");
        let other = hex::encode([7u8; 32]);
        let config = check(options(&[HEX, &other])).unwrap();
        assert_eq!(
            format!("{:?}", config.keys[0]),
            format!("RingKey {{ id: {id}, key: [redacted] }}")
        );
    }

    #[test]
    fn defaults_and_key_forms() {
        let b64 = BASE64_STANDARD.encode(hex::decode(HEX).unwrap());
        let config = check(options(&[&format!("7:{b64}"), HEX])).unwrap();
        assert_eq!(config.keys[0].id, 7);
        assert_eq!(config.keys[0].key, config.keys[1].key);
        assert_eq!(config.keys[1].id, derived_key_id(&config.keys[1].key));
        assert_eq!(config.lock_ttl, Duration::from_millis(61_000));
        assert_eq!(config.max_wait, Duration::from_millis(10_000));
        assert_eq!(config.op_timeout, Duration::from_millis(50));
        assert!(!format!("{config:?}").contains("127.0.0.1"));
    }

    #[test]
    fn the_breaker_cools_down_for_five_seconds_or_as_configured() {
        assert_eq!(
            check(options(&[HEX])).unwrap().breaker_cooldown,
            Duration::from_secs(5)
        );
        let mut o = options(&[HEX]);
        o.breaker_cooldown_ms = Some(30_000.0);
        assert_eq!(check(o).unwrap().breaker_cooldown, Duration::from_secs(30));
        let mut o = options(&[HEX]);
        o.breaker_cooldown_ms = Some(50.0);
        assert_eq!(
            check(o).unwrap_err(),
            "options.sharedCache.breakerCooldownMs must be an integer from 100 to 600000, got 50"
        );
    }

    #[test]
    fn a_list_of_urls_is_a_cluster_and_so_is_cluster_true() {
        let one = check(options(&[HEX])).unwrap();
        assert_eq!((one.nodes.len(), one.cluster), (1, false));
        let mut o = options(&[HEX]);
        o.url = Some(" redis://a:1 , redis://b:2,redis://c:3".into());
        let list = check(o).unwrap();
        assert_eq!(list.nodes, ["redis://a:1", "redis://b:2", "redis://c:3"]);
        assert!(list.cluster);
        let mut o = options(&[HEX]);
        o.cluster = Some(true);
        let seed = check(o).unwrap();
        assert_eq!((seed.nodes.len(), seed.cluster), (1, true));
        let mut o = options(&[HEX]);
        o.url = Some("rediss://a:1,redis://b:2".into());
        o.ca = Some("PEM".into());
        assert_eq!(
            check(o).unwrap_err(),
            "options.sharedCache.ca applies only to rediss:// URLs"
        );
    }

    #[test]
    fn errors_name_the_option() {
        assert_eq!(
            check(SharedCacheOptions::default()).unwrap_err(),
            "options.sharedCache.url is required"
        );
        let mut o = options(&[HEX]);
        o.url = Some("http://x".into());
        assert!(check(o)
            .unwrap_err()
            .starts_with("options.sharedCache.url must be"));
        let mut o = options(&[HEX]);
        o.url = Some("redis://a:1,redis://b:2".into());
        o.cluster = Some(false);
        assert!(check(o)
            .unwrap_err()
            .starts_with("options.sharedCache.cluster cannot be false"));
        let mut o = options(&[HEX]);
        o.url = Some("redis://a:1, http://b:2".into());
        assert!(check(o)
            .unwrap_err()
            .starts_with("options.sharedCache.url must be"));
        assert!(check(options(&[]))
            .unwrap_err()
            .starts_with("options.sharedCache.encryptionKeys must hold"));
        assert!(check(options(&["abcd"]))
            .unwrap_err()
            .contains("[0] is not"));
        assert!(check(options(&[&format!("0:{HEX}")]))
            .unwrap_err()
            .contains("key id"));
        assert!(check(options(&[&format!("3:{HEX}"), &format!("3:{HEX}")]))
            .unwrap_err()
            .contains("share the key id 3"));
        let mut o = options(&[HEX]);
        o.op_timeout_ms = Some(0.0);
        assert!(check(o)
            .unwrap_err()
            .starts_with("options.sharedCache.opTimeoutMs"));
        let mut o = options(&[HEX]);
        o.ca = Some("pem".into());
        assert!(check(o).unwrap_err().starts_with("options.sharedCache.ca"));
    }
}
