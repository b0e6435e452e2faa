//! The way back to JS of an exchange's outcome: the service's one `settle(callId, settled)`
//! function (`NativeSettleFn`), and one `Settlement` per call that settles it exactly once.
//!
//! The wrapper keeps each call's promise until its settle arrives (`lib/calls.js`), so a
//! settle that never came would leave a caller waiting for good. Hence:
//! - a `Settlement` dropped unsettled (its task cancelled, or unwound) settles as it goes,
//!   with `ERR_OBO_SETTLE`;
//! - a settle the threadsafe function refuses (any status but `Ok`: napi drops the value)
//!   is sent again as that small rejection;
//! - the function keeps Node alive while the service has calls pending, and only then: the
//!   first pending call refs it, the delivery of the last one unrefs it, both on the JS
//!   thread (no timer anywhere).
//!
//! What is left is a function that refuses twice, which happens when it is closing: Node is
//! tearing the environment down, and no promise of it can be awaited any more.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use napi::threadsafe_function::ThreadsafeFunctionCallMode;
use napi::{Env, Result, Status};

use crate::ground::error::UNSETTLED;

use super::outcome::{NativeExchangeError, NativeSettleFn, NativeSettled};

/// Where settlements go: the service's `Channel`, or in the tests one that refuses on cue.
pub trait Outlet: Send + Sync + 'static {
    /// Queues `settled` for call `callId`; the threadsafe function's status.
    fn send(self: &Arc<Self>, call_id: f64, settled: NativeSettled) -> Status;
}

/// The service's settle function and its count of pending calls, which decides whether the
/// function keeps Node alive.
pub struct Channel {
    /// Behind a lock only because napi's ref/unref take it mutably; the lock is held for a
    /// queueing, never across JS.
    settle: Mutex<NativeSettleFn>,
    pending: AtomicUsize,
}

impl Channel {
    pub fn new(settle: NativeSettleFn) -> Arc<Self> {
        Arc::new(Self {
            settle: Mutex::new(settle),
            pending: AtomicUsize::new(0),
        })
    }

    /// A call starts (on the JS thread): the first pending call makes the function keep
    /// Node alive. Fails only when napi refuses the ref, and then nothing is pending.
    pub fn open(self: &Arc<Self>, env: &Env, call_id: f64) -> Result<Settlement> {
        if self.pending.load(Ordering::Acquire) == 0 {
            // napi-rs deprecates ref/unref in favour of choosing Weak at creation, but a
            // function that holds Node only while calls are pending needs exactly these.
            #[allow(deprecated)]
            self.lock().refer(env)?;
        }
        self.pending.fetch_add(1, Ordering::AcqRel);
        Ok(Settlement {
            outlet: Arc::clone(self),
            call_id,
            settled: false,
        })
    }

