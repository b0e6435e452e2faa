//! Bounded retry of transient failures.
//!
//! Only failures that `ExchangeError::is_retryable` calls transient are tried again,
//! at most `max_retries` times, after `delay` or the IdP's `Retry-After` when that
//! is longer. The wait is capped so that a tool call never hangs on a throttled IdP.

use std::future::Future;
use std::time::Duration;

use crate::ground::error::ExchangeError;

/// The longest we wait between two tries, whatever the IdP asks for.
pub const MAX_WAIT: Duration = Duration::from_secs(10);

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub delay: Duration,
}

impl RetryPolicy {
    /// The wait before the next try after `error`.
    pub fn wait_after(&self, error: &ExchangeError) -> Duration {
        let wanted = error.retry_after().unwrap_or_default().max(self.delay);
        wanted.min(MAX_WAIT)
    }

    /// Runs `attempt` until it succeeds, fails permanently, or the retries are spent.
    /// `on_retry` is told of each failure that will be retried and the wait before it.
    pub async fn run<T, F, Fut>(
        &self,
        mut attempt: F,
        mut on_retry: impl FnMut(&ExchangeError, Duration),
    ) -> Result<T, ExchangeError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ExchangeError>>,
    {
        let mut retries = 0;
        loop {
            match attempt().await {
                Err(error) if error.is_retryable() && retries < self.max_retries => {
                    retries += 1;
                    let wait = self.wait_after(&error);
                    on_retry(&error, wait);
                    tokio::time::sleep(wait).await;
                }
                outcome => return outcome,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ground::error::TransportKind;
    use std::cell::Cell;

    fn throttled(retry_after: Option<u64>) -> ExchangeError {
        ExchangeError::Idp {
            status: 429,
            body: Box::default(),
            retry_after: retry_after.map(Duration::from_secs),
        }
    }

    fn policy(max_retries: u32) -> RetryPolicy {
        RetryPolicy {
            max_retries,
            delay: Duration::from_millis(1),
        }
    }

    #[test]
    fn wait_is_the_longer_of_delay_and_retry_after_capped() {
        let p = RetryPolicy {
            max_retries: 1,
            delay: Duration::from_millis(300),
        };
        assert_eq!(p.wait_after(&throttled(None)), Duration::from_millis(300));
        assert_eq!(p.wait_after(&throttled(Some(2))), Duration::from_secs(2));
        assert_eq!(p.wait_after(&throttled(Some(3600))), MAX_WAIT);
    }

    #[tokio::test]
    async fn transient_failures_are_retried_up_to_the_bound() {
        let calls = Cell::new(0);
        let retried = Cell::new(0);
        let outcome: Result<(), _> = policy(2)
            .run(
                || {
                    calls.set(calls.get() + 1);
                    async { Err(throttled(None)) }
                },
                |_, _| retried.set(retried.get() + 1),
            )
            .await;
        assert!(outcome.is_err());
        assert_eq!((calls.get(), retried.get()), (3, 2));
    }

    #[tokio::test]
    async fn permanent_failures_and_successes_are_not_retried() {
        let calls = Cell::new(0);
        let outcome: Result<(), _> = policy(3)
            .run(
                || {
                    calls.set(calls.get() + 1);
                    async { Err(ExchangeError::EmptyResponse) }
                },
                |_, _| {},
            )
            .await;
        assert!(matches!(outcome, Err(ExchangeError::EmptyResponse)));
        assert_eq!(calls.get(), 1);

        let calls = Cell::new(0);
        let outcome = policy(3)
            .run(
                || {
                    calls.set(calls.get() + 1);
                    let n = calls.get();
                    async move {
                        if n == 1 {
                            Err(ExchangeError::Transport {
                                kind: TransportKind::Reset,
                                detail: String::new(),
                                cause: None,
                            })
                        } else {
                            Ok(n)
                        }
                    }
                },
                |_, _| {},
            )
            .await;
        assert_eq!(outcome.unwrap(), 2);
    }
}
