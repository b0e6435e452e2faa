//! The steps of an ID-JAG exchange, so that a failure says which one failed: the
//! operator fixes discovery at the MCP server, leg 1 at the enterprise IdP, and leg 2
//! at the MCP server's authorization server.

/// Where an ID-JAG exchange failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdJagStep {
    /// The MCP server's protected resource metadata (RFC 9728) or its authorization
    /// server's metadata (RFC 8414).
    Discovery,
    /// Token exchange at the enterprise IdP for the ID-JAG.
    Assertion,
    /// The jwt-bearer grant with the ID-JAG at the MCP authorization server.
    AccessToken,
}

impl IdJagStep {
    /// The name callers branch on (`idJagStep`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Discovery => "discovery",
            Self::Assertion => "leg1",
            Self::AccessToken => "leg2",
        }
    }

    /// The server this step talks to, as its failure messages name it.
    pub fn party(self) -> &'static str {
        match self {
            Self::Discovery => "the MCP server",
            Self::Assertion => "the enterprise identity provider",
            Self::AccessToken => "the MCP server's authorization server",
        }
    }
}

impl std::fmt::Display for IdJagStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Discovery => {
                "discovery (the MCP server's and its authorization server's metadata)"
            }
            Self::Assertion => "leg 1 (token exchange for an ID-JAG at the enterprise IdP)",
            Self::AccessToken => {
                "leg 2 (jwt-bearer grant at the MCP server's authorization server)"
            }
        })
    }
}
