//! The napi edge, and the only place napi appears. Every JS-facing type carries the
//! `Native` prefix and sits beside its `From` conversion to or from the core types;
//! the JavaScript wrapper (`lib/`) type-checks arguments and is the package surface.

pub mod call;
pub mod challenge;
pub mod events;
pub mod identity;
pub mod options;
pub mod outcome;
pub mod plan;
pub mod resolve;
pub mod scheduled;
pub mod service;
pub mod settle;
pub mod shared;
pub mod stats;
pub mod thrown;
