//! Why a call was refused before it reached the cache or the IdP.

/// The code of every refused argument, from JS's checks and Rust's alike.
pub const INVALID_ARG: &str = "ERR_INVALID_ARG";

/// Why a call was refused before any exchange: LibreChat's messages, or ours for
/// values LibreChat never checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("Access token is required for OBO exchange")]
    MissingAccessToken,
    #[error("Scopes are required for OBO exchange")]
    MissingScopes,
    #[error("User must be authenticated via OpenID to perform OBO token exchange")]
    NotOpenIdUser,
    #[error("{0} must not contain the U+001F character")]
    SeparatorInValue(&'static str),
    #[error("digest must be the 64 lowercase hex digits assertionDigest returns")]
    NotADigest,
    /// The wrapper's packed identity is not the six fields `unpack_identity` reads.
    #[error("identity must have 6 fields separated by U+001F")]
    IdentityShape,
}

impl RequestError {
    /// The argument at fault, as the caller named it (the error's `argument`).
    pub fn argument(&self) -> &'static str {
        match self {
            Self::MissingAccessToken => "accessToken",
            Self::MissingScopes => "scopes",
            Self::NotOpenIdUser => "user",
            Self::SeparatorInValue(name) => name,
            Self::NotADigest => "digest",
            Self::IdentityShape => "identity",
        }
    }
}
