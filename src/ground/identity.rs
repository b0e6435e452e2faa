//! Who a cached token belongs to, and the cache key that binds it to that identity.
//!
//! The key reproduces LibreChat's newest `buildOboCacheKey`: the identity tuple
//! (tenant, issuer, subject), the requested scopes and the SHA-256 of the upstream
//! assertion, joined with U+001F. Binding the assertion hash into the key means a
//! token minted for one upstream token is never served for another, and the raw
//! assertion never appears in a key.

use sha2::{Digest, Sha256};

use crate::ground::error::RequestError;

/// Separator between key parts, as LibreChat uses.
pub const SEPARATOR: char = '\u{1f}';
const NO_TENANT: &str = "no-tenant";
const NO_ISSUER: &str = "no-issuer";
const DISCOVERY_SUFFIX: &str = "/.well-known/openid-configuration";

/// Identity fields as they come from LibreChat's user object or identity context.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdentitySource<'a> {
    pub subject: Option<&'a str>,
    pub tenant_id: Option<&'a str>,
    pub openid_issuer: Option<&'a str>,
}

/// The user's and the identity context's sources, as the JS wrapper packs them into one
/// string (one string crosses the boundary faster than two objects): the user's
/// `openidId`, `tenantId` and `openidIssuer`, then the context's `openidSubject`,
/// `tenantId` and `openidIssuer`, joined with U+001F. An empty field is an absent one
/// (LibreChat treats blank values as absent too). `None` unless there are exactly six.
pub fn unpack(packed: &str) -> Option<(IdentitySource<'_>, IdentitySource<'_>)> {
    let mut parts = packed.split(SEPARATOR);
    let mut fields = [None; 6];
    for field in &mut fields {
        let part = parts.next()?;
        *field = (!part.is_empty()).then_some(part);
    }
    if parts.next().is_some() {
        return None;
    }
    let [user_subject, user_tenant, user_issuer, subject, tenant, issuer] = fields;
    let source = |subject, tenant_id, openid_issuer| IdentitySource {
        subject,
        tenant_id,
        openid_issuer,
    };
    Some((
        source(user_subject, user_tenant, user_issuer),
        source(subject, tenant, issuer),
    ))
}

/// The resolved (tenant, issuer, subject) tuple that scopes every cache entry. It
/// borrows from its sources: a cache hit allocates nothing for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdentityTuple<'a> {
    pub tenant_id: &'a str,
    pub openid_issuer: &'a str,
    pub subject: &'a str,
}

/// Refuses `value`, a part of a key or of the packed identity, when it holds the
/// separator, naming it `name` as the caller knows it: two different (identity, scopes)
/// pairs could otherwise serialize to the same key. The one U+001F check.
pub fn refuse_separator(name: &'static str, value: &str) -> Result<(), RequestError> {
    if value.contains(SEPARATOR) {
        return Err(RequestError::SeparatorInValue(name));
    }
    Ok(())
}

