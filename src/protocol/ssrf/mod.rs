//! The SSRF policy for URLs that an MCP server hands us, as LibreChat applies it in its
//! MCP OAuth code (`isOAuthUrlAllowed`, `isSSRFTarget`, `resolveHostnameSSRF`,
//! `createSSRFSafeUndiciConnect`): a 401's `resource_metadata`, the authorization
//! servers its metadata lists, and their metadata and token endpoint. URLs the operator
//! configured (the enterprise IdP's issuer and token endpoint, `authorizationServer.issuer`
//! and its endpoints, the MCP server's own URL) are trusted as they are.
//!
//! With `allowedDomains` set, a URL must match one of its patterns (`domains.rs`), and a
//! match is trusted as LibreChat trusts it (no address check). Without it, a URL must not
//! name an internal host or a private, loopback, link-local, shared, multicast or
//! reserved address (`addresses.rs`), neither literally nor through DNS, and the
//! connection goes to the addresses that were checked (`resolver.rs`). A refused URL
//! fails with `UrlRefused` before any byte is sent to it.

mod addresses;
mod domains;
mod resolver;

use reqwest::Client;
use url::{Host, Url};

pub use domains::AllowedDomains;
use resolver::{PinningResolver, Unresolved};

use super::http::{screened_client, ClientSettings};
use crate::ground::error::{BuildError, ExchangeError, UrlRefusal, UrlRefused};

/// The policy of one service, and the clients it hands out.
pub struct Guard {
    allowed: Option<AllowedDomains>,
    /// `authorizationServer.issuer`, when the operator configured it.
    trusted_issuer: Option<String>,
    /// The service's client, for trusted and listed URLs.
    plain: Client,
    /// For screened URLs: connects only to checked addresses (the plain client's proxy,
    /// when one is configured: then the proxy resolves, and the check is the one made
    /// before sending).
    screened: Client,
    resolver: PinningResolver,
}

impl Guard {
    /// `plain` is the service's client, built from `settings`.
    pub fn new(
        allowed: Option<AllowedDomains>,
        trusted_issuer: Option<String>,
        plain: Client,
        settings: &ClientSettings,
    ) -> Result<Self, BuildError> {
        Self::with_resolver(
            allowed,
            trusted_issuer,
            plain,
            settings,
            PinningResolver::system(),
        )
    }

    fn with_resolver(
        allowed: Option<AllowedDomains>,
        trusted_issuer: Option<String>,
        plain: Client,
        settings: &ClientSettings,
        resolver: PinningResolver,
    ) -> Result<Self, BuildError> {
        let screened = match settings.proxy {
            Some(_) => plain.clone(),
            None => screened_client(settings.timeout, resolver.clone())?,
        };
        Ok(Self {
            allowed,
            trusted_issuer,
            plain,
            screened,
            resolver,
        })
    }

    /// The client to fetch `url` with, `written` as the MCP server (or a document it led
    /// to) wrote it, or the refusal. `issuer`: the authorization server the URL belongs
    /// to, if any; the operator's own is trusted.
    pub async fn admit(
        &self,
        issuer: Option<&str>,
        url: &Url,
        written: &str,
    ) -> Result<&Client, ExchangeError> {
        if self.trusts(issuer) {
            return Ok(&self.plain);
        }
        let Some(allowed) = &self.allowed else {
            return self.screen(url).await;
        };
        match allowed.admits(written) {
            true => Ok(&self.plain),
            false => Err(refused(url, UrlRefusal::NotListed)),
        }
    }

    /// The client for a token request to `endpoint`, which discovery admitted for
    /// `issuer`: screened again, since the chain is kept longer than an address is pinned.
    pub async fn token_client(
        &self,
        issuer: &str,
        endpoint: &Url,
    ) -> Result<&Client, ExchangeError> {
        match self.trusts(Some(issuer)) || self.allowed.is_some() {
            true => Ok(&self.plain),
            false => self.screen(endpoint).await,
        }
    }

    fn trusts(&self, issuer: Option<&str>) -> bool {
        issuer.is_some() && issuer == self.trusted_issuer.as_deref()
    }

    /// Without `allowedDomains`: the host must be no internal name and no blocked
    /// address, literally or resolved. A failed lookup is left to the request, which
    /// fails on it the same way (LibreChat's check fails open there too).
    async fn screen(&self, url: &Url) -> Result<&Client, ExchangeError> {
        let refusal = match url.host() {
            Some(Host::Domain(name)) if addresses::blocked_name(name) => {
                Some(UrlRefusal::InternalName)
            }
            Some(Host::Domain(name)) => match self.resolver.addresses(name).await {
                Err(Unresolved::Blocked(ip)) => Some(UrlRefusal::PrivateAddress(ip)),
                _ => None,
            },
            Some(Host::Ipv4(ip)) => literal(ip.into()),
            Some(Host::Ipv6(ip)) => literal(ip.into()),
            None => Some(UrlRefusal::InternalName),
        };
        match refusal {
            Some(refusal) => Err(refused(url, refusal)),
            None => Ok(&self.screened),
        }
    }
}

#[cfg(test)]
impl Guard {
    /// A guard whose `allowedDomains` lists `patterns` (the chain's tests run on loopback).
    pub fn listing(patterns: &[&str], plain: Client) -> Self {
        let patterns: Vec<String> = patterns.iter().map(|p| (*p).to_owned()).collect();
        let allowed = AllowedDomains::parse(&patterns).unwrap();
        let settings = ClientSettings {
            timeout: std::time::Duration::from_secs(5),
            proxy: None,
        };
        Self::new(allowed, None, plain, &settings).unwrap()
    }
}

fn literal(ip: std::net::IpAddr) -> Option<UrlRefusal> {
    addresses::blocked_ip(ip).then_some(UrlRefusal::PrivateAddress(ip))
}

fn refused(url: &Url, refusal: UrlRefusal) -> ExchangeError {
    ExchangeError::UrlRefused(UrlRefused {
        host: url.host_str().unwrap_or_default().to_owned(),
        refusal,
    })
}

#[cfg(test)]
mod tests;
