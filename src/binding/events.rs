//! `NativeEvent`: the broker's events (`broker::Event`) as the wrapper receives them,
//! through a weak threadsafe function (never keeps Node alive). The wrapper publishes
//! them on `node:diagnostics_channel` as `librechat-obo:<channel>`, and only builds
//! what it publishes when the channel has subscribers. Events are rare next to hits:
//! exchanges, refreshes and evictions only.

use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;

use crate::broker::{Event, EventSink, Outcome};
use crate::cache::local::EvictCause;
use crate::ground::error::FailureReason;

/// One event; see `broker::Event`. Absent fields are undefined.
#[napi(object, object_from_js = false)]
pub struct NativeEvent {
    pub identity: String,
    pub key: String,
    pub scopes: String,
    pub refresh: bool,
    /// `jwt_bearer` or `token_exchange`.
    pub grant: Option<String>,
    /// `success`, `failure` or `skipped`.
    pub outcome: Option<String>,
    pub duration_ms: Option<f64>,
    /// LibreChat's `oboFailureReason`.
    pub reason: Option<String>,
    pub error: Option<String>,
    pub error_codes: Option<Vec<i64>>,
    pub status: Option<u32>,
    /// `expired`, `size` or `explicit`.
    pub cause: Option<String>,
}

/// The wrapper's publisher, called as `(channel, event)`.
pub type NativeEventFn = ThreadsafeFunction<
    FnArgs<(String, NativeEvent)>,
    (),
    FnArgs<(String, NativeEvent)>,
    Status,
    false,
    true,
>;

impl From<Event> for NativeEvent {
    fn from(e: Event) -> Self {
        Self {
            identity: e.identity,
            key: e.key,
            scopes: e.scopes,
            refresh: e.refresh,
            grant: e.grant.map(|g| g.option_name().to_owned()),
            outcome: e.outcome.map(|o| {
                match o {
                    Outcome::Success => "success",
                    Outcome::Failure => "failure",
                    Outcome::Skipped => "skipped",
                }
                .to_owned()
            }),
            duration_ms: e.duration_ms,
            reason: e.reason.map(|r| {
                match r {
                    FailureReason::ExchangeFailed => "exchange_failed",
                    FailureReason::EmptyExchangeResponse => "empty_exchange_response",
                }
                .to_owned()
            }),
            error: e.error,
            error_codes: e.error_codes,
            status: e.status.map(u32::from),
            cause: e.cause.map(|c| {
                match c {
                    EvictCause::Expired => "expired",
                    EvictCause::Size => "size",
                    EvictCause::Explicit => "explicit",
                }
                .to_owned()
            }),
        }
    }
}

/// The broker's sink, calling `publish` without blocking.
pub fn sink(publish: NativeEventFn) -> EventSink {
    let publish = Arc::new(publish);
    Arc::new(move |event: Event| {
        let channel = event.channel.name().to_owned();
        publish.call(
            (channel, NativeEvent::from(event)).into(),
            ThreadsafeFunctionCallMode::NonBlocking,
        );
    })
}