impl<'a> IdentityTuple<'a> {
    /// Resolves the tuple with LibreChat's precedence: the identity context first,
    /// then the user; `None` when no subject is known (the user did not sign in
    /// with OpenID).
    pub fn resolve(
        user: &IdentitySource<'a>,
        context: Option<&IdentitySource<'a>>,
    ) -> Option<Self> {
        let sources = [context.copied(), Some(*user)];
        let first = |pick: fn(IdentitySource<'a>) -> Option<&'a str>,
                     clean: fn(&'a str) -> Option<&'a str>| {
            sources
                .iter()
                .flatten()
                .find_map(|s| pick(*s).and_then(clean))
        };
        let subject = first(|s| s.subject, trimmed)?;
        let tenant_id = first(|s| s.tenant_id, trimmed).unwrap_or(NO_TENANT);
        let openid_issuer = first(|s| s.openid_issuer, normalize_issuer).unwrap_or(NO_ISSUER);
        Some(Self {
            tenant_id,
            openid_issuer,
            subject,
        })
    }

    /// Rejects values that contain the separator, so that serialization is injective.
    pub fn check_separators(&self) -> Result<(), RequestError> {
        refuse_separator("tenantId", self.tenant_id)?;
        refuse_separator("openidIssuer", self.openid_issuer)?;
        refuse_separator("openidId", self.subject)
    }

    /// `tenant␟issuer␟subject␟`: the prefix every key of this identity starts with.
    pub fn key_prefix(&self) -> String {
        let parts = [self.tenant_id, self.openid_issuer, self.subject];
        let mut prefix =
            String::with_capacity(parts.iter().map(|p| p.len() + 1).sum::<usize>() + 128);
        for part in parts {
            prefix.push_str(part);
            prefix.push(SEPARATOR);
        }
        prefix
    }

    /// The full cache key: `tenant␟issuer␟subject␟scopes␟sha256hex(assertion)`.
    pub fn cache_key(&self, scopes: &str, assertion: &str, target: &Target) -> String {
        self.cache_key_with_digest(scopes, &AssertionDigest::of(assertion), target)
    }

    /// The same key from an assertion's digest computed earlier (the wrapper keeps the
    /// digests of assertions it has seen, so a cache hit neither copies nor hashes the
    /// assertion again). An RFC 8693 target, when there is one, follows the digest:
    /// `…␟digest␟audience␟resource`, so `invalidate(user, scopes)` still finds it by
    /// prefix and a key without a target stays LibreChat's.
    pub fn cache_key_with_digest(
        &self,
        scopes: &str,
        digest: &AssertionDigest,
        target: &Target,
    ) -> String {
        let mut key = self.key_prefix();
        key.reserve(scopes.len() + 1 + digest.as_str().len());
        key.push_str(scopes);
        key.push(SEPARATOR);
        key.push_str(digest.as_str());
        if !target.is_empty() {
            for part in [target.audience, target.resource] {
                key.push(SEPARATOR);
                key.push_str(part.unwrap_or_default());
            }
        }
        key
    }
}

/// What `invalidate(user[, scopes])` drops: every key of one identity, or only those
/// of one scope string (any assertion, any RFC 8693 target). The one statement of the
/// rule: the local tier drops the keys that start with `prefix`, the shared tier names
/// its index members from the same parts, and other processes get `prefix` in the
/// eviction they apply; the wrapper forgets the ids the local tier reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalidation {
    /// `tenant␟issuer␟subject␟`.
    identity: String,
    /// `tenant␟issuer␟subject␟scopes␟`, when one scope string is dropped.
    scoped: Option<String>,
}

impl Invalidation {
    pub fn new(identity: &IdentityTuple, scopes: Option<&str>) -> Self {
        let identity = identity.key_prefix();
        let scoped = scopes.map(|scopes| {
            let mut scoped = String::with_capacity(identity.len() + scopes.len() + 1);
            scoped.push_str(&identity);
            scoped.push_str(scopes);
            scoped.push(SEPARATOR);
            scoped
        });
        Self { identity, scoped }
    }

    /// The identity's part of every key, `tenant␟issuer␟subject␟`.
    pub fn identity_prefix(&self) -> &str {
        &self.identity
    }

    /// `tenant␟issuer␟subject␟scopes␟` when only one scope string is dropped.
    pub fn scoped_prefix(&self) -> Option<&str> {
        self.scoped.as_deref()
    }

    /// What every dropped key starts with.
    pub fn prefix(&self) -> &str {
        self.scoped.as_deref().unwrap_or(&self.identity)
    }
}

/// RFC 8693 `audience` and `resource` of a request: part of what a token is for.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Target<'a> {
    pub audience: Option<&'a str>,
    pub resource: Option<&'a str>,
}

impl Target<'_> {
    pub fn is_empty(&self) -> bool {
        self.audience.is_none() && self.resource.is_none()
    }

    /// Rejects values that contain the separator, so that serialization is injective.
    pub fn check_separators(&self) -> Result<(), RequestError> {
        refuse_separator("audience", self.audience.unwrap_or_default())?;
        refuse_separator("resource", self.resource.unwrap_or_default())
    }
}

