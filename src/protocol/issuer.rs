//! Whether a discovery document's `issuer` is the configured issuer, and what `iss` a
//! user's token from it must then carry.
//!
//! The rule is openid-client's (v6 `performDiscovery`, which LibreChat runs): the two
//! must be the same URL, except for two hosts whose documents never name the URL they
//! are served from. At `https://login.microsoftonline.com` (Entra) the multi-tenant
//! documents (`/common`, `/organizations`) name the template
//! `https://login.microsoftonline.com/{tenantid}/v2.0`, and a token's issuer is that
//! template with the token's own `tid` in place of `{tenantid}`; at a `*.b2clogin.com`
//! host (Azure AD B2C) the document names the tenant's id instead of its domain. Only an
//! OpenID Connect discovery document gets the exception, as openid-client grants it only
//! to its `oidc` algorithm; an RFC 8414 document must name its issuer exactly.

use url::Url;

use crate::ground::bounds;

/// Entra's host, as an origin: openid-client's comparison is with `URL.origin`.
const ENTRA_ORIGIN: &str = "https://login.microsoftonline.com";
/// Azure AD B2C's hosts: openid-client's comparison is `hostname.endsWith(...)`.
const B2C_HOST_SUFFIX: &str = ".b2clogin.com";
/// The placeholder in Entra's multi-tenant issuer, replaced by the token's `tid`.
const TENANT_TEMPLATE: &str = "{tenantid}";

/// Why the document's issuer was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// The same URL as the configured issuer.
    Exact,
    /// Another issuer served by Entra (`{tenantid}` template, or a v1 `sts.windows.net` one).
    Entra,
    /// Another issuer served by an Azure AD B2C host.
    B2c,
}

/// The issuer a discovery document names, and how it was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentIssuer {
    /// As the document spells it.
    pub named: String,
    pub accepted: Accepted,
}

impl DocumentIssuer {
    /// Checks the document's `issuer` against the configured one; `openid` says whether
    /// the document came from OpenID Connect discovery (rather than RFC 8414).
    pub fn check(configured: &Url, named: &str, openid: bool) -> Result<Self, String> {
        let parsed = bounds::parse_url(named).map_err(|e| {
            format!(
                "the document's issuer '{}' is not a URL ({e})",
                bounds::quoted(named)
            )
        })?;
        let accepted = if parsed == *configured {
            Accepted::Exact
        } else if openid && configured.origin().ascii_serialization() == ENTRA_ORIGIN {
            Accepted::Entra
        } else if openid
            && configured
                .host_str()
                .is_some_and(|host| host.ends_with(B2C_HOST_SUFFIX))
        {
            Accepted::B2c
        } else {
            return Err(format!(
                "the document names another issuer ({}); the issuer must match it exactly",
                bounds::quoted(named)
            ));
        };
        Ok(Self {
            named: named.to_owned(),
            accepted,
        })
    }

    /// Whether the document names a multi-tenant template rather than one issuer.
    pub fn is_template(&self) -> bool {
        self.accepted == Accepted::Entra && self.named.contains(TENANT_TEMPLATE)
    }

    /// The `iss` a token from this issuer must carry: the document's issuer, or, for an
    /// Entra template, the template with the token's `tid` in place of `{tenantid}` (as
    /// openid-client's expected issuer). `None` when the template needs a `tid` the token
    /// does not have.
    pub fn expected_iss(&self, tid: Option<&str>) -> Option<String> {
        if !self.is_template() {
            return Some(self.named.clone());
        }
        tid.map(|tid| self.named.replacen(TENANT_TEMPLATE, tid, 1))
    }

