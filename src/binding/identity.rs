//! The identity wire format: a documented fixed layout, one packed string of six fields,
//! crosses the boundary instead of two `#[napi(object)]` sources, because reading an
//! object's properties through napi costs far more per hit than one string (measured
//! when the hot path was typed; see `Hit` in service.rs for the answer's layout).

use napi::bindgen_prelude::*;
use napi_derive::napi;

use super::thrown;
use crate::ground::error::RequestError;
use crate::ground::identity::{self, refuse_separator, AssertionDigest, IdentitySource};

/// The packed fields in order, as the caller names them.
const FIELDS: [&str; 6] = [
    "user.openidId",
    "user.tenantId",
    "user.openidIssuer",
    "identityContext.openidSubject",
    "identityContext.tenantId",
    "identityContext.openidIssuer",
];

/// The packed identity (`identity::unpack` reads it), or the refusal that names its
/// shape. A field that contains U+001F cannot be packed: the wrapper passes it to
/// `checkIdentityField` instead, so the split is unambiguous.
pub fn unpack_identity(
    packed: &str,
) -> std::result::Result<(IdentitySource<'_>, IdentitySource<'_>), RequestError> {
    identity::unpack(packed).ok_or(RequestError::IdentityShape)
}

/// The SHA-256 (64 lowercase hex digits) of an upstream access token, as cache keys
/// hold it. The wrapper keeps it per assertion string, so hits skip the hashing.
#[napi]
pub fn assertion_digest(access_token: String) -> String {
    AssertionDigest::of(&access_token).as_str().to_owned()
}

/// Refuses the identity field at `position` (in packing order) if it contains U+001F,
/// with the message that names it. The wrapper calls it only when its packing meets
/// such a field, so the message lives here.
#[napi]
pub fn check_identity_field(env: &Env, position: u32, value: String) -> Result<()> {
    let name = FIELDS
        .get(position as usize)
        .ok_or_else(|| thrown::invalid_arg(env, "position", "no such identity field"))?;
    refuse_separator(name, &value).map_err(|e| thrown::refused(env, e))
}
