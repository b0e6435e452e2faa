//! Refresh-ahead across processes: one refresh per key in the whole fleet, and
//! nobody waits for it. A process past its refresh point first looks for a token
//! another process already refreshed; failing that it takes the entry's lease
//! without waiting, and a process that finds the lease held keeps serving its own
//! still-valid token.

use super::{bump, seal, Lease, SharedTier};
use crate::cache::token::OboToken;

/// What a process past its token's refresh point should do.
pub enum Refresh {
    /// Another process refreshed already: its token (`id` 0) outlives ours.
    Adopt(OboToken),
    /// Exchange, then `finish` or `abandon` with this lease, held as its owner. After a
    /// claim that failed or answered late (Redis unavailable: the refresh then runs as in
    /// one process) it still names the owner it claimed under, so that a lease the script
    /// took anyway is released (see `Lease`).
    Lead(Lease),
    /// Another process holds the lease: skip this refresh.
    Skip,
}

impl SharedTier {
    /// One or two round trips, never a wait. `current_expires_at` is the expiry of the
    /// token this process holds: only a shared token that outlives it is adopted.
    pub async fn try_refresh(&self, key: &str, current_expires_at: u64) -> Refresh {
        let tier = &self.inner;
        let names = tier.names.entry(&tier.keys, key);
        let owner = seal::random_id();
        for skip_value in [false, true] {
            match tier.claim_once(&names, &owner, skip_value).await {
                // Failed or late: the script may have taken the lease under `owner`.
                None => {
                    return Refresh::Lead(Lease {
                        names: Some(names),
                        owner: Some(owner),
                    })
                }
                Some(None) => break,
                Some(Some(super::Claimed::Value(record))) => {
                    match tier.read(&names.value, &record) {
                        Some(token) if token.expires_at > current_expires_at => {
                            bump(&tier.counters.hits);
                            return Refresh::Adopt(token);
                        }
                        // Ours, or older: go for the lease.
                        _ => continue,
                    }
                }
                Some(Some(super::Claimed::Leader)) => {
                    bump(&tier.counters.leader_exchanges);
                    return Refresh::Lead(Lease {
                        names: Some(names),
                        owner: Some(owner),
                    });
                }
                Some(Some(super::Claimed::Held(_))) => return Refresh::Skip,
            }
        }
        Refresh::Lead(Lease {
            names: Some(names),
            owner: None,
        })
    }
}