    /// How the operator should read the accepted issuer (plan, doctor).
    pub fn describe(&self) -> String {
        match self.accepted {
            Accepted::Exact => self.named.clone(),
            Accepted::Entra if self.is_template() => format!(
                "{} (Entra's multi-tenant template: a token's iss names its own tenant)",
                self.named
            ),
            Accepted::Entra => format!("{} (named by Entra's document)", self.named),
            Accepted::B2c => format!("{} (named by Azure AD B2C's document)", self.named),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMON: &str = "https://login.microsoftonline.com/common/v2.0";
    const TEMPLATE: &str = "https://login.microsoftonline.com/{tenantid}/v2.0";

    fn check(configured: &str, named: &str, openid: bool) -> Result<Accepted, String> {
        DocumentIssuer::check(&Url::parse(configured).unwrap(), named, openid).map(|i| i.accepted)
    }

    #[test]
    fn the_same_url_is_accepted_and_another_is_refused() {
        assert_eq!(
            check(
                "https://idp.example/realm",
                "https://idp.example/realm",
                false
            ),
            Ok(Accepted::Exact)
        );
        assert_eq!(
            check("https://IDP.example", "https://idp.example/", true),
            Ok(Accepted::Exact),
            "one URL, spelled two ways"
        );
        let other = check("https://idp.example/a", "https://idp.example/b", true).unwrap_err();
        assert_eq!(other, "the document names another issuer (https://idp.example/b); the issuer must match it exactly");
        assert!(check("https://idp.example", "not a url", true)
            .unwrap_err()
            .contains("'not a url' is not a URL"));
    }

    #[test]
    fn entra_and_b2c_hosts_are_excepted_for_openid_documents_only() {
        assert_eq!(check(COMMON, TEMPLATE, true), Ok(Accepted::Entra));
        assert_eq!(
            check(
                "https://login.microsoftonline.com:443/organizations/v2.0",
                TEMPLATE,
                true
            ),
            Ok(Accepted::Entra)
        );
        assert!(check(COMMON, TEMPLATE, false).is_err(), "RFC 8414: exact");
        for elsewhere in [
            "http://login.microsoftonline.com/common/v2.0",
            "https://login.microsoftonline.com:8443/common/v2.0",
            "https://login.microsoftonline.us/common/v2.0",
            "https://evil.login.microsoftonline.com/common/v2.0",
            "https://login.microsoftonline.com.evil.example/common/v2.0",
        ] {
            assert!(check(elsewhere, TEMPLATE, true).is_err(), "{elsewhere}");
        }
        let b2c = "https://contoso.b2clogin.com/contoso.onmicrosoft.com/b2c_1_signin/v2.0/";
        let b2c_named = "https://contoso.b2clogin.com/775527ff-9a37-4307-8b3d-cc311f58d925/v2.0/";
        assert_eq!(check(b2c, b2c_named, true), Ok(Accepted::B2c));
        assert!(check(b2c, b2c_named, false).is_err());
        assert!(
            check("https://b2clogin.com/x", b2c_named, true).is_err(),
            "a subdomain only"
        );
    }

    #[test]
    fn a_template_takes_the_tokens_tenant_and_other_issuers_stay_as_named() {
        let issuer = DocumentIssuer::check(&Url::parse(COMMON).unwrap(), TEMPLATE, true).unwrap();
        assert!(issuer.is_template());
        assert_eq!(
            issuer
                .expected_iss(Some("72f988bf-86f1-41af-91ab-2d7cd011db47"))
                .as_deref(),
            Some("https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0")
        );
        assert_eq!(issuer.expected_iss(None), None);
        assert!(issuer.describe().contains("multi-tenant template"));
        let v1 = DocumentIssuer::check(
            &Url::parse("https://login.microsoftonline.com/contoso.onmicrosoft.com/").unwrap(),
            "https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/",
            true,
        )
        .unwrap();
        assert!(!v1.is_template());
        assert_eq!(
            v1.expected_iss(Some("other")).as_deref(),
            Some(v1.named.as_str())
        );
        assert!(v1.describe().contains("named by Entra's document"));
        let b2c = DocumentIssuer {
            named: TEMPLATE.into(),
            accepted: Accepted::B2c,
        };
        assert!(!b2c.is_template(), "the template is Entra's alone");
        assert_eq!(b2c.expected_iss(Some("t")).as_deref(), Some(TEMPLATE));
        assert!(b2c.describe().contains("B2C"));
        let exact = DocumentIssuer {
            named: "https://idp.example".into(),
            accepted: Accepted::Exact,
        };
        assert_eq!(exact.describe(), "https://idp.example");
    }
}
