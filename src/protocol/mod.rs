//! The wire: one HTTP client, OpenID discovery, both grant dialects, client
//! authentication, retry, and reading or verifying the user's JWT. Knows nothing of
//! caching or of LibreChat.

pub mod assertion;
pub mod chains;
pub mod challenge;
pub mod client_auth;
pub mod discovery;
pub mod document;
pub mod grant;
pub mod http;
pub mod id_jag;
pub mod issuer;
pub mod metadata;
pub mod offline;
pub mod retry;
pub mod ssrf;
pub mod verify;

#[cfg(test)]
mod cause_tests;
#[cfg(test)]
mod outside_tests;