/// The lowercase hex SHA-256 of an upstream assertion: the only form of it a key holds.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AssertionDigest([u8; 64]);

impl AssertionDigest {
    pub fn of(assertion: &str) -> Self {
        let mut hex = [0u8; 64];
        hex::encode_to_slice(Sha256::digest(assertion.as_bytes()), &mut hex)
            .expect("64 hex digits fit 64 bytes");
        Self(hex)
    }

    /// A digest handed back by the wrapper; `None` unless it is 64 lowercase hex digits.
    pub fn parse(text: &str) -> Option<Self> {
        let bytes: [u8; 64] = text.as_bytes().try_into().ok()?;
        bytes
            .iter()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            .then_some(Self(bytes))
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("hex is ASCII")
    }
}

impl std::fmt::Debug for AssertionDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn trimmed(value: &str) -> Option<&str> {
    let value = value.trim();
    (!value.is_empty()).then_some(value)
}

/// LibreChat's `normalizeOpenIdIssuer`: trims, drops trailing slashes and a trailing
/// discovery path, so `https://idp/` and `https://idp/.well-known/openid-configuration`
/// name the same issuer.
pub fn normalize_issuer(issuer: &str) -> Option<&str> {
    let issuer = issuer.trim().trim_end_matches('/');
    let issuer = issuer.strip_suffix(DISCOVERY_SUFFIX).unwrap_or(issuer);
    (!issuer.is_empty()).then_some(issuer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source<'a>(
        subject: &'a str,
        tenant: Option<&'a str>,
        issuer: Option<&'a str>,
    ) -> IdentitySource<'a> {
        IdentitySource {
            subject: Some(subject),
            tenant_id: tenant,
            openid_issuer: issuer,
        }
    }

    #[test]
    fn defaults_when_tenant_and_issuer_are_unknown() {
        let tuple = IdentityTuple::resolve(&source(" sub-1 ", None, None), None).unwrap();
        assert_eq!(tuple.subject, "sub-1");
        assert_eq!(tuple.tenant_id, "no-tenant");
        assert_eq!(tuple.openid_issuer, "no-issuer");
    }

    #[test]
    fn context_wins_over_user_and_blank_values_fall_through() {
        let user = source(
            "user-sub",
            Some("user-tenant"),
            Some("https://user-issuer/"),
        );
        let context = IdentitySource {
            subject: Some("ctx-sub"),
            tenant_id: Some("   "),
            openid_issuer: Some("https://ctx/.well-known/openid-configuration"),
        };
        let tuple = IdentityTuple::resolve(&user, Some(&context)).unwrap();
        assert_eq!(tuple.subject, "ctx-sub");
        assert_eq!(tuple.tenant_id, "user-tenant");
        assert_eq!(tuple.openid_issuer, "https://ctx");
    }

    #[test]
    fn no_subject_means_no_identity() {
        assert!(IdentityTuple::resolve(&IdentitySource::default(), None).is_none());
        assert!(IdentityTuple::resolve(&source("  ", None, None), None).is_none());
    }

    #[test]
    fn key_has_librechat_shape_and_hides_the_assertion() {
        let tuple =
            IdentityTuple::resolve(&source("s", Some("t"), Some("https://i")), None).unwrap();
        let key = tuple.cache_key("api://x/.default", "abc", &Target::default());
        assert_eq!(
            key,
            "t\u{1f}https://i\u{1f}s\u{1f}api://x/.default\u{1f}\
             ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(key.starts_with(&tuple.key_prefix()));
        assert!(!tuple
            .cache_key("s", "secret-assertion", &Target::default())
            .contains("secret-assertion"));
    }

    #[test]
    fn digest_round_trips_and_keys_match() {
        let tuple = IdentityTuple::resolve(&source("s", None, None), None).unwrap();
        let digest = AssertionDigest::of("abc");
        assert_eq!(AssertionDigest::parse(digest.as_str()), Some(digest));
        let none = Target::default();
        assert_eq!(
            tuple.cache_key_with_digest("x", &digest, &none),
            tuple.cache_key("x", "abc", &none)
        );
        for bad in ["", "abc", &"A".repeat(64), &"0".repeat(63), &"g".repeat(64)] {
            assert_eq!(AssertionDigest::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn targets_follow_the_digest_and_tell_keys_apart() {
        let tuple = IdentityTuple::resolve(&source("s", None, None), None).unwrap();
        let key = |audience, resource| tuple.cache_key("x", "abc", &Target { audience, resource });
        let plain = key(None, None);
        let keys = [
            key(Some("mcp"), None),
            key(None, Some("mcp")),
            key(Some("mcp"), Some("https://mcp")),
        ];
        for k in &keys {
            assert!(k.starts_with(&plain), "{k}");
            assert_ne!(k, &plain);
        }
        assert_ne!(keys[0], keys[1]);
        let bad = Target {
            audience: Some("a\u{1f}b"),
            resource: None,
        };
        assert_eq!(
            bad.check_separators(),
            Err(RequestError::SeparatorInValue("audience"))
        );
    }

    #[test]
    fn an_invalidation_drops_the_identity_or_one_scope_string_of_it() {
        let tuple =
            IdentityTuple::resolve(&source("s", Some("t"), Some("https://i")), None).unwrap();
        let all = Invalidation::new(&tuple, None);
        assert_eq!(all.identity_prefix(), "t\u{1f}https://i\u{1f}s\u{1f}");
        assert_eq!(
            (all.prefix(), all.scoped_prefix()),
            (all.identity_prefix(), None)
        );
        let one = Invalidation::new(&tuple, Some("x y"));
        assert_eq!(one.identity_prefix(), all.identity_prefix());
        assert_eq!(one.prefix(), "t\u{1f}https://i\u{1f}s\u{1f}x y\u{1f}");
        assert_eq!(one.scoped_prefix(), Some(one.prefix()));
        let target = Target {
            audience: Some("a"),
            resource: None,
        };
        for key in [
            tuple.cache_key("x y", "abc", &Target::default()),
            tuple.cache_key("x y", "abc", &target),
        ] {
            assert!(key.starts_with(one.prefix()), "{key}");
        }
        for other in ["x", "x y z", "x yz"] {
            let key = tuple.cache_key(other, "abc", &Target::default());
            assert!(
                key.starts_with(all.prefix()) && !key.starts_with(one.prefix()),
                "{key}"
            );
        }
    }

    #[test]
    fn separator_in_identity_is_refused() {
        let tuple = IdentityTuple::resolve(&source("a\u{1f}b", None, None), None).unwrap();
        assert_eq!(
            tuple.check_separators(),
            Err(RequestError::SeparatorInValue("openidId"))
        );
    }

    #[test]
    fn issuer_normalization() {
        assert_eq!(normalize_issuer(" https://idp/// "), Some("https://idp"));
        assert_eq!(normalize_issuer("/.well-known/openid-configuration"), None);
        assert_eq!(normalize_issuer(""), None);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]

        /// Six fields without U+001F, packed as the wrapper packs them, unpack to the
        /// same fields (an empty one as absent), and nothing else unpacks.
        #[test]
        fn the_packed_identity_round_trips(
            fields in proptest::array::uniform6("[^\u{1f}]{0,12}"),
            extra in 0usize..3,
        ) {
            let packed = fields.join("\u{1f}");
            let (user, context) = unpack(&packed).expect("six fields unpack");
            let back = [user, context].map(|s| [s.subject, s.tenant_id, s.openid_issuer]);
            let expected = fields.each_ref().map(|f| (!f.is_empty()).then_some(f.as_str()));
            proptest::prop_assert_eq!(back.concat(), expected.to_vec());
            let mut wrong = fields.to_vec();
            wrong.truncate(5 - extra.min(4));
            let short = wrong.join("\u{1f}");
            proptest::prop_assert!(unpack(&short).is_none());
            let long = format!("{packed}{}", "\u{1f}".repeat(extra + 1));
            proptest::prop_assert!(unpack(&long).is_none());
        }
    }
}
