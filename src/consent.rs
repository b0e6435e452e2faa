//! Which scopes a scheduled grant holds, by LibreChat's rules (`schedules/scopes.ts`).
//!
//! Literal scopes must all be granted, when the IdP says what it granted. Entra's
//! `<resource>/.default` is no literal scope but a selector ("whatever was consented"):
//! at an Entra authority the concrete permissions it selected at enrolment are recorded
//! (the binding), and a renewal may keep or add permissions but never lose one. At any
//! other authority a selector is just a literal scope, never a wildcard.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

use crate::protocol::assertion;

/// Entra's sign-in hosts (public cloud, US Government, China).
const ENTRA_HOSTS: [&str; 3] = [
    "login.microsoftonline.com",
    "login.microsoftonline.us",
    "login.chinacloudapi.cn",
];
const SELECTOR: &str = "/.default";
/// OpenID scopes that name no permission of a resource.
const NOT_PERMISSIONS: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// The concrete permissions a `.default` selector stood for at enrolment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeBinding {
    pub resource: String,
    /// Sorted, without duplicates.
    pub permissions: Vec<String>,
}

/// The IdP a grant comes from: its issuer and token endpoint.
pub struct Authority<'a> {
    pub issuer: &'a str,
    pub token_endpoint: &'a Url,
}

impl Authority<'_> {
    /// Whether this is Entra, by its documented hosts (never by the MCP server's URL):
    /// https, no user info, the token endpoint on the issuer's host.
    pub fn is_entra(&self) -> bool {
        let Ok(issuer) = Url::parse(self.issuer) else {
            return false;
        };
        let endpoint = self.token_endpoint;
        let host = match issuer.host_str() {
            Some("sts.windows.net") => "login.microsoftonline.com",
            Some(host) => host,
            None => return false,
        };
        let plain = |url: &Url| {
            url.scheme() == "https" && url.username().is_empty() && url.password().is_none()
        };
        plain(&issuer)
            && plain(endpoint)
            && ENTRA_HOSTS.contains(&host)
            && endpoint.host_str() == Some(host)
    }
}

/// The answer whose scopes are judged.
pub struct Granted<'a> {
    pub access_token: &'a str,
    pub scope: Option<&'a str>,
}

/// What a selector request names: not a selector, a resource, or a malformed selector
/// (mixed with other scopes, or without a resource).
enum Selector<'a> {
    None,
    Resource(&'a str),
    Malformed,
}

fn selector(requested: &str) -> Selector<'_> {
    let scopes: Vec<&str> = requested.split_whitespace().collect();
    if !scopes
        .iter()
        .any(|s| *s == ".default" || s.ends_with(SELECTOR))
    {
        return Selector::None;
    }
    match scopes.as_slice() {
        [only] => match only.strip_suffix(SELECTOR) {
            Some(resource) if !resource.is_empty() => Selector::Resource(resource),
            _ => Selector::Malformed,
        },
        _ => Selector::Malformed,
    }
}

/// LibreChat's `hasScheduledOboScopes`: an answer without `scope` grants what was asked
/// (RFC 6749 §5.1); else every requested scope must be among the granted ones.
pub fn grants_all(granted: Option<&str>, requested: &str) -> bool {
    let Some(granted) = granted else {
        return true;
    };
    let held: Vec<&str> = granted.split_whitespace().collect();
    requested
        .split_whitespace()
        .all(|scope| held.contains(&scope))
}

/// The permissions `granted` names on `resource`: scopes with the resource's prefix taken
/// off; `None` when one is not a plain permission, or there are none.
fn permissions_for(granted: &str, resource: &str) -> Option<Vec<String>> {
    let prefix = if resource.ends_with('/') {
        resource.to_owned()
    } else {
        format!("{resource}/")
    };
    let mut permissions: Vec<String> = Vec::new();
    for scope in granted
        .split_whitespace()
        .filter(|s| !NOT_PERMISSIONS.contains(s))
    {
        let permission = scope.strip_prefix(prefix.as_str()).unwrap_or(scope);
        if permission.is_empty() || permission == ".default" || permission.contains(['/', ':']) {
            return None;
        }
        permissions.push(permission.to_owned());
    }
    permissions.sort();
    permissions.dedup();
    (!permissions.is_empty()).then_some(permissions)
}

