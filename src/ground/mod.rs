//! The ground floor: error types, identity keys, expiry arithmetic and redacted
//! `Debug`. Nothing here imports anything else of the crate.

pub mod error;
pub mod expiry;
pub mod identity;
pub mod redact;
