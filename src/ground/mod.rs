//! The ground floor: error types, identity keys, expiry arithmetic, redaction, and the
//! bounds on what is read from outside. Nothing here imports anything of the crate
//! outside `ground`.

pub mod bounds;
pub mod clip;
pub mod error;
pub mod expiry;
pub mod identity;
pub mod redact;