/// The token's own `scp` when it is addressed to `resource` (or to the application id of an
/// `api://<guid>` resource): `Ok(None)` when it is opaque or addressed elsewhere (an alias
/// that cannot be told), `Err(())` when it is addressed there without a `scp`.
fn token_scopes(token: &str, resource: &str) -> Result<Option<String>, ()> {
    let Some(claims) = assertion::unverified_claims(token) else {
        return Ok(None);
    };
    let audience = claims.get("aud").and_then(Value::as_str);
    let application = resource.strip_prefix("api://").filter(|id| is_guid(id));
    if audience != Some(resource) && (application.is_none() || audience != application) {
        return Ok(None);
    }
    match claims.get("scp") {
        Some(Value::String(scp)) => Ok(Some(scp.clone())),
        _ => Err(()),
    }
}

fn is_guid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// LibreChat's `resolveScheduledOboScopes`: `Some(binding)` (the binding to keep, if any)
/// when the answer holds the requested scopes, `None` when it does not. `binding` is the
/// one recorded at enrolment (`None` at enrolment).
pub fn resolve(
    granted: &Granted<'_>,
    requested: &str,
    authority: &Authority<'_>,
    binding: Option<&ScopeBinding>,
) -> Option<Option<ScopeBinding>> {
    let resource = match selector(requested) {
        Selector::None => return grants_all(granted.scope, requested).then_some(None),
        _ if !authority.is_entra() => return grants_all(granted.scope, requested).then_some(None),
        Selector::Malformed => return None,
        Selector::Resource(resource) => resource,
    };
    if binding.is_some_and(|b| !valid_binding(b, resource)) {
        return None;
    }
    let projected = match granted.scope {
        Some(scope) => Some(scope.to_owned()),
        None => token_scopes(granted.access_token, resource).ok()?,
    };
    let Some(projected) = projected else {
        // No observable scopes: known consent is kept, a first one cannot be guessed.
        return binding.map(|b| Some(b.clone()));
    };
    let permissions = permissions_for(&projected, resource)?;
    if binding.is_some_and(|b| b.permissions.iter().any(|p| !permissions.contains(p))) {
        return None;
    }
    Some(Some(binding.cloned().unwrap_or(ScopeBinding {
        resource: resource.to_owned(),
        permissions,
    })))
}

