//! `bearerChallenge`: a resource server's `WWW-Authenticate` header read for its Bearer
//! challenge (`protocol::challenge`), for `createOboFetch`'s step-up and for callers.

use napi_derive::napi;

use crate::protocol::challenge::{bearer_challenge, BearerChallenge};

/// The Bearer challenge's parameters; absent ones are undefined, `scopes` may be empty.
#[napi(object, object_from_js = false)]
pub struct NativeBearerChallenge {
    pub error: Option<String>,
    pub error_description: Option<String>,
    pub scopes: Vec<String>,
    pub resource_metadata: Option<String>,
}

impl From<BearerChallenge> for NativeBearerChallenge {
    fn from(c: BearerChallenge) -> Self {
        Self {
            error: c.error,
            error_description: c.error_description,
            scopes: c.scopes,
            resource_metadata: c.resource_metadata,
        }
    }
}

/// The Bearer challenge of a `WWW-Authenticate` value, or null when it has none or the
/// header does not parse (nothing is guessed).
#[napi(js_name = "bearerChallenge")]
pub fn read_bearer_challenge(header: String) -> Option<NativeBearerChallenge> {
    bearer_challenge(&header).map(Into::into)
}
