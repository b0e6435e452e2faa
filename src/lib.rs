//! librechat-obo: LibreChat's OAuth 2.0 On-Behalf-Of token broker as a Node addon.
//!
//! The modules form layers that import only downwards (DESIGN.md), top to bottom:
//! the napi bindings; the broker; the cache, LibreChat's resolve and scheduled-consent
//! rules and the typed configuration; the protocol (the wire); the ground (errors,
//! identity, expiry, redaction).

#![cfg_attr(feature = "fuzzing", allow(dead_code, unused_imports))]

#[cfg(not(feature = "fuzzing"))]
pub mod binding;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;

mod broker;

mod cache;
mod config;
mod consent;
mod resolve;

mod protocol;

mod ground;

#[cfg(test)]
mod test_server;