/// LibreChat's `hasScheduledOboScopeBinding` for a selector at Entra: the binding is for
/// this resource and names plain permissions.
fn valid_binding(binding: &ScopeBinding, resource: &str) -> bool {
    binding.resource == resource
        && !binding.permissions.is_empty()
        && binding.permissions.iter().all(|p| {
            p != ".default" && !p.contains(|c: char| c.is_whitespace() || c == '/' || c == ':')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::prelude::{Engine, BASE64_URL_SAFE_NO_PAD};

    const ENTRA: &str = "https://login.microsoftonline.com/tenant/v2.0";

    fn endpoint(url: &str) -> Url {
        Url::parse(url).unwrap()
    }

    fn jwt(claims: &str) -> String {
        let part = |text: &str| BASE64_URL_SAFE_NO_PAD.encode(text);
        format!("{}.{}.sig", part(r#"{"alg":"RS256"}"#), part(claims))
    }

    fn entra_endpoint() -> Url {
        endpoint("https://login.microsoftonline.com/tenant/oauth2/v2.0/token")
    }

    fn entra(token_endpoint: &Url) -> Authority<'_> {
        Authority {
            issuer: ENTRA,
            token_endpoint,
        }
    }

    fn answer<'a>(token: &'a str, scope: Option<&'a str>) -> Granted<'a> {
        Granted {
            access_token: token,
            scope,
        }
    }

    fn bound(permissions: &[&str]) -> ScopeBinding {
        ScopeBinding {
            resource: "api://files".into(),
            permissions: permissions.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn entra_is_known_by_its_hosts_over_https() {
        let token = entra_endpoint();
        assert!(entra(&token).is_entra());
        let sts = Authority {
            issuer: "https://sts.windows.net/tenant/",
            token_endpoint: &token,
        };
        assert!(sts.is_entra());
        let other_host = endpoint("https://login.microsoftonline.us/tenant/oauth2/v2.0/token");
        assert!(!entra(&other_host).is_entra());
        let plain_http = endpoint("http://login.microsoftonline.com/t/token");
        assert!(!entra(&plain_http).is_entra());
        let with_user = endpoint("https://u:p@login.microsoftonline.com/t/token");
        assert!(!entra(&with_user).is_entra());
        let local = endpoint("http://127.0.0.1:1/token");
        assert!(!Authority {
            issuer: "http://127.0.0.1:1",
            token_endpoint: &local
        }
        .is_entra());
        assert!(!Authority {
            issuer: "not a url",
            token_endpoint: &token
        }
        .is_entra());
    }

    #[test]
    fn literal_scopes_must_all_be_granted() {
        assert!(grants_all(None, "api://x/a"));
        assert!(grants_all(
            Some("api://x/b api://x/a"),
            "api://x/a api://x/b"
        ));
        assert!(!grants_all(Some("api://x/a"), "api://x/a api://x/b"));
        assert!(!grants_all(Some(""), "api://x/a"));
        let local = endpoint("http://127.0.0.1:1/token");
        let other = Authority {
            issuer: "http://127.0.0.1:1",
            token_endpoint: &local,
        };
        // A selector elsewhere than Entra is literal: `.default` itself must be granted.
        assert_eq!(
            resolve(
                &answer("t", Some("api://files/read")),
                "api://files/.default",
                &other,
                None
            ),
            None
        );
        assert_eq!(
            resolve(
                &answer("t", Some("api://files/.default")),
                "api://files/.default",
                &other,
                None
            ),
            Some(None)
        );
    }

    #[test]
    fn an_entra_selector_binds_the_permissions_it_selected() {
        let token = entra_endpoint();
        let authority = entra(&token);
        let granted = answer(
            "t",
            Some("api://files/write api://files/read offline_access"),
        );
        assert_eq!(
            resolve(&granted, "api://files/.default", &authority, None),
            Some(Some(bound(&["read", "write"])))
        );
        // A renewal keeps the binding, may add permissions, never lose one.
        let wider = answer(
            "t",
            Some("api://files/read api://files/write api://files/admin"),
        );
        assert_eq!(
            resolve(
                &wider,
                "api://files/.default",
                &authority,
                Some(&bound(&["read", "write"]))
            ),
            Some(Some(bound(&["read", "write"])))
        );
        let narrower = answer("t", Some("api://files/read"));
        assert_eq!(
            resolve(
                &narrower,
                "api://files/.default",
                &authority,
                Some(&bound(&["read", "write"]))
            ),
            None
        );
        assert_eq!(
            resolve(
                &granted,
                "api://mail/.default",
                &authority,
                Some(&bound(&["read"]))
            ),
            None
        );
        assert_eq!(
            resolve(
                &granted,
                "api://files/.default api://files/read",
                &authority,
                None
            ),
            None
        );
        assert_eq!(
            resolve(
                &answer("t", Some("api://other/x:y")),
                "api://files/.default",
                &authority,
                None
            ),
            None
        );
    }

    #[test]
    fn without_a_scope_field_the_token_says_or_known_consent_holds() {
        let token = entra_endpoint();
        let authority = entra(&token);
        let own = jwt(r#"{"aud":"api://files","scp":"read write"}"#);
        assert_eq!(
            resolve(
                &answer(&own, None),
                "api://files/.default",
                &authority,
                None
            ),
            Some(Some(bound(&["read", "write"])))
        );
        let guid = "00000000-0000-0000-0000-0000000000aa";
        let by_app_id = jwt(&format!(r#"{{"aud":"{guid}","scp":"read"}}"#));
        let resource = format!("api://{guid}/.default");
        assert!(resolve(&answer(&by_app_id, None), &resource, &authority, None).is_some());
        let no_scp = jwt(r#"{"aud":"api://files"}"#);
        assert_eq!(
            resolve(
                &answer(&no_scp, None),
                "api://files/.default",
                &authority,
                None
            ),
            None
        );
        let elsewhere = jwt(r#"{"aud":"api://mail","scp":"read"}"#);
        assert_eq!(
            resolve(
                &answer(&elsewhere, None),
                "api://files/.default",
                &authority,
                None
            ),
            None
        );
        assert_eq!(
            resolve(
                &answer("opaque", None),
                "api://files/.default",
                &authority,
                Some(&bound(&["read"]))
            ),
            Some(Some(bound(&["read"])))
        );
    }

    #[test]
    fn a_stored_binding_must_name_plain_permissions_of_the_resource() {
        assert!(valid_binding(&bound(&["read"]), "api://files"));
        assert!(!valid_binding(&bound(&[]), "api://files"));
        assert!(!valid_binding(&bound(&[".default"]), "api://files"));
        assert!(!valid_binding(&bound(&["a b"]), "api://files"));
        assert!(!valid_binding(&bound(&["a:b"]), "api://files"));
        assert!(!valid_binding(&bound(&["read"]), "api://mail"));
        assert!(is_guid("00000000-0000-0000-0000-0000000000aa"));
        assert!(!is_guid("00000000-0000-0000-0000-0000000000ag"));
        assert!(!is_guid("files"));
    }

    #[test]
    fn literal_scopes_at_entra_stay_literal_and_a_selector_needs_a_resource() {
        let token = entra_endpoint();
        let authority = entra(&token);
        let granted = answer("t", Some("api://files/read"));
        assert_eq!(
            resolve(&granted, "api://files/read", &authority, None),
            Some(None)
        );
        assert_eq!(
            resolve(&granted, "api://files/write", &authority, None),
            None
        );
        // Plain permissions would bind, if a selector without a resource were one.
        let plain = answer("t", Some("read"));
        assert_eq!(resolve(&plain, "/.default", &authority, None), None);
        assert_eq!(resolve(&plain, ".default", &authority, None), None);
    }

    #[test]
    fn a_granted_scope_that_is_no_plain_permission_refuses_the_projection() {
        assert_eq!(permissions_for("api://files/.default", "api://files"), None);
        assert_eq!(permissions_for("api://files/", "api://files"), None);
        assert_eq!(permissions_for("api://files/a:b", "api://files"), None);
        assert_eq!(
            permissions_for("openid offline_access", "api://files"),
            None
        );
        assert_eq!(
            permissions_for("api://files/b read api://files/b", "api://files/"),
            Some(vec!["b".to_string(), "read".to_string()])
        );
    }

    #[test]
    fn a_token_for_another_audience_says_nothing_even_for_an_application_id_resource() {
        let guid = "00000000-0000-0000-0000-0000000000aa";
        let resource = format!("api://{guid}");
        let elsewhere = jwt(r#"{"aud":"api://mail","scp":"read"}"#);
        assert_eq!(token_scopes(&elsewhere, &resource), Ok(None));
        let by_id = jwt(&format!(r#"{{"aud":"{guid}","scp":"read"}}"#));
        assert_eq!(token_scopes(&by_id, &resource), Ok(Some("read".into())));
        assert_eq!(token_scopes("opaque", &resource), Ok(None));
    }
}
