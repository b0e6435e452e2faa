//! What was wrong with a metadata document of an ID-JAG chain (RFC 9728, RFC 8414), so
//! that callers (the doctor) can tell the fix from a field instead of from the wording.

/// What failed about a metadata document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataProblem {
    /// No document at any URL tried for the authorization server (all client errors).
    NotFound,
    /// The request failed below HTTP, or the server answered 5xx or 429.
    Unavailable,
    /// The document is too large, or not the JSON it must be.
    Unreadable,
    /// A URL of the chain is not https (http only on a loopback host), or has a fragment.
    InsecureUrl,
    /// The protected resource metadata names another resource.
    ResourceMismatch,
    /// The protected resource metadata lists no `authorization_servers`.
    NoAuthorizationServers,
    /// The protected resource metadata does not list the expected authorization server.
    ServerNotListed,
    /// The authorization server metadata names another issuer.
    IssuerMismatch,
    /// `authorization_grant_profiles_supported` lacks the ID-JAG profile.
    NoIdJagProfile,
    /// `grant_types_supported` lacks the jwt-bearer grant.
    NoJwtBearer,
    /// The authorization server metadata has no https `token_endpoint`.
    NoTokenEndpoint,
}

impl MetadataProblem {
    /// The name callers branch on (the error's `kind`).
    pub fn name(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::Unavailable => "unavailable",
            Self::Unreadable => "unreadable",
            Self::InsecureUrl => "insecure_url",
            Self::ResourceMismatch => "resource_mismatch",
            Self::NoAuthorizationServers => "no_authorization_servers",
            Self::ServerNotListed => "server_not_listed",
            Self::IssuerMismatch => "issuer_mismatch",
            Self::NoIdJagProfile => "no_id_jag_profile",
            Self::NoJwtBearer => "no_jwt_bearer",
            Self::NoTokenEndpoint => "no_token_endpoint",
        }
    }
}
