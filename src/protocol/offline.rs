//! The two grants of a scheduled chat's offline access, as LibreChat's
//! `schedules/obo.ts` sends them: an On-Behalf-Of request that adds `offline_access` to
//! the scopes, so that the IdP also issues a downstream refresh token (Entra does), and
//! the RFC 6749 §6 refresh-token grant that renews the downstream token later, when no
//! user session is there to exchange.

use reqwest::Client;
use serde_json::{Map, Value};
use url::Url;

use super::client_auth::ClientAuth;
use super::grant::{post_form, take_access_token, JWT_BEARER};
use crate::ground::error::ExchangeError;
use crate::ground::redact::redacted_debug;

/// RFC 6749 §6.
pub const REFRESH_TOKEN: &str = "refresh_token";
/// The scope that asks the IdP for a refresh token.
pub const OFFLINE_ACCESS: &str = "offline_access";

/// A token response of either grant, as far as a scheduled grant needs it.
pub struct OfflineGrant {
    pub access_token: String,
    /// Absent when the IdP keeps the refresh token it was sent (no rotation).
    pub refresh_token: Option<String>,
    /// Raw, as in `GrantResponse`: a number or a numeric string.
    pub expires_in: Option<Value>,
    pub refresh_token_expires_in: Option<Value>,
    /// The scopes the IdP says it granted, when it says.
    pub scope: Option<String>,
}

redacted_debug!(OfflineGrant {
    shown: [expires_in, refresh_token_expires_in, scope],
    hidden: [access_token, refresh_token]
});

/// The scope string of the offline On-Behalf-Of request: LibreChat's `<scopes>
/// offline_access`.
pub fn offline_scope(scopes: &str) -> String {
    format!("{scopes} {OFFLINE_ACCESS}")
}

/// The On-Behalf-Of request for `scopes` plus `offline_access`, with the user's token.
pub async fn request_offline(
    http: &Client,
    endpoint: &Url,
    auth: &ClientAuth,
    assertion: &str,
    scopes: &str,
) -> Result<OfflineGrant, ExchangeError> {
    let scope = offline_scope(scopes);
    let form = vec![
        ("grant_type", JWT_BEARER),
        ("assertion", assertion),
        ("scope", scope.as_str()),
        ("requested_token_use", "on_behalf_of"),
    ];
    parse(post_form(http, endpoint, auth, form, assertion).await?)
}

/// The refresh-token grant for `scopes` (without `offline_access`, as LibreChat asks).
pub async fn request_refresh(
    http: &Client,
    endpoint: &Url,
    auth: &ClientAuth,
    refresh_token: &str,
    scopes: &str,
) -> Result<OfflineGrant, ExchangeError> {
    let form = vec![
        ("grant_type", REFRESH_TOKEN),
        ("refresh_token", refresh_token),
        ("scope", scopes),
    ];
    parse(post_form(http, endpoint, auth, form, refresh_token).await?)
}

pub(crate) fn parse(mut fields: Map<String, Value>) -> Result<OfflineGrant, ExchangeError> {
    let access_token = take_access_token(&mut fields)?;
    let mut text = |name: &str| match fields.remove(name) {
        Some(Value::String(value)) if !value.is_empty() => Some(value),
        _ => None,
    };
    let refresh_token = text("refresh_token");
    let scope = text("scope");
    Ok(OfflineGrant {
        access_token,
        refresh_token,
        scope,
        expires_in: fields.remove("expires_in"),
        refresh_token_expires_in: fields.remove("refresh_token_expires_in"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    #[test]
    fn the_offline_scope_appends_offline_access() {
        assert_eq!(
            offline_scope("api://x/a api://x/b"),
            "api://x/a api://x/b offline_access"
        );
    }

    #[test]
    fn a_response_keeps_its_refresh_token_and_lifetimes() {
        let grant = parse(fields(json!({
            "access_token": "at", "refresh_token": "rt", "expires_in": 3599,
            "refresh_token_expires_in": "86400", "scope": "files.read", "token_type": "Bearer"
        })))
        .unwrap();
        assert_eq!(grant.access_token, "at");
        assert_eq!(grant.refresh_token.as_deref(), Some("rt"));
        assert_eq!(grant.expires_in, Some(json!(3599)));
        assert_eq!(grant.refresh_token_expires_in, Some(json!("86400")));
        assert_eq!(grant.scope.as_deref(), Some("files.read"));
        let debug = format!("{grant:?}");
        assert!(
            !debug.contains("\"rt\"") && !debug.contains("\"at\""),
            "{debug}"
        );
    }

    #[test]
    fn an_empty_refresh_token_is_none_and_no_access_token_is_empty() {
        let grant = parse(fields(json!({ "access_token": "at", "refresh_token": "" }))).unwrap();
        assert!(grant.refresh_token.is_none() && grant.scope.is_none());
        assert!(matches!(
            parse(fields(json!({ "refresh_token": "rt" }))),
            Err(ExchangeError::EmptyResponse)
        ));
        assert!(matches!(
            parse(fields(json!({ "access_token": "" }))),
            Err(ExchangeError::EmptyResponse)
        ));
    }
}
