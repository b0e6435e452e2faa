//! `NativeOboService`, the native half of `OboTokenService`: it unpacks the
//! wrapper's arguments, calls the broker, and converts what comes back.

use futures_util::FutureExt;
use napi::bindgen_prelude::*;
use napi::JsString;
use napi_derive::napi;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use super::call::{check_target, NativeCallOptions};
use super::events;
use super::identity::unpack_identity;
use super::options::{into_parts, Hooks, NativeServiceOptions};
use super::outcome::{NativeExchangeError, NativeSettled};
use super::plan::{NativeChainOutcome, NativePlanOutcome};
use super::settle::Channel;
use super::stats::NativeStats;
use super::thrown;
use crate::broker::{Call, OboService, Request};
use crate::config::Config;
use crate::ground::error::{BuildError, ExchangeError, RequestError, TransportKind};
use crate::ground::identity::Target;

/// The native half of `OboTokenService`.
#[napi]
pub struct NativeOboService {
    service: OboService,
    settle: Arc<Channel>,
}

#[napi]
impl NativeOboService {
    #[napi(constructor)]
    pub fn new(
        env: &Env,
        #[napi(ts_arg_type = "Record<string, unknown>")] options: NativeServiceOptions,
    ) -> Result<Self> {
        let (options, hooks) = into_parts(env, options)?;
        let Hooks {
            logger,
            events: publish,
            settle,
        } = hooks;
        let refused = |error: BuildError| thrown::invalid_option(env, &error);
        let config = Config::from_options(options).map_err(|e| refused(e.into()))?;
        let service = OboService::new(config, logger).map_err(refused)?;
        if let Some(publish) = publish {
            service.observe(events::sink(publish));
        }
        Ok(Self {
            service,
            settle: Channel::new(settle),
        })
    }

