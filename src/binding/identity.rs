//! The identity wire format: a documented fixed layout, one packed string of six fields,
//! crosses the boundary instead of two `#[napi(object)]` sources, because reading an
//! object's properties through napi costs far more per hit than one string (measured
//! when the hot path was typed; see `Hit` in service.rs for the answer's layout).

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::ground::error::RequestError;
use crate::ground::identity::{AssertionDigest, IdentitySource, SEPARATOR};

/// The packed fields in order, as the caller names them.
const FIELDS: [&str; 6] = [
    "user.openidId",
    "user.tenantId",
    "user.openidIssuer",
    "identityContext.openidSubject",
    "identityContext.tenantId",
    "identityContext.openidIssuer",
];

/// Identity fields as the wrapper packs them: the user's `openidId`, `tenantId` and
/// `openidIssuer`, then the identity context's `openidSubject`, `tenantId` and
/// `openidIssuer`, joined with U+001F; an empty field is an absent one (LibreChat
/// treats blank values as absent too). A field that contains U+001F cannot be packed:
/// the wrapper passes it to `checkIdentityField` instead, so the split is unambiguous.
pub fn unpack_identity(packed: &str) -> Result<(IdentitySource<'_>, IdentitySource<'_>)> {
    let wrong_shape = || {
        Error::new(
            Status::InvalidArg,
            "identity must have 6 fields separated by U+001F".to_owned(),
        )
    };
    let mut parts = packed.split(SEPARATOR);
    let mut fields = [None; 6];
    for field in &mut fields {
        let part = parts.next().ok_or_else(wrong_shape)?;
        *field = (!part.is_empty()).then_some(part);
    }
    if parts.next().is_some() {
        return Err(wrong_shape());
    }
    let [user_subject, user_tenant, user_issuer, subject, tenant, issuer] = fields;
    let source = |subject, tenant_id, openid_issuer| IdentitySource {
        subject,
        tenant_id,
        openid_issuer,
    };
    Ok((
        source(user_subject, user_tenant, user_issuer),
        source(subject, tenant, issuer),
    ))
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
pub fn check_identity_field(position: u32, value: String) -> Result<()> {
    let name = FIELDS
        .get(position as usize)
        .ok_or_else(|| Error::new(Status::InvalidArg, "no such identity field".to_owned()))?;
    if value.contains(SEPARATOR) {
        return Err(Error::new(
            Status::InvalidArg,
            RequestError::SeparatorInValue(name).to_string(),
        ));
    }
    Ok(())
}
