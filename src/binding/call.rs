//! `NativeCallOptions`: the per-call options of an exchange that goes to the IdP.

use napi_derive::napi;

use crate::ground::identity::Target;

/// Per-call options of an exchange (wrapper-checked).
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct NativeCallOptions {
    /// A claims challenge the client answers; the call bypasses the cache.
    pub claims: Option<String>,
    /// RFC 8693 `audience`.
    pub audience: Option<String>,
    /// RFC 8693 `resource`.
    pub resource: Option<String>,
}

impl NativeCallOptions {
    /// The RFC 8693 target, borrowed.
    pub fn target(&self) -> Target<'_> {
        Target {
            audience: self.audience.as_deref(),
            resource: self.resource.as_deref(),
        }
    }
}
