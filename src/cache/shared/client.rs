//! The Redis connections of the shared tier, and the guard every command runs under.
//!
//! Two connections (RESP3, reconnecting; see `connection.rs` for one server or a
//! cluster): one for commands, one subscribed to the tier's channel, whose messages a
//! task hands to the tier. Nothing touches the network or needs a runtime until the
//! first command: the connections are made inside the first async call (napi's tokio
//! runtime, or a test's).
//!
//! Every command, and making the command connection, runs under `op_timeout` and the
//! breaker. A timeout or an error is counted and reported as `None`, never as an error
//! to the caller: with Redis down, a call costs at most `op_timeout` while the breaker
//! is closed, and nothing at all once it is open.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once, Weak};
use std::time::Duration;

use redis::{PushKind, RedisResult, Value};
use tokio::sync::OnceCell;

use super::breaker::{Breaker, BreakerState, Change};
use super::connection::{Connection, Subscriber, Target};
use crate::config::SharedCacheConfig;

/// What the tier hears on its channel (the payload of each message).
pub type OnMessage = Arc<dyn Fn(&[u8]) + Send + Sync>;
/// What the client reports: the breaker opened (with why) or closed again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Opened(String),
    Closed,
}

impl Notice {
    /// The log line of this notice.
    pub fn message(&self) -> String {
        match self {
            Self::Opened(why) => format!(
                "Shared cache unavailable ({why}); exchanging without it for now, probing again later"
            ),
            Self::Closed => "Shared cache available again".into(),
        }
    }
}

/// Where notices go.
pub type OnNotice = Arc<dyn Fn(Notice) + Send + Sync>;

/// How often the subscriber checks its subscription (and re-subscribes after an outage).
const SUBSCRIBER_TICK: Duration = Duration::from_millis(500);

#[derive(Default)]
pub struct Failures {
    pub errors: AtomicU64,
    pub timeouts: AtomicU64,
}

pub struct Client {
    target: Arc<Target>,
    channel: String,
    pub op_timeout: Duration,
    breaker: Breaker,
    pub failures: Failures,
    commands: OnceCell<Connection>,
    /// The subscriber task is started once, inside the first async call.
    subscribing: Once,
    on_message: OnMessage,
    on_notice: OnNotice,
    /// Dropped with the client, which ends the subscriber task.
    alive: Arc<()>,
}

impl Client {
    /// Parses the URLs (and the CA); no I/O, no runtime needed.
    pub fn new(
        config: &SharedCacheConfig,
        channel: String,
        on_message: OnMessage,
        on_notice: OnNotice,
    ) -> RedisResult<Self> {
        Ok(Self {
            target: Arc::new(Target::new(config)?),
            channel,
            op_timeout: config.op_timeout,
            breaker: Breaker::new(config.breaker_threshold, config.breaker_cooldown),
            failures: Failures::default(),
            commands: OnceCell::new(),
            subscribing: Once::new(),
            on_message,
            on_notice,
            alive: Arc::new(()),
        })
    }

    pub fn breaker(&self) -> BreakerState {
        self.breaker.state()
    }

    /// The command connection, made on first use (a failure is not kept: the next call
    /// tries again), with the subscriber task started. Must run inside a tokio runtime.
    async fn connection(&self) -> RedisResult<Connection> {
        self.subscribing.call_once(|| self.subscribe());
        self.commands
            .get_or_try_init(|| self.target.commands())
            .await
            .cloned()
    }

    fn subscribe(&self) {
        let (sender, mut pushes) = tokio::sync::mpsc::unbounded_channel::<redis::PushInfo>();
        let on_message = Arc::clone(&self.on_message);
        tokio::spawn(async move {
            while let Some(push) = pushes.recv().await {
                if push.kind == PushKind::Message {
                    if let Some(Value::BulkString(payload)) = push.data.get(1) {
                        on_message(payload);
                    }
                }
            }
        });
        let target = Arc::clone(&self.target);
        let budget = self.op_timeout.max(Duration::from_millis(250));
        let channel = self.channel.clone();
        let alive = Arc::downgrade(&self.alive);
        tokio::spawn(async move {
            let connect = || target.subscriber(sender.clone());
            keep_subscribed(connect, channel, budget, alive).await;
        });
    }

    /// Runs `op` on the command connection under the breaker and `op_timeout`;
    /// `None` when skipped, timed out or failed (each counted).
    pub async fn run<T, F, Fut>(&self, op: F) -> Option<T>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        self.run_within(self.op_timeout, op).await
    }

    /// `run` with its own time budget (for the rare long operation, `clear`).
    pub async fn run_within<T, F, Fut>(&self, budget: Duration, op: F) -> Option<T>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        if !self.breaker.allow() {
            return None;
        }
        let run = async { op(self.connection().await?).await };
        let outcome = tokio::time::timeout(budget, run).await;
        match outcome {
            Ok(Ok(value)) => {
                if let Some(change) = self.breaker.success() {
                    self.report(change, "");
                }
                Some(value)
            }
            Ok(Err(error)) => {
                self.failures.errors.fetch_add(1, Ordering::Relaxed);
                self.failed(&error.to_string());
                None
            }
            Err(_) => {
                self.failures.timeouts.fetch_add(1, Ordering::Relaxed);
                self.failed(&format!("no answer within {} ms", budget.as_millis()));
                None
            }
        }
    }

    fn failed(&self, why: &str) {
        if let Some(change) = self.breaker.failure() {
            self.report(change, why);
        }
    }

    fn report(&self, change: Change, why: &str) {
        (self.on_notice)(match change {
            Change::Opened => Notice::Opened(why.to_owned()),
            Change::Closed => Notice::Closed,
        });
    }
}

/// Keeps a subscriber subscribed: connects (`connect`) and SUBSCRIBEs until both
/// succeed, then a PING each tick, which also makes the connection reconnect (and
/// re-subscribe) after an outage. Ends when the client is dropped.
async fn keep_subscribed<F, Fut>(connect: F, channel: String, budget: Duration, alive: Weak<()>)
where
    F: Fn() -> Fut,
    Fut: Future<Output = RedisResult<Subscriber>>,
{
    let mut subscriber: Option<Subscriber> = None;
    let mut subscribed = false;
    while alive.strong_count() > 0 {
        if subscriber.is_none() {
            subscriber = tokio::time::timeout(budget, connect())
                .await
                .ok()
                .and_then(Result::ok);
        }
        if let Some(connection) = subscriber.as_mut() {
            let answered = if subscribed {
                tokio::time::timeout(budget, connection.ping()).await
            } else {
                tokio::time::timeout(budget, connection.subscribe(&channel)).await
            };
            subscribed = matches!(answered, Ok(Ok(())));
        }
        tokio::time::sleep(SUBSCRIBER_TICK).await;
    }
}
