//! `NativeEvent`: the broker's events (`broker::Event`) as the wrapper receives them,
//! through a weak threadsafe function (never keeps Node alive). The wrapper publishes
//! them on `node:diagnostics_channel` as `librechat-obo:<channel>`, and only builds
//! what it publishes when the channel has subscribers. Events are rare next to hits:
//! exchanges, refreshes and evictions only.

use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;

use super::outcome::NativeOboFailureReason;
use super::plan::NativeGrant;
use super::stats::NativeBreakerState;
use crate::broker::{Event, EventSink, Outcome};
use crate::cache::local::EvictCause;

/// How an exchange or a refresh ended.
#[napi(string_enum = "lowercase")]
pub enum NativeOutcome {
    Success,
    Failure,
    Skipped,
}

impl From<Outcome> for NativeOutcome {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Success => Self::Success,
            Outcome::Failure => Self::Failure,
            Outcome::Skipped => Self::Skipped,
        }
    }
}

/// Why the local tier dropped an entry.
#[napi(string_enum = "lowercase")]
pub enum NativeEvictCause {
    Expired,
    Size,
    Explicit,
}

impl From<EvictCause> for NativeEvictCause {
    fn from(cause: EvictCause) -> Self {
        match cause {
            EvictCause::Expired => Self::Expired,
            EvictCause::Size => Self::Size,
            EvictCause::Explicit => Self::Explicit,
        }
    }
}

/// One event; see `broker::Event`. Absent fields are undefined.
#[napi(object, object_from_js = false)]
pub struct NativeEvent {
    pub identity: String,
    pub key: String,
    pub scopes: String,
    pub refresh: bool,
    pub grant: Option<NativeGrant>,
    pub outcome: Option<NativeOutcome>,
    pub duration_ms: Option<f64>,
    /// LibreChat's `oboFailureReason`.
    pub reason: Option<NativeOboFailureReason>,
    pub error: Option<String>,
    pub error_codes: Option<Vec<i64>>,
    pub status: Option<u32>,
    pub cause: Option<NativeEvictCause>,
    /// The shared tier's breaker after a change (`shared:breaker`).
    pub breaker: Option<NativeBreakerState>,
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
            grant: e.grant.map(Into::into),
            outcome: e.outcome.map(Into::into),
            duration_ms: e.duration_ms,
            reason: e.reason.map(Into::into),
            error: e.error,
            error_codes: e.error_codes,
            status: e.status.map(u32::from),
            cause: e.cause.map(Into::into),
            breaker: e.breaker.map(Into::into),
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
