//! `NativeScheduledGrant`, the native half of `ScheduledOboGrant`: a service's scheduled
//! grants sealed under one key ring. The wrapper keeps the store; this side turns a
//! sealed record and a request into a token, the record to store next, or LibreChat's
//! verdict on the failure, carried by value.

use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi_derive::napi;

use super::outcome::NativeExchangeError;
use super::service::NativeOboService;
use super::shared::derive_shared_cache_key;
use super::thrown;
use crate::broker::{Granted, OboService};
use crate::cache::shared::Keyring;
use crate::config::ring_keys;
use crate::ground::error::{ScheduledFailure, ScheduledReason, Stage};

const KEYS_OPTION: &str = "encryptionKeys";

#[napi]
impl NativeOboService {
    /// A scheduled-grant handle that seals with `encryptionKeys` (the shared tier's key
    /// format: the first seals, all open), or else with the key derived from `credsKey`.
    #[napi]
    pub fn scheduled_grant(
        &self,
        env: &Env,
        encryption_keys: Vec<String>,
        creds_key: Option<String>,
    ) -> Result<NativeScheduledGrant> {
        let entries = match creds_key {
            Some(creds) if encryption_keys.is_empty() => {
                vec![derive_shared_cache_key(env, creds)?]
            }
            _ => encryption_keys,
        };
        let keys = ring_keys(KEYS_OPTION, &entries)
            .map_err(|e| thrown::invalid_arg(env, KEYS_OPTION, e.to_string()))?;
        Ok(NativeScheduledGrant {
            service: self.core().clone(),
            ring: Arc::new(Keyring::new(&keys)),
        })
    }
}

/// The native half of `ScheduledOboGrant`.
#[napi]
pub struct NativeScheduledGrant {
    service: OboService,
    ring: Arc<Keyring>,
}

#[napi]
impl NativeScheduledGrant {
    /// Enrols the grant stored under `name`: the offline On-Behalf-Of exchange of
    /// `assertion` for `scopes`. Empty arguments throw (at once, not in the promise).
    #[napi(ts_return_type = "Promise<NativeScheduledOutcome>")]
    pub fn enroll<'env>(
        &self,
        env: &'env Env,
        name: String,
        assertion: String,
        scopes: String,
    ) -> Result<PromiseRaw<'env, NativeScheduledOutcome>> {
        check(env, &name, &scopes)?;
        if assertion.is_empty() {
            return Err(thrown::invalid_arg(
                env,
                "assertion",
                "assertion must be the user's access token, got an empty string",
            ));
        }
        let (service, ring) = (self.service.clone(), Arc::clone(&self.ring));
        env.spawn_future(async move {
            let outcome = service
                .scheduled_enroll(&ring, &name, &assertion, &scopes)
                .await;
            Ok(NativeScheduledOutcome::new(outcome, Stage::Enroll))
        })
    }

    /// The downstream token of the grant `stored` under `name` (its sealed record), renewed
    /// when it is nearly spent or `force` says so. Empty arguments throw (at once).
    #[napi(ts_return_type = "Promise<NativeScheduledOutcome>")]
    pub fn token<'env>(
        &self,
        env: &'env Env,
        name: String,
        stored: String,
        scopes: String,
        force: bool,
    ) -> Result<PromiseRaw<'env, NativeScheduledOutcome>> {
        check(env, &name, &scopes)?;
        let (service, ring) = (self.service.clone(), Arc::clone(&self.ring));
        env.spawn_future(async move {
            let outcome = service
                .scheduled_token(&ring, &name, &stored, &scopes, force)
                .await;
            Ok(NativeScheduledOutcome::new(outcome, Stage::Renew))
        })
    }
}

fn check(env: &Env, name: &str, scopes: &str) -> Result<()> {
    if name.is_empty() {
        return Err(thrown::invalid_arg(
            env,
            "name",
            "the grant's name must not be empty",
        ));
    }
    if scopes.trim().is_empty() {
        return Err(thrown::invalid_arg(
            env,
            "scopes",
            "scopes must name at least one scope, got an empty string",
        ));
    }
    Ok(())
}

/// LibreChat's `OboTokenResolutionError` reason of a failure.
#[napi(string_enum = "snake_case")]
pub enum NativeScheduledReason {
    MissingUpstreamProvider,
    ExchangeFailed,
    SessionRefreshFailed,
}

impl From<ScheduledReason> for NativeScheduledReason {
    fn from(reason: ScheduledReason) -> Self {
        match reason {
            ScheduledReason::MissingUpstreamProvider => Self::MissingUpstreamProvider,
            ScheduledReason::ExchangeFailed => Self::ExchangeFailed,
            ScheduledReason::SessionRefreshFailed => Self::SessionRefreshFailed,
        }
    }
}

/// A failure and LibreChat's verdict on it.
#[napi(object, object_from_js = false)]
pub struct NativeScheduledFailure {
    pub reason: NativeScheduledReason,
    /// LibreChat's user message.
    pub message: String,
    pub retryable: bool,
    /// The stored grant is spent: the wrapper deletes it.
    pub drop_grant: bool,
    /// What went wrong (never a token).
    pub detail: String,
    /// The failed request's error, when there was one.
    pub error: Option<NativeExchangeError>,
}

/// A token (with the record to store, when it changed) or a failure.
#[napi(object, object_from_js = false)]
pub struct NativeScheduledOutcome {
    #[napi(js_name = "access_token")]
    pub access_token: Option<String>,
    /// Epoch ms.
    #[napi(js_name = "expires_at")]
    pub expires_at: Option<f64>,
    /// The sealed record to store, and how long to keep it (ms).
    pub record: Option<String>,
    pub record_ttl_ms: Option<f64>,
    pub failure: Option<NativeScheduledFailure>,
}

impl NativeScheduledOutcome {
    fn new(outcome: std::result::Result<Granted, ScheduledFailure>, stage: Stage) -> Self {
        match outcome {
            Ok(granted) => {
                let (record, ttl) = granted.store.unzip();
                Self {
                    access_token: Some(granted.access_token),
                    expires_at: Some(granted.expires_at_ms as f64),
                    record,
                    record_ttl_ms: ttl.map(|ms| ms as f64),
                    failure: None,
                }
            }
            Err(failure) => {
                let verdict = failure.verdict(stage);
                Self {
                    access_token: None,
                    expires_at: None,
                    record: None,
                    record_ttl_ms: None,
                    failure: Some(NativeScheduledFailure {
                        reason: verdict.reason.into(),
                        message: verdict.message.to_owned(),
                        retryable: verdict.retryable,
                        drop_grant: verdict.drop_grant,
                        detail: failure.to_string(),
                        error: failure.exchange_error().map(NativeExchangeError::from),
                    }),
                }
            }
        }
    }
}
