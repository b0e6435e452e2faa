//! An exchanged token as the cache holds it and the caller receives it.

use super::traffic::Traffic;
use crate::ground::redact::redacted_debug;

/// An exchanged token as LibreChat's `exchangeOboToken` returns it.
#[derive(Clone, PartialEq, Eq)]
pub struct OboToken {
    /// Unique per exchanged token in this process: the wrapper keeps the JS string of a
    /// token it has seen under this id, so a hit need not build the string again.
    pub id: u64,
    pub access_token: String,
    pub expires_in: u64,
    /// Epoch milliseconds, stamped when the token was requested.
    pub expires_at: u64,
    /// Epoch milliseconds after which a hit starts a refresh-ahead
    /// (`refresh_points::RefreshPolicy::refresh_at`); `refresh_points::NEVER` when off.
    pub refresh_at: u64,
    /// The hits it has had, which may move its refresh later (`traffic`).
    pub traffic: Traffic,
    /// The scopes that were requested (LibreChat echoes the request, not the grant).
    pub scope: String,
    /// RFC 8693's `issued_token_type`, when the IdP sent one.
    pub issued_token_type: Option<String>,
}

impl OboToken {
    /// When the token was requested (epoch ms): its expiry less its lifetime.
    pub fn obtained_at(&self) -> u64 {
        self.expires_at.saturating_sub(self.expires_in * 1000)
    }
}

redacted_debug!(OboToken {
    shown: [
        id,
        expires_in,
        expires_at,
        refresh_at,
        traffic,
        scope,
        issued_token_type
    ],
    hidden: [access_token]
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_never_prints() {
        let token = OboToken {
            id: 1,
            access_token: "eyJ-the-token".into(),
            expires_in: 1,
            expires_at: 2,
            refresh_at: 3,
            traffic: Traffic::fixed(),
            scope: "s".into(),
            issued_token_type: None,
        };
        assert!(!format!("{token:?}").contains("eyJ-the-token"));
    }
}
