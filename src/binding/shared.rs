//! `deriveSharedCacheKey`: the shared tier's key from LibreChat's `CREDS_KEY`, for
//! `fromEnv` when neither `OBO_CACHE_KEYS` nor `OBO_CACHE_KEY` is set.

use napi::bindgen_prelude::*;
use napi_derive::napi;

use super::thrown;
use crate::cache::shared::key_from_creds_key;

/// The 32-byte key (64 hex characters) derived by HKDF-SHA256 from `credsKey`.
/// Throws, with a message naming `CREDS_KEY` and what to set instead, when `credsKey`
/// is LibreChat's published example or not 64 hex characters.
#[napi]
pub fn derive_shared_cache_key(env: &Env, creds_key: String) -> Result<String> {
    key_from_creds_key(&creds_key)
        .map(hex::encode)
        .map_err(|message| thrown::invalid_arg(env, "credsKey", message))
}
