//! Token lifetime arithmetic, in LibreChat's units: `expires_in` in seconds,
//! `expires_at` in epoch milliseconds.
//!
//! Expiry is stamped once, when the token is requested, so that a cache hit late in
//! the token's life never re-inflates it (LibreChat issue #15320).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What LibreChat assumes when the IdP sends no usable `expires_in`.
pub const DEFAULT_LIFETIME_SECS: u64 = 3600;
/// Lifetimes above this (about 137 years) are treated as unknown, as LibreChat does.
const ABSURD_LIFETIME_SECS: f64 = 4.32e12;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Normalizes the IdP's `expires_in`: numbers and numeric strings are accepted
/// (Entra's v1 endpoint and AD FS send strings), fractions are floored, the minimum
/// is one second, and anything missing, non-numeric or absurd means 3600.
pub fn normalize_expires_in(raw: Option<&serde_json::Value>) -> u64 {
    let seconds = match raw {
        Some(serde_json::Value::Number(n)) => n.as_f64(),
        Some(serde_json::Value::String(s)) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match seconds {
        Some(s) if s.is_finite() && s <= ABSURD_LIFETIME_SECS => (s.floor() as i64).max(1) as u64,
        _ => DEFAULT_LIFETIME_SECS,
    }
}

/// Whether a token expiring at `expires_at_ms` may still be handed out: more than
/// `buffer` must remain, so that it does not expire in transit to the MCP server.
pub fn is_usable(expires_at_ms: u64, buffer: Duration, now_ms: u64) -> bool {
    expires_at_ms > now_ms.saturating_add(buffer.as_millis() as u64)
}

/// How long the cache should keep an entry: until it stops being usable, and at
/// least one second so that a just-minted short token still coalesces callers.
pub fn cache_ttl(expires_at_ms: u64, buffer: Duration, now_ms: u64) -> Duration {
    let usable_ms = expires_at_ms
        .saturating_sub(now_ms)
        .saturating_sub(buffer.as_millis() as u64);
    Duration::from_millis(usable_ms.max(1000))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn expires_in_accepts_numbers_and_numeric_strings() {
        assert_eq!(normalize_expires_in(Some(&json!(3599))), 3599);
        assert_eq!(normalize_expires_in(Some(&json!("3599"))), 3599);
        assert_eq!(normalize_expires_in(Some(&json!(" 42.9 "))), 42);
        assert_eq!(normalize_expires_in(Some(&json!(0))), 1);
        assert_eq!(normalize_expires_in(Some(&json!(-5))), 1);
    }

    #[test]
    fn expires_in_missing_or_garbage_means_an_hour() {
        assert_eq!(normalize_expires_in(None), 3600);
        assert_eq!(normalize_expires_in(Some(&json!(null))), 3600);
        assert_eq!(normalize_expires_in(Some(&json!("soon"))), 3600);
        assert_eq!(normalize_expires_in(Some(&json!(true))), 3600);
        assert_eq!(normalize_expires_in(Some(&json!(1e13))), 3600);
    }

    #[test]
    fn usable_only_while_more_than_the_buffer_remains() {
        let buffer = Duration::from_secs(30);
        assert!(is_usable(100_000 + 30_001, buffer, 100_000));
        assert!(!is_usable(100_000 + 30_000, buffer, 100_000));
        assert!(!is_usable(50_000, buffer, 100_000));
    }

    #[test]
    fn cache_ttl_is_lifetime_minus_buffer_with_a_floor() {
        let buffer = Duration::from_secs(30);
        assert_eq!(
            cache_ttl(3_600_000, buffer, 0),
            Duration::from_millis(3_570_000)
        );
        assert_eq!(cache_ttl(10_000, buffer, 0), Duration::from_millis(1000));
        assert_eq!(cache_ttl(0, buffer, 5_000), Duration::from_millis(1000));
    }
}
