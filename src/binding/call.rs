//! `NativeCallOptions`: the per-call options of an exchange that goes to the IdP.

use napi_derive::napi;

use crate::ground::error::RequestError;
use crate::ground::identity::{refuse_separator, Target};

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
    /// ID-JAG: where the MCP server's 401 said its protected resource metadata is.
    pub resource_metadata: Option<String>,
}

impl NativeCallOptions {
    /// Refuses a value that contains U+001F, naming it as the caller does.
    pub fn check(&self) -> Result<(), RequestError> {
        check_target(self.audience.as_deref(), self.resource.as_deref())?;
        refuse_separator("options.claims", self.claims.as_deref().unwrap_or_default())
    }

    /// The RFC 8693 target, borrowed.
    pub fn target(&self) -> Target<'_> {
        Target {
            audience: self.audience.as_deref(),
            resource: self.resource.as_deref(),
        }
    }
}

/// Refuses an RFC 8693 target value that contains U+001F, naming it as the caller does.
pub fn check_target(audience: Option<&str>, resource: Option<&str>) -> Result<(), RequestError> {
    refuse_separator("options.audience", audience.unwrap_or_default())?;
    refuse_separator("options.resource", resource.unwrap_or_default())
}