    /// The hot path: the cached token for an assertion known by its digest
    /// (`assertionDigest`), as a `Hit` of fixed layout, or `null`; one lookup, one hit
    /// counted. Synchronous, on the JS thread. `knownId` is the id of the token the
    /// wrapper remembers for this call (0 for none): only when the cached token is
    /// another one, or its refresh-ahead is due, does the `Hit` carry its `Strings`, so
    /// a hit usually crosses as three numbers and the wrapper builds the response itself
    /// (a JS literal is far cheaper than napi property sets). Invalid arguments throw.
    /// `identity` is packed (see `unpack_identity`).
    #[napi(
        ts_return_type = "[number, number, number, [string, string | null, boolean] | null] | null"
    )]
    #[allow(clippy::too_many_arguments)]
    pub fn cached<'env>(
        &self,
        env: &'env Env,
        identity: String,
        digest: String,
        scopes: String,
        known_id: f64,
        audience: Option<String>,
        resource: Option<String>,
    ) -> Result<Option<Hit<'env>>> {
        let audience = audience.as_deref();
        let resource = resource.as_deref();
        let refused = |error| thrown::refused(env, error);
        check_target(audience, resource).map_err(refused)?;
        let (user, context) = unpack_identity(&identity).map_err(refused)?;
        let target = Target { audience, resource };
        let Some(hit) = self
            .service
            .cached_by_digest(&user, Some(&context), &digest, &scopes, &target)
            .map_err(refused)?
        else {
            return Ok(None);
        };
        let token = hit.token;
        let strings = if hit.refresh_due || token.id as f64 != known_id {
            let text = js_string(env, &token.access_token)?;
            Some((text, token.issued_token_type.clone(), hit.refresh_due))
        } else {
            None
        };
        Ok(Some((
            token.id as f64,
            token.expires_in as f64,
            token.expires_at as f64,
            strings,
        )))
    }

    /// Starts an exchange that settles through the service's `settle(callId, …)`: from
    /// an exchange in flight for the same key, the cache if it was filled meanwhile, or a
    /// new exchange (always a new one when `fromCache` is false or `claims` is given).
    /// Invalid arguments throw, and then nothing settles; otherwise the call settles
    /// exactly once (see `settle`).
    #[napi]
    #[allow(clippy::too_many_arguments)] // `env` is napi's, not the caller's
    pub fn exchange(
        &self,
        env: &Env,
        call_id: f64,
        identity: String,
        access_token: String,
        scopes: String,
        from_cache: bool,
        options: Option<NativeCallOptions>,
    ) -> Result<()> {
        let options = options.unwrap_or_default();
        let request = self
            .request(&identity, &access_token, &scopes, &options, from_cache)
            .map_err(|error| thrown::refused(env, error))?;
        let exchange = AssertUnwindSafe(self.service.exchange(request));
        let settlement = self.settle.open(env, call_id)?;
        napi::bindgen_prelude::spawn(async move {
            let settled = match exchange.catch_unwind().await {
                Ok(outcome) => outcome.into(),
                Err(_) => NativeSettled::from(Err(ExchangeError::Transport {
                    kind: TransportKind::Other,
                    detail: "internal error in the OBO exchange".into(),
                    cause: None,
                })),
            };
            settlement.settle(settled);
        });
        Ok(())
    }

    /// Starts the refresh-ahead that `cached` said was due, with the caller's assertion,
    /// in the background; returns whether one started. Never throws for the refresh's
    /// own failure (that is counted, logged, and published on `refresh:end`); invalid
    /// arguments throw.
    #[napi]
    pub fn refresh(
        &self,
        env: &Env,
        identity: String,
        access_token: String,
        scopes: String,
        options: Option<NativeCallOptions>,
    ) -> Result<bool> {
        let options = NativeCallOptions {
            claims: None,
            ..options.unwrap_or_default()
        };
        let request = self
            .request(&identity, &access_token, &scopes, &options, true)
            .map_err(|error| thrown::refused(env, error))?;
        Ok(match self.service.refresh(request) {
            Some(work) => {
                napi::bindgen_prelude::spawn(work);
                true
            }
            None => false,
        })
    }

    /// The checked request of a call that goes past the hot path: the packed identity
    /// unpacked, the per-call options checked, then the broker's checks.
    fn request(
        &self,
        identity: &str,
        access_token: &str,
        scopes: &str,
        options: &NativeCallOptions,
        from_cache: bool,
    ) -> std::result::Result<Request, RequestError> {
        let (user, context) = unpack_identity(identity)?;
        options.check()?;
        self.service.prepare(Call {
            user,
            context: Some(context),
            access_token,
            scopes,
            target: options.target(),
            claims: options.claims.as_deref(),
            resource_metadata: options.resource_metadata.as_deref(),
            from_cache,
        })
    }

    /// Drops the cached tokens of a user (all scopes, or one scope string); returns
    /// the ids of the tokens dropped here (the wrapper forgets their strings). With a
    /// shared tier, the shared copies are dropped and the other processes told, in the
    /// background (it never fails).
    #[napi]
    pub fn invalidate(
        &self,
        env: &Env,
        identity: String,
        scopes: Option<String>,
    ) -> Result<Vec<f64>> {
        let refused = |error| thrown::refused(env, error);
        let (user, context) = unpack_identity(&identity).map_err(refused)?;
        let (dropped, invalidation) = self
            .service
            .invalidate(&user, Some(&context), scopes.as_deref())
            .map_err(refused)?;
        if let Some(shared) = self.service.invalidate_shared(invalidation) {
            napi::bindgen_prelude::spawn(shared);
        }
        Ok(dropped.into_iter().map(|id| id as f64).collect())
    }

    /// The token endpoint and grant the next exchange would use (discovery included),
    /// or the discovery failure by value. `librechat-obo doctor` reports it.
    #[napi]
    pub async fn plan(&self) -> NativePlanOutcome {
        self.service.plan().await.into()
    }

    /// With `grantType: 'id_jag'`, the chain from `resource` to its authorization server,
    /// as an exchange would check it (the doctor's question), or the failure by value.
    #[napi]
    pub async fn id_jag_chain(
        &self,
        resource: String,
        audience: Option<String>,
    ) -> NativeChainOutcome {
        match self
            .service
            .id_jag_chain(&resource, audience.as_deref())
            .await
        {
            Some(found) => found.into(),
            None => NativeChainOutcome {
                chain: None,
                error: Some(NativeExchangeError::invalid_option(
                    "grantType",
                    "the service's grantType is not 'id_jag'".to_owned(),
                )),
            },
        }
    }

    /// Empties the cache; with a shared tier, the shared one too and every other
    /// process's, in the background.
    #[napi]
    pub fn clear(&self) {
        self.service.clear();
        if let Some(shared) = self.service.clear_shared() {
            napi::bindgen_prelude::spawn(shared);
        }
    }

    /// Whether any of the service's diagnostics channels has a subscriber (the wrapper
    /// tells on a change, before a call that leaves the JS thread); events are built and
    /// sent only then.
    #[napi]
    pub fn watch_events(&self, on: bool) {
        self.service.watch_events(on);
    }

    /// Which field of the user's token set `resolveOboToken` sends (see
    /// `OboService::subject_field`).
    #[napi]
    pub fn subject_field(&self) -> &'static str {
        self.service.subject_field()
    }

    #[napi]
    pub fn stats(&self) -> NativeStats {
        self.service.stats().into()
    }
}

impl NativeOboService {
    /// The broker behind this service (for the scheduled-grant handle it makes).
    pub(super) fn core(&self) -> &OboService {
        &self.service
    }
}

/// What `cached` answers for a hit, in a fixed layout that `lib/front.js` reads by
/// position (its `HIT` and `STRINGS` name them): always four elements, `[id, expires_in,
/// expires_at, strings]`, where `strings` is `null` when the token is the one the
/// wrapper named (`knownId`) and its refresh is not due. A tuple, not a
/// `#[napi(object)]`, and the strings nested rather than always present: each napi
/// property or element set costs on every hit, and a six-element layout measured about
/// 1 µs slower per lookup than three numbers on this package's 2-core machine, an
/// object slower still.
type Hit<'env> = (f64, f64, f64, Option<Strings<'env>>);

/// The strings of a hit the wrapper does not hold yet: `[access_token,
/// issued_token_type, refresh_due]`; with `refresh_due` the wrapper calls `refresh`
/// with the assertion.
type Strings<'env> = (JsString<'env>, Option<String>, bool);

/// A JS string of a token. Tokens are ASCII in practice (JWS, or RFC 6750's b64token),
/// and V8 copies a Latin-1 string without the UTF-8 decoding pass.
fn js_string<'env>(env: &'env Env, text: &str) -> Result<JsString<'env>> {
    if text.is_ascii() {
        env.create_string_latin1(text.as_bytes())
    } else {
        env.create_string(text)
    }
}
