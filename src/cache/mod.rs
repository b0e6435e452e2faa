//! What is served and when: the local tier (moka, on the caller's thread) and the
//! single-flight table that makes concurrent misses share one exchange, and the
//! refresh-ahead policy with its per-key state.

pub mod flights;
pub mod grant_record;
pub mod local;
pub mod refresh_points;
pub mod shared;
pub mod token;
pub mod traffic;
