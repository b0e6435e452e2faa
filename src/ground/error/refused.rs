//! Why a request was refused before it reached the token endpoint: the user's
//! assertion cannot be exchanged, or the grant does not fit the IdP or the call.

/// Why an assertion is refused before the exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssertionProblem {
    /// Not a signed JWS in compact form (three base64url parts, a JSON header with an
    /// `alg` other than `none`, a JSON payload, a signature).
    NotJws,
    /// Its `exp` (epoch seconds) has passed.
    Expired { exp: i64 },
    /// Full verification (`validateAssertion`) refused it; the reason names no token.
    /// `claim` is set when the refusal is about that claim's value.
    Invalid {
        reason: String,
        claim: Option<RefusedClaim>,
    },
}

/// A claim whose value full verification refused: an operator fixes each differently
/// (the login's scope for `aud`, the issuer setting for `iss`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusedClaim {
    Audience,
    Issuer,
}

impl AssertionProblem {
    /// The Node-style code callers can branch on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotJws => "ERR_ASSERTION_NOT_JWS",
            Self::Expired { .. } => "ERR_ASSERTION_EXPIRED",
            Self::Invalid { .. } => "ERR_ASSERTION_INVALID",
        }
    }

    /// What was refused, for `ERR_ASSERTION_INVALID`: `audience` or `issuer` when a
    /// claim's value was, else none.
    pub fn kind(&self) -> Option<&'static str> {
        match self {
            Self::Invalid { claim, .. } => claim.map(RefusedClaim::name),
            Self::NotJws | Self::Expired { .. } => None,
        }
    }
}

impl RefusedClaim {
    /// The claim's name, as the error's `kind` gives it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Audience => "audience",
            Self::Issuer => "issuer",
        }
    }
}

impl std::fmt::Display for AssertionProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotJws => write!(
                f,
                "The access token given for the OBO exchange is not a signed JWT (an id_token or an opaque token cannot be exchanged)"
            ),
            Self::Expired { exp } => write!(
                f,
                "The access token given for the OBO exchange expired at {exp} (epoch seconds); a fresh one is needed"
            ),
            Self::Invalid { reason, .. } => write!(
                f,
                "The access token given for the OBO exchange failed validation: {reason}"
            ),
        }
    }
}

/// Why no request was sent: the grant does not fit the IdP or the call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantProblem {
    /// `wanted` is the `grantType` option value, `wanted_urn` the grant's URN.
    #[error("The identity provider does not advertise the {wanted} grant ({wanted_urn}) in grant_types_supported [{}]; enable it for the client at the IdP, or set grantType to a grant it supports", .advertised.join(", "))]
    NotAdvertised {
        wanted: &'static str,
        wanted_urn: &'static str,
        advertised: Vec<String>,
    },
    #[error("audience is an RFC 8693 token exchange parameter; the On-Behalf-Of grant names its resource in the scopes (api://app/scope)")]
    TargetNeedsTokenExchange,
    #[error("grantType 'id_jag' needs the MCP server's resource (the call's resource, or the obo block's): discovery starts from it")]
    IdJagNeedsResource,
    #[error("This service's MCP authorization server is {pinned}, and {other} was asked for: its credentials go nowhere else; give each authorization server its own service (and authorizationServer block)")]
    IdJagOtherServer { pinned: String, other: String },
    #[error("A claims challenge answer (options.claims) belongs to Entra's On-Behalf-Of; grantType 'id_jag' cannot pass it on")]
    IdJagClaims,
    /// The MCP server's authorization server does not list the leg-2 client
    /// authentication method: the one configured (`configured`), or, when none is, any
    /// that a client secret can do.
    #[error("{}", auth_method_message(*.configured, .listed))]
    IdJagAuthMethod {
        configured: Option<&'static str>,
        listed: Vec<String>,
    },
}

fn auth_method_message(configured: Option<&str>, listed: &[String]) -> String {
    let listed = listed.join(", ");
    match configured {
        Some(method) => format!(
            "The MCP server's authorization server does not list authorizationServer.clientAuthMethod '{method}' in token_endpoint_auth_methods_supported [{listed}]; set authorizationServer.clientAuthMethod to a method it lists"
        ),
        None => format!(
            "The MCP server's authorization server lists neither client_secret_basic nor client_secret_post, the methods a clientSecret can do, in token_endpoint_auth_methods_supported [{listed}]; set authorizationServer.clientAuthMethod to a method it lists (private_key_jwt with a clientAssertionKey)"
        ),
    }
}

impl GrantProblem {
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotAdvertised { .. } => "ERR_GRANT_NOT_ADVERTISED",
            Self::TargetNeedsTokenExchange => "ERR_TARGET_NEEDS_TOKEN_EXCHANGE",
            Self::IdJagNeedsResource => "ERR_ID_JAG_NEEDS_RESOURCE",
            Self::IdJagOtherServer { .. } => "ERR_ID_JAG_OTHER_SERVER",
            Self::IdJagClaims => "ERR_ID_JAG_CLAIMS",
            Self::IdJagAuthMethod { .. } => "ERR_ID_JAG_AUTH_METHOD",
        }
    }
}
