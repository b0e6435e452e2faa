//! The cause of an error, shared: a flight hands one failure to every caller that
//! joined it, so `ExchangeError` is `Clone`, and a cause behind an `Arc` lets each clone
//! keep the chain (`source()`) instead of flattening it into a string.

use std::sync::Arc;

/// A lower-level failure (a reqwest error, without its URL) kept as the `source` of an
/// error that clones share.
#[derive(Clone)]
pub struct Cause(Arc<dyn std::error::Error + Send + Sync + 'static>);

impl Cause {
    pub fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self(Arc::new(error))
    }
}

impl std::fmt::Debug for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.0, f)
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for Cause {
    /// The wrapped error's own cause: `Cause` is a handle, not a link of the chain.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// One link of an error's cause chain as it crosses to JS: its message, and its code
/// when it is one of this package's errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CauseLink {
    pub message: String,
    pub code: Option<&'static str>,
}

impl super::ExchangeError {
    /// The causes below this error, outermost first, at most `limit`: an ID-JAG step's
    /// own failure (worded for the step's party, as the message quotes it), then what
    /// failed below HTTP. Their text is the same text the message holds, so it holds no
    /// token or secret either.
    pub fn causes(&self, limit: usize) -> Vec<CauseLink> {
        let party = self
            .id_jag_step()
            .map_or(super::IDENTITY_PROVIDER, |step| step.party());
        std::iter::successors(std::error::Error::source(self), |cause| cause.source())
            .take(limit)
            .map(|cause| match exchange_error(cause) {
                Some(error) => CauseLink {
                    message: error.message_from(party),
                    code: error.code(),
                },
                None => CauseLink {
                    message: cause.to_string(),
                    code: None,
                },
            })
            .collect()
    }
}

/// `cause` as this package's error: thiserror hands out a boxed source as the box.
fn exchange_error<'a>(
    cause: &'a (dyn std::error::Error + 'static),
) -> Option<&'a super::ExchangeError> {
    cause.downcast_ref::<super::ExchangeError>().or_else(|| {
        cause
            .downcast_ref::<Box<super::ExchangeError>>()
            .map(|boxed| &**boxed)
    })
}
