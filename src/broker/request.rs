//! A call as the caller makes it, checked in LibreChat's order and turned into a
//! request that owns what an exchange needs across awaits.

use std::sync::Arc;

use crate::ground::error::RequestError;
use crate::ground::identity::{refuse_separator, IdentitySource, IdentityTuple, Target};
use crate::ground::redact::redacted_debug;

/// One call as the caller makes it (LibreChat's `exchangeOboToken` arguments, plus
/// the RFC 8693 target).
#[derive(Clone, Copy)]
pub struct Call<'a> {
    pub user: IdentitySource<'a>,
    pub context: Option<IdentitySource<'a>>,
    pub access_token: &'a str,
    pub scopes: &'a str,
    pub target: Target<'a>,
    pub claims: Option<&'a str>,
    /// ID-JAG: the protected resource metadata URL a 401 named (a discovery hint, not
    /// part of the key: the document must still name the resource exactly).
    pub resource_metadata: Option<&'a str>,
    /// False when the caller forces a fresh exchange.
    pub from_cache: bool,
}

redacted_debug!(Call<'a> {
    shown: [user, context, scopes, target, resource_metadata, from_cache],
    hidden: [access_token, claims],
});

/// A checked call: its cache key, and what a miss needs to go to the IdP. Built
/// only on a miss (hits are answered from borrowed arguments), so owning is cheap.
#[derive(Clone)]
pub struct Request {
    pub key: String,
    pub subject: Arc<str>,
    pub assertion: Arc<str>,
    pub scopes: Arc<str>,
    pub claims: Option<Arc<str>>,
    pub audience: Option<Arc<str>>,
    pub resource: Option<Arc<str>>,
    pub resource_metadata: Option<Arc<str>>,
    /// False when the caller forces a fresh exchange, or answers a claims challenge.
    pub from_cache: bool,
    /// A background refresh-ahead (`broker::refresh`), not a caller's exchange.
    pub refresh: bool,
}

redacted_debug!(Request {
    shown: [
        key,
        subject,
        scopes,
        audience,
        resource,
        resource_metadata,
        from_cache,
        refresh
    ],
    hidden: [assertion, claims]
});

impl Request {
    /// Checks the arguments in LibreChat's order (access token, scopes, identity) and
    /// builds the cache key. A request that carries `claims` (a client answering a
    /// claims challenge) neither reads the cache nor joins a flight: the cached token is
    /// the one the resource just refused.
    pub fn new(call: Call<'_>) -> Result<Self, RequestError> {
        let Call {
            user,
            context,
            access_token,
            scopes,
            target,
            claims,
            resource_metadata,
            from_cache,
        } = call;
        if access_token.is_empty() {
            return Err(RequestError::MissingAccessToken);
        }
        let identity = checked_identity(&user, context.as_ref(), scopes, &target)?;
        Ok(Self {
            key: identity.cache_key(scopes, access_token, &target),
            subject: identity.subject.into(),
            assertion: access_token.into(),
            scopes: scopes.into(),
            claims: claims.map(Into::into),
            audience: target.audience.map(Into::into),
            resource: target.resource.map(Into::into),
            resource_metadata: resource_metadata.map(Into::into),
            from_cache: from_cache && claims.is_none(),
            refresh: false,
        })
    }
}

/// LibreChat's checks of the scopes and the identity, in its order; the identity tuple.
pub fn checked_identity<'a>(
    user: &IdentitySource<'a>,
    context: Option<&IdentitySource<'a>>,
    scopes: &str,
    target: &Target,
) -> Result<IdentityTuple<'a>, RequestError> {
    if scopes.trim().is_empty() {
        return Err(RequestError::MissingScopes);
    }
    refuse_separator("scopes", scopes)?;
    target.check_separators()?;
    let identity = IdentityTuple::resolve(user, context).ok_or(RequestError::NotOpenIdUser)?;
    identity.check_separators()?;
    Ok(identity)
}