    /// A call's settle was delivered (on the JS thread): the last one lets Node exit.
    fn release(&self, env: &Env) {
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            // An unref refused means the function was aborted: it holds nothing any more.
            #[allow(deprecated)]
            let _ = self.lock().unref(env);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, NativeSettleFn> {
        self.settle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Outlet for Channel {
    fn send(self: &Arc<Self>, call_id: f64, settled: NativeSettled) -> Status {
        let channel = Arc::clone(self);
        self.lock().call_with_return_value(
            (call_id, settled).into(),
            ThreadsafeFunctionCallMode::NonBlocking,
            // Runs once the wrapper's function has run; a throw of it arrives here as an
            // `Err` (instead of napi's fatal exception) and the call is settled all the same.
            move |_returned, env| {
                channel.release(&env);
                Ok(())
            },
        )
    }
}

/// One call's way back: settles it with its outcome, or, dropped unsettled, with
/// `ERR_OBO_SETTLE`.
pub struct Settlement<O: Outlet = Channel> {
    outlet: Arc<O>,
    call_id: f64,
    settled: bool,
}

impl<O: Outlet> Settlement<O> {
    pub fn settle(mut self, settled: NativeSettled) {
        self.settled = true;
        deliver(&self.outlet, self.call_id, settled);
    }
}

impl<O: Outlet> Drop for Settlement<O> {
    fn drop(&mut self) {
        if !self.settled {
            let lost = unsettled("the exchange ended without an outcome".to_owned());
            deliver(&self.outlet, self.call_id, lost);
        }
    }
}

/// Sends `settled`; if the function refuses it (and with it the value), sends the call's
/// rejection instead, naming the status. A second refusal is the function closing.
fn deliver<O: Outlet>(outlet: &Arc<O>, call_id: f64, settled: NativeSettled) {
    let status = outlet.send(call_id, settled);
    if status != Status::Ok {
        let refused = unsettled(format!(
            "the exchange's outcome could not be delivered ({})",
            status.as_ref()
        ));
        // Refused again: the function is closing with its environment (see the module doc).
        let _ = outlet.send(call_id, refused);
    }
}

/// The rejection of a call whose outcome is unknown here: retryable, with `UNSETTLED`.
fn unsettled(what: String) -> NativeSettled {
    NativeSettled {
        token: None,
        token_id: None,
        error: Some(NativeExchangeError::local(
            UNSETTLED,
            format!("{what}; the exchange may have completed: call again"),
            true,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An outlet that refuses its first `refusals` sends, as a closing function does (the
    /// value is dropped), and keeps what it accepts.
    #[derive(Default)]
    struct Refusing {
        refusals: AtomicUsize,
        sent: Mutex<Vec<(f64, NativeSettled)>>,
    }

    impl Outlet for Refusing {
        fn send(self: &Arc<Self>, call_id: f64, settled: NativeSettled) -> Status {
            let refuse = self
                .refusals
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                .is_ok();
            if refuse {
                return Status::Closing;
            }
            self.sent.lock().unwrap().push((call_id, settled));
            Status::Ok
        }
    }

    fn outlet(refusals: usize) -> Arc<Refusing> {
        Arc::new(Refusing {
            refusals: AtomicUsize::new(refusals),
            ..Refusing::default()
        })
    }

    fn settlement(outlet: &Arc<Refusing>, call_id: f64) -> Settlement<Refusing> {
        Settlement {
            outlet: Arc::clone(outlet),
            call_id,
            settled: false,
        }
    }

    fn token(id: f64) -> NativeSettled {
        NativeSettled {
            token: None,
            token_id: Some(id),
            error: None,
        }
    }

    /// The code and message of what call `call_id` was settled with, once.
    fn only_error(outlet: &Refusing, call_id: f64) -> (String, String, bool) {
        let sent = outlet.sent.lock().unwrap();
        assert_eq!(sent.len(), 1, "settled exactly once");
        assert_eq!(sent[0].0, call_id);
        let error = sent[0].1.error.as_ref().expect("settled as a rejection");
        assert!(sent[0].1.token_id.is_none());
        let code = error.code.clone().unwrap_or_default();
        (code, error.message.clone(), error.retryable)
    }

    #[test]
    fn a_settled_call_is_delivered_once_with_its_outcome() {
        let outlet = outlet(0);
        settlement(&outlet, 7.0).settle(token(42.0));
        let sent = outlet.sent.lock().unwrap();
        assert_eq!(sent.len(), 1, "the drop after settle sends nothing more");
        assert_eq!(sent[0].0, 7.0);
        assert_eq!(sent[0].1.token_id, Some(42.0));
        assert!(sent[0].1.error.is_none());
    }

    #[test]
    fn a_settlement_dropped_unsettled_rejects_its_call() {
        let outlet = outlet(0);
        drop(settlement(&outlet, 3.0));
        let (code, message, retryable) = only_error(&outlet, 3.0);
        assert_eq!(code, UNSETTLED);
        assert!(message.contains("ended without an outcome"), "{message}");
        assert!(retryable);
    }

    #[test]
    fn a_task_cancelled_before_it_settles_rejects_its_call() {
        let outlet = outlet(0);
        let settlement = settlement(&outlet, 5.0);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let task = runtime.spawn(async move {
            std::future::pending::<()>().await;
            settlement.settle(token(1.0));
        });
        task.abort();
        let _ = runtime.block_on(task);
        assert_eq!(only_error(&outlet, 5.0).0, UNSETTLED);
    }

    #[test]
    fn a_refused_settle_is_sent_again_as_a_rejection_naming_the_status() {
        let outlet = outlet(1);
        settlement(&outlet, 9.0).settle(token(42.0));
        let (code, message, retryable) = only_error(&outlet, 9.0);
        assert_eq!(code, UNSETTLED);
        assert!(
            message.contains("could not be delivered (Closing)"),
            "{message}"
        );
        assert!(message.contains("call again"), "{message}");
        assert!(retryable);
    }

    #[test]
    fn a_function_that_keeps_refusing_is_closing_and_nothing_is_sent() {
        let outlet = outlet(2);
        settlement(&outlet, 1.0).settle(token(42.0));
        assert!(outlet.sent.lock().unwrap().is_empty());
        assert_eq!(outlet.refusals.load(Ordering::Acquire), 0, "tried twice");
    }
}
