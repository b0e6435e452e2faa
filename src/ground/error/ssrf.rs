//! A URL that an MCP server handed us and the SSRF policy refused, before any byte was
//! sent to it. The message names the host, never the URL's path or query (which could
//! carry anything the server chose).

use std::net::IpAddr;

/// Why the policy refused a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlRefusal {
    /// `allowedDomains` is set and no pattern matches the URL.
    NotListed,
    /// No `allowedDomains`, and the host is an internal name (`localhost`, `*.internal`…).
    InternalName,
    /// No `allowedDomains`, and the host is, or resolves to, a private or reserved address.
    PrivateAddress(IpAddr),
}

/// A refused URL: its host and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", message(.host, .refusal))]
pub struct UrlRefused {
    pub host: String,
    pub refusal: UrlRefusal,
}

impl UrlRefused {
    /// `ERR_URL_NOT_ALLOWED` for a URL outside `allowedDomains`, `ERR_SSRF_BLOCKED` for
    /// an internal target.
    pub fn code(&self) -> &'static str {
        match self.refusal {
            UrlRefusal::NotListed => "ERR_URL_NOT_ALLOWED",
            _ => "ERR_SSRF_BLOCKED",
        }
    }
}

fn message(host: &str, refusal: &UrlRefusal) -> String {
    const LIST: &str = "If it is meant, list it in allowedDomains (mcpSettings.allowedDomains)";
    match refusal {
        UrlRefusal::NotListed => format!(
            "A URL from the MCP server leads to {host}, which allowedDomains does not list; nothing was sent to it"
        ),
        UrlRefusal::InternalName => format!(
            "A URL from the MCP server leads to the internal host {host}; nothing was sent to it. {LIST}"
        ),
        UrlRefusal::PrivateAddress(ip) if host.trim_matches(['[', ']']) == ip.to_string() => format!(
            "A URL from the MCP server leads to the private or reserved address {host}; nothing was sent to it. {LIST}"
        ),
        UrlRefusal::PrivateAddress(ip) => format!(
            "A URL from the MCP server leads to {host}, which resolves to the private or reserved address {ip}; nothing was sent to it. {LIST}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(host: &str, refusal: UrlRefusal) -> UrlRefused {
        UrlRefused {
            host: host.into(),
            refusal,
        }
    }

    #[test]
    fn messages_name_the_host_and_codes_the_kind() {
        let not_listed = refused("as.example.com", UrlRefusal::NotListed);
        assert_eq!(not_listed.code(), "ERR_URL_NOT_ALLOWED");
        assert_eq!(
            not_listed.to_string(),
            "A URL from the MCP server leads to as.example.com, which allowedDomains does not list; nothing was sent to it"
        );
        let name = refused("localhost", UrlRefusal::InternalName);
        assert_eq!(name.code(), "ERR_SSRF_BLOCKED");
        assert!(name
            .to_string()
            .starts_with("A URL from the MCP server leads to the internal host localhost; nothing was sent to it. If it is meant, list it in allowedDomains"));
        let literal = refused("[::1]", UrlRefusal::PrivateAddress("::1".parse().unwrap()));
        assert_eq!(literal.code(), "ERR_SSRF_BLOCKED");
        assert!(literal.to_string().starts_with(
            "A URL from the MCP server leads to the private or reserved address [::1]; nothing"
        ));
        let resolved = refused(
            "vm",
            UrlRefusal::PrivateAddress("127.0.0.1".parse().unwrap()),
        );
        assert!(resolved
            .to_string()
            .starts_with("A URL from the MCP server leads to vm, which resolves to the private or reserved address 127.0.0.1; nothing"));
    }
}
