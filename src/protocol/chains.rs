//! The authorization server of an ID-JAG service, found through the metadata chain
//! (`metadata`) and remembered the way `discovery.rs` remembers the IdP's document:
//! one discovery per chain however many calls need it, kept an hour, and a failure
//! answering the calls queued behind it for a few seconds rather than each waiting out
//! the same timeouts.
//!
//! One service holds one client registration, so it serves one authorization server:
//! the one configured, else the first one discovery finds, pinned from then on. A
//! resource (or a call's `audience`) that leads elsewhere is refused, so its
//! credentials never reach a server the operator did not mean them for.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use reqwest::Client;
use tokio::sync::OnceCell;

use super::metadata::{self, AuthorizationServer};
use super::ssrf::Guard;
use crate::ground::error::{ExchangeError, GrantProblem};

/// How long a discovered chain is trusted before it is read again.
const CHAIN_TTL: Duration = Duration::from_secs(3600);
/// Distinct (resource, authorization server, metadata URL) chains remembered.
const MAX_CHAINS: u64 = 256;
/// How long a failed discovery answers for its chain.
const FAILURE_TTL: Duration = Duration::from_secs(5);

/// The service's authorization server and the chains that led to it.
pub struct Chains {
    /// The one the operator named, else the first discovered.
    pinned: OnceLock<String>,
    /// One cell per chain: joiners wait for one discovery; a failure leaves it empty.
    found: moka::sync::Cache<String, Arc<OnceCell<AuthorizationServer>>>,
    /// Failed discoveries, for `FAILURE_TTL`.
    failures: moka::sync::Cache<String, ExchangeError>,
}

impl Chains {
    /// `issuer`: the authorization server the operator named, if any.
    pub fn new(issuer: Option<String>) -> Self {
        let pinned = OnceLock::new();
        if let Some(issuer) = issuer {
            let _ = pinned.set(issuer);
        }
        Self {
            pinned,
            found: moka::sync::Cache::builder()
                .max_capacity(MAX_CHAINS)
                .time_to_live(CHAIN_TTL)
                .build(),
            failures: moka::sync::Cache::builder()
                .max_capacity(MAX_CHAINS)
                .time_to_live(FAILURE_TTL)
                .build(),
        }
    }

    /// The authorization server of `resource`: the service's (pinned, or the one the
    /// call's `audience` names when none is yet), which the resource must list, or the
    /// first listed, which is then pinned. `hint` is a metadata URL from a 401, read first.
    /// The URLs the MCP server names pass `guard`.
    pub async fn server(
        &self,
        http: &Client,
        guard: &Guard,
        resource: &str,
        audience: Option<&str>,
        hint: Option<&str>,
    ) -> Result<AuthorizationServer, ExchangeError> {
        let pinned = self.pinned.get().map(String::as_str);
        if let (Some(pinned), Some(asked)) = (pinned, audience) {
            if asked != pinned {
                return Err(other_server(pinned, asked));
            }
        }
        let expected = pinned.or(audience);
        let key = chain_key(resource, expected, hint);
        let cell = self.found.get_with(key.clone(), Arc::default);
        let server = cell
            .get_or_try_init(|| async {
                if let Some(error) = self.failures.get(&key) {
                    return Err(error);
                }
                let found = metadata::discover(http, guard, resource, expected, hint).await;
                found.inspect_err(|error| self.failures.insert(key.clone(), error.clone()))
            })
            .await?;
        let pinned = self.pinned.get_or_init(|| server.issuer.clone());
        if *pinned != server.issuer {
            return Err(other_server(pinned, &server.issuer));
        }
        if expected.is_none() {
            // Later calls ask for the pinned server: they find this chain under its name.
            let known = || Arc::new(OnceCell::new_with(Some(server.clone())));
            self.found
                .get_with(chain_key(resource, Some(pinned), hint), known);
        }
        Ok(server.clone())
    }
}

/// A chain's key: the resource, the authorization server asked for and the metadata URL
/// given, if any.
fn chain_key(resource: &str, expected: Option<&str>, hint: Option<&str>) -> String {
    let [expected, hint] = [expected, hint].map(Option::unwrap_or_default);
    format!("{resource}\u{1f}{expected}\u{1f}{hint}")
}

fn other_server(pinned: &str, other: &str) -> ExchangeError {
    ExchangeError::Grant(GrantProblem::IdJagOtherServer {
        pinned: pinned.to_owned(),
        other: other.to_owned(),
    })
}
