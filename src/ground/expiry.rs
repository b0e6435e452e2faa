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

/// The lifetime a token response declares, in seconds, as LibreChat's
/// `normalizeExpiresIn` reads it: numbers and numeric strings (Entra's v1 endpoint
/// and AD FS send strings); `None` when missing, non-numeric or absurd. A
/// non-positive value is kept: the IdP is saying the token is already dead.
pub fn declared_lifetime_secs(raw: Option<&serde_json::Value>) -> Option<f64> {
    let seconds = match raw {
        Some(serde_json::Value::Number(n)) => n.as_f64(),
        Some(serde_json::Value::String(s)) => s.trim().parse::<f64>().ok(),
        _ => None,
    }?;
    (seconds.is_finite() && seconds.abs() <= ABSURD_LIFETIME_SECS).then_some(seconds)
}

/// A scheduled grant's downstream token must outlive this, or it is not usable: LibreChat's
/// `expiresInSeconds` refuses 30 seconds or less.
pub const SCHEDULED_MIN_LIFETIME_SECS: i64 = 30;
/// What a refresh token is assumed to live when the IdP does not say (LibreChat's token
/// storage keeps it a year).
pub const DEFAULT_REFRESH_LIFETIME_SECS: u64 = 365 * 24 * 3600;

/// The lifetime of a scheduled grant's downstream token, in whole seconds, as LibreChat's
/// `expiresInSeconds` reads it: `expires_in` when the IdP sent one, else the seconds left
/// to the access token's own `exp` (`jwt_exp_secs`); `None`, an unusable token, when that
/// is not an integer above 30 seconds. Unlike the exchange path there is no default: a
/// token kept for unattended use must say how long it lives.
pub fn scheduled_lifetime_secs(
    raw: Option<&serde_json::Value>,
    jwt_exp_secs: Option<f64>,
    now_ms: u64,
) -> Option<u64> {
    let seconds = match raw {
        Some(value) => declared_lifetime_secs(Some(value))?,
        None => (jwt_exp_secs? * 1000.0 - now_ms as f64).div_euclid(1000.0),
    };
    let whole = seconds.fract() == 0.0 && seconds > SCHEDULED_MIN_LIFETIME_SECS as f64;
    whole.then_some(seconds as u64)
}

/// When a refresh token stops being worth presenting (epoch ms): its declared
/// `refresh_token_expires_in`, else a year, as LibreChat's token storage assumes.
pub fn refresh_expires_at_ms(raw: Option<&serde_json::Value>, now_ms: u64) -> u64 {
    let seconds = declared_lifetime_secs(raw)
        .filter(|s| *s > 0.0)
        .map_or(DEFAULT_REFRESH_LIFETIME_SECS, |s| s.floor() as u64);
    now_ms.saturating_add(seconds.saturating_mul(1000))
}

/// The exchange service's reading of `expires_in` (LibreChat's
/// `normalizeOboExpiresInSeconds`): whole seconds, at least one, 3600 when unknown.
pub fn normalize_expires_in(raw: Option<&serde_json::Value>) -> u64 {
    declared_lifetime_secs(raw).map_or(DEFAULT_LIFETIME_SECS, |s| s.floor().max(1.0) as u64)
}

/// Where `resolveOboToken` puts a token's expiry (epoch ms): an absolute `expires_at`
/// from the resolver wins, else `now + expires_in`, else an hour.
pub fn resolved_expires_at_ms(
    expires_at_ms: Option<f64>,
    expires_in: Option<&serde_json::Value>,
    now_ms: u64,
) -> f64 {
    match expires_at_ms {
        Some(at) if at.is_finite() => at,
        _ => {
            let lifetime =
                declared_lifetime_secs(expires_in).unwrap_or(DEFAULT_LIFETIME_SECS as f64);
            now_ms as f64 + lifetime * 1000.0
        }
    }
}

