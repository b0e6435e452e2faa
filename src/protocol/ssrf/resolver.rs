//! The DNS resolver of the client for URLs from an MCP server: every address a name
//! resolves to is checked, a name with any blocked address is refused (as LibreChat's
//! `resolveHostnameSSRF` refuses it), and the checked addresses are what the connection
//! gets, so a second answer from a rebinding DNS server cannot swap them. A check made
//! before sending is remembered for `PIN_TTL`, and the connection that follows is made
//! to exactly those addresses.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::addresses::blocked_ip;

/// How long checked addresses are used for a name before it is resolved again.
const PIN_TTL: Duration = Duration::from_secs(60);
/// Names remembered at once.
const MAX_NAMES: u64 = 1024;

/// A DNS lookup: a name to its addresses.
pub type Lookup = Arc<dyn Fn(String) -> BoxFuture<'static, io::Result<Vec<IpAddr>>> + Send + Sync>;

/// Why a name has no addresses to connect to.
#[derive(Debug)]
pub enum Unresolved {
    /// It resolves to this blocked address (among others, perhaps).
    Blocked(IpAddr),
    /// The lookup failed or found nothing.
    Lookup(io::Error),
}

/// The checking, pinning resolver; clones share their pins.
#[derive(Clone)]
pub struct PinningResolver(Arc<Inner>);

struct Inner {
    lookup: Lookup,
    blocked: fn(IpAddr) -> bool,
    pinned: moka::sync::Cache<String, Arc<[IpAddr]>>,
}

impl PinningResolver {
    /// The system's resolver (getaddrinfo, as reqwest's own), checked with `blocked_ip`.
    pub fn system() -> Self {
        let lookup: Lookup = Arc::new(|name: String| {
            Box::pin(async move {
                let found = tokio::net::lookup_host((name.as_str(), 0)).await?;
                Ok(found.map(|address| address.ip()).collect())
            })
        });
        Self::new(lookup, blocked_ip)
    }

    /// `lookup` checked with `blocked` (tests give their own of both).
    pub fn new(lookup: Lookup, blocked: fn(IpAddr) -> bool) -> Self {
        Self(Arc::new(Inner {
            lookup,
            blocked,
            pinned: moka::sync::Cache::builder()
                .max_capacity(MAX_NAMES)
                .time_to_live(PIN_TTL)
                .build(),
        }))
    }

    /// The checked addresses of `name`: pinned ones while they last, else a new lookup,
    /// which is pinned when every address passes.
    pub async fn addresses(&self, name: &str) -> Result<Arc<[IpAddr]>, Unresolved> {
        if let Some(pinned) = self.0.pinned.get(name) {
            return Ok(pinned);
        }
        let found = (self.0.lookup)(name.to_owned())
            .await
            .map_err(Unresolved::Lookup)?;
        if let Some(blocked) = found.iter().copied().find(|ip| (self.0.blocked)(*ip)) {
            return Err(Unresolved::Blocked(blocked));
        }
        if found.is_empty() {
            let none = io::Error::new(io::ErrorKind::NotFound, "no address");
            return Err(Unresolved::Lookup(none));
        }
        let found: Arc<[IpAddr]> = found.into();
        self.0.pinned.insert(name.to_owned(), found.clone());
        Ok(found)
    }
}

impl Resolve for PinningResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let resolver = self.clone();
        Box::pin(async move {
            let name = name.as_str();
            let found = resolver.addresses(name).await.map_err(|why| match why {
                Unresolved::Lookup(error) => error,
                Unresolved::Blocked(ip) => io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!("{name} resolves to the blocked address {ip}"),
                ),
            })?;
            let addresses: Vec<SocketAddr> =
                found.iter().map(|ip| SocketAddr::new(*ip, 0)).collect();
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}
