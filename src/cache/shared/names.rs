//! Redis names of the shared tier, all in its own namespace `<prefix>::OBO_L2:` (no
//! `::` when the prefix is empty, as LibreChat's Keyv does).
//!
//! No name holds a user id, tenant, issuer, scope or assertion digest: each part is an
//! HMAC (`Keyring::name`). The hash tag `{t}` is the HMAC of the identity part of the
//! local cache key (tenant␟issuer␟subject␟), so every entry of one user, its lease and
//! the user's index set live in one cluster slot, and `invalidate(user)` is one script.
//!
//! - value `<ns>v:{t}:<e>`, lease `<ns>l:{t}:<e>` (e = HMAC of the whole local key)
//! - index `<ns>i:{t}`: a set of `<s>:<e>` (s = HMAC of identity + scopes), one per entry
//! - channel `<ns>events`: fills (`f<e>`) and sealed evictions (`x<sealed>`)

use super::seal::Keyring;
use crate::ground::identity::{Invalidation, SEPARATOR};

const NAMESPACE: &str = "OBO_L2:";

/// The namespace and the channel of one deployment.
pub struct Names {
    namespace: String,
    channel: String,
}

/// The names of one entry.
pub struct EntryNames {
    pub value: String,
    pub lease: String,
    pub index: String,
    /// `e`: what a fill message names.
    pub entry: String,
    /// `<s>:<e>`: the entry's member of the index set.
    pub member: String,
}

/// The names `invalidate(user[, scopes])` needs.
pub struct IdentityNames {
    pub index: String,
    /// `<ns>v:{t}:`, to which the script appends each `e`.
    pub value_prefix: String,
    /// `<s>:` when only one scope string is dropped, empty for all of the user's entries.
    pub member_prefix: String,
}

/// The first `n` parts of a local key, separators included (`None` if it has fewer).
fn leading_parts(key: &str, n: usize) -> Option<&str> {
    let (end, _) = key.match_indices(SEPARATOR).nth(n - 1)?;
    Some(&key[..end + SEPARATOR.len_utf8()])
}

impl Names {
    pub fn new(prefix: &str) -> Self {
        let namespace = if prefix.is_empty() {
            NAMESPACE.to_owned()
        } else {
            format!("{prefix}::{NAMESPACE}")
        };
        Self {
            channel: format!("{namespace}events"),
            namespace,
        }
    }

    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// A SCAN pattern for every name of the namespace (glob characters escaped).
    pub fn pattern(&self) -> String {
        let mut pattern = String::with_capacity(self.namespace.len() + 2);
        for c in self.namespace.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('*');
        pattern
    }

    /// The names of the entry for local key `key` (`tenant␟issuer␟subject␟scopes␟…`).
    pub fn entry(&self, keys: &Keyring, key: &str) -> EntryNames {
        let identity = leading_parts(key, 3).unwrap_or(key);
        let scoped = leading_parts(key, 4).unwrap_or(key);
        let tag = keys.name("identity", identity);
        let entry = keys.name("entry", key);
        let scope = &keys.name("scopes", scoped)[..16];
        EntryNames {
            value: format!("{}v:{{{tag}}}:{entry}", self.namespace),
            lease: format!("{}l:{{{tag}}}:{entry}", self.namespace),
            index: format!("{}i:{{{tag}}}", self.namespace),
            member: format!("{scope}:{entry}"),
            entry,
        }
    }

    /// The names for dropping every entry of one identity, or only those of one scope
    /// string of it.
    pub fn identity(&self, keys: &Keyring, dropped: &Invalidation) -> IdentityNames {
        let tag = keys.name("identity", dropped.identity_prefix());
        let member_prefix = dropped.scoped_prefix().map_or_else(String::new, |scoped| {
            format!("{}:", &keys.name("scopes", scoped)[..16])
        });
        IdentityNames {
            index: format!("{}i:{{{tag}}}", self.namespace),
            value_prefix: format!("{}v:{{{tag}}}:", self.namespace),
            member_prefix,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RingKey;
    use crate::ground::identity::IdentityTuple;

    const KEY: &str = "tenant\u{1f}https://idp\u{1f}alice\u{1f}api://mcp/.default\u{1f}abcdef";

    fn ring() -> Keyring {
        Keyring::new(&[RingKey {
            id: 1,
            key: [7; 32],
        }])
    }

    #[test]
    fn namespace_follows_librechats_prefix_rule() {
        assert_eq!(Names::new("").channel(), "OBO_L2:events");
        assert_eq!(Names::new("deploy42").channel(), "deploy42::OBO_L2:events");
        assert_eq!(Names::new("a*b").pattern(), "a\\*b::OBO_L2:*");
    }

    #[test]
    fn entry_names_share_the_identity_tag_and_hide_the_identity() {
        let keys = ring();
        let names = Names::new("p");
        let a = names.entry(&keys, KEY);
        let tag = |name: &str| name[name.find('{').unwrap()..=name.find('}').unwrap()].to_owned();
        assert_eq!(tag(&a.value), tag(&a.lease));
        assert_eq!(tag(&a.value), tag(&a.index));
        assert!(a.value.starts_with("p::OBO_L2:v:{"));
        let other_scope = names.entry(&keys, &KEY.replace("api://mcp", "api://other"));
        assert_eq!(tag(&a.value), tag(&other_scope.value));
        assert_ne!(a.value, other_scope.value);
        let bob = names.entry(&keys, &KEY.replace("alice", "bob"));
        assert_ne!(tag(&a.value), tag(&bob.value));
        for name in [&a.value, &a.lease, &a.index, &a.member] {
            for secret in ["tenant", "idp", "alice", "mcp", "abcdef"] {
                assert!(!name.contains(secret), "{name} holds {secret}");
            }
        }
        let alice = IdentityTuple {
            tenant_id: "tenant",
            openid_issuer: "https://idp",
            subject: "alice",
        };
        let all = names.identity(&keys, &Invalidation::new(&alice, None));
        assert_eq!(all.index, a.index);
        assert!(a.value.starts_with(&all.value_prefix));
        assert!(all.member_prefix.is_empty());
        let one = names.identity(
            &keys,
            &Invalidation::new(&alice, Some("api://mcp/.default")),
        );
        assert!(a.member.starts_with(&one.member_prefix));
        assert!(!other_scope.member.starts_with(&one.member_prefix));
    }
}
