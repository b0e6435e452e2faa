//! Why a call was refused before it reached the cache or the IdP.

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
}