/// The expiry handed on to the MCP layer: pulled back by `buffer` so the token cannot
/// be used in its last seconds, but at least one second ahead while it is alive. An
/// elapsed expiry stays elapsed, so the caller can refuse the token.
pub fn skewed_expires_at_ms(expires_at_ms: f64, buffer: Duration, now_ms: u64) -> f64 {
    let now = now_ms as f64;
    if expires_at_ms <= now {
        return expires_at_ms;
    }
    (now + 1000.0).max(expires_at_ms - buffer.as_millis() as f64)
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
    fn a_scheduled_lifetime_is_whole_seconds_above_thirty() {
        let now = 1_000_000_000;
        assert_eq!(
            scheduled_lifetime_secs(Some(&json!(3599)), None, now),
            Some(3599)
        );
        assert_eq!(
            scheduled_lifetime_secs(Some(&json!("600")), None, now),
            Some(600)
        );
        assert_eq!(
            scheduled_lifetime_secs(Some(&json!(31)), None, now),
            Some(31)
        );
        assert_eq!(scheduled_lifetime_secs(Some(&json!(30)), None, now), None);
        assert_eq!(scheduled_lifetime_secs(Some(&json!(90.5)), None, now), None);
        assert_eq!(
            scheduled_lifetime_secs(Some(&json!("soon")), None, now),
            None
        );
        // expires_in wins over the token's exp; without it, exp decides (floored).
        let exp = (now / 1000 + 120) as f64;
        assert_eq!(
            scheduled_lifetime_secs(Some(&json!(0)), Some(exp), now),
            None
        );
        assert_eq!(scheduled_lifetime_secs(None, Some(exp), now), Some(120));
        assert_eq!(scheduled_lifetime_secs(None, Some(exp), now + 1), Some(119));
        assert_eq!(scheduled_lifetime_secs(None, Some(exp), now + 90_000), None);
        assert_eq!(scheduled_lifetime_secs(None, None, now), None);
    }

    #[test]
    fn a_refresh_token_lives_as_declared_or_a_year() {
        assert_eq!(
            refresh_expires_at_ms(Some(&json!(86400)), 5),
            5 + 86_400_000
        );
        assert_eq!(refresh_expires_at_ms(Some(&json!("60.7")), 0), 60_000);
        let year = DEFAULT_REFRESH_LIFETIME_SECS * 1000;
        assert_eq!(refresh_expires_at_ms(None, 7), 7 + 365 * 86_400_000);
        assert_eq!(refresh_expires_at_ms(Some(&json!(0)), 7), 7 + year);
    }

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
    fn declared_lifetime_keeps_elapsed_values_and_drops_unknown_ones() {
        assert_eq!(declared_lifetime_secs(Some(&json!(0))), Some(0.0));
        assert_eq!(declared_lifetime_secs(Some(&json!("-5"))), Some(-5.0));
        assert_eq!(declared_lifetime_secs(Some(&json!("3.6e3"))), Some(3600.0));
        assert_eq!(declared_lifetime_secs(Some(&json!(""))), None);
        assert_eq!(declared_lifetime_secs(Some(&json!(-1e13))), None);
    }

    #[test]
    fn resolved_expiry_prefers_an_absolute_expires_at() {
        assert_eq!(
            resolved_expires_at_ms(Some(5_000.0), Some(&json!(60)), 1_000),
            5_000.0
        );
        assert_eq!(
            resolved_expires_at_ms(Some(f64::NAN), Some(&json!(60)), 1_000),
            61_000.0
        );
        assert_eq!(resolved_expires_at_ms(None, None, 1_000), 3_601_000.0);
        assert_eq!(
            resolved_expires_at_ms(None, Some(&json!(0)), 1_000),
            1_000.0
        );
    }

    #[test]
    fn skew_takes_the_buffer_off_but_leaves_a_live_token_a_second() {
        let buffer = Duration::from_secs(30);
        assert_eq!(skewed_expires_at_ms(301_000.0, buffer, 1_000), 271_000.0);
        assert_eq!(skewed_expires_at_ms(11_000.0, buffer, 1_000), 2_000.0);
        assert_eq!(skewed_expires_at_ms(1_000.0, buffer, 1_000), 1_000.0);
        assert_eq!(skewed_expires_at_ms(500.0, buffer, 1_000), 500.0);
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
