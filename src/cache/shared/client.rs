//! The Redis connections of the shared tier, and the guard every command runs under.
//!
//! Two `ConnectionManager`s (RESP3, reconnecting): one for commands, one subscribed
//! to the tier's channel, whose messages a task hands to the tier. Nothing touches
//! the network or needs a runtime until the first command: the connections are made
//! lazily inside the first async call (napi's tokio runtime, or a test's).
//!
//! Every command runs under `op_timeout` and the breaker. A timeout or an error is
//! counted and reported as `None`, never as an error to the caller: with Redis down,
//! a call costs at most `op_timeout` while the breaker is closed, and nothing at all
//! once it is open.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{IntoConnectionInfo, ProtocolVersion, PushKind, RedisResult, Value};

use super::breaker::{Breaker, BreakerState, Change};
use crate::config::SharedCacheConfig;

/// What the tier hears on its channel (the payload of each message).
pub type OnMessage = Arc<dyn Fn(&[u8]) + Send + Sync>;
/// What the client reports: the tier cannot be used at all, or the breaker opened
/// (with why) or closed again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Unusable(String),
    Opened(String),
    Closed,
}

impl Notice {
    /// The log line of this notice.
    pub fn message(&self) -> String {
        match self {
            Self::Unusable(error) => format!("Shared cache disabled: {error}"),
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

struct Connections {
    commands: ConnectionManager,
}

pub struct Client {
    redis: redis::Client,
    channel: String,
    pub op_timeout: Duration,
    breaker: Breaker,
    pub failures: Failures,
    connections: OnceLock<Option<Connections>>,
    on_message: OnMessage,
    on_notice: OnNotice,
    /// Dropped with the client, which ends the subscriber task.
    alive: Arc<()>,
}

impl Client {
    /// Parses the URL (and the CA); no I/O, no runtime needed.
    pub fn new(
        config: &SharedCacheConfig,
        channel: String,
        on_message: OnMessage,
        on_notice: OnNotice,
    ) -> RedisResult<Self> {
        let info = config.url.as_str().into_connection_info()?;
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let info = info.set_redis_settings(settings);
        let redis = match &config.ca {
            Some(pem) => redis::Client::build_with_tls(
                info,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.clone()),
                },
            )?,
            None => redis::Client::open(info)?,
        };
        Ok(Self {
            redis,
            channel,
            op_timeout: config.op_timeout,
            breaker: Breaker::new(config.breaker_threshold, config.breaker_cooldown),
            failures: Failures::default(),
            connections: OnceLock::new(),
            on_message,
            on_notice,
            alive: Arc::new(()),
        })
    }

    pub fn breaker(&self) -> BreakerState {
        self.breaker.state()
    }

    /// The command connection, made (with the subscriber) on first use. Must run
    /// inside a tokio runtime.
    fn connections(&self) -> Option<&Connections> {
        self.connections
            .get_or_init(|| {
                let made = self.connect();
                if let Err(error) = &made {
                    (self.on_notice)(Notice::Unusable(error.to_string()));
                }
                made.ok()
            })
            .as_ref()
    }

    fn manager_config(&self) -> ConnectionManagerConfig {
        ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(None)
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(400))
    }

    fn connect(&self) -> RedisResult<Connections> {
        let commands =
            ConnectionManager::new_lazy_with_config(self.redis.clone(), self.manager_config())?;
        let (sender, mut pushes) = tokio::sync::mpsc::unbounded_channel();
        let subscriber = ConnectionManager::new_lazy_with_config(
            self.redis.clone(),
            self.manager_config()
                .set_push_sender(sender)
                .set_automatic_resubscription(),
        )?;
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
        tokio::spawn(keep_subscribed(
            subscriber,
            self.channel.clone(),
            self.op_timeout.max(Duration::from_millis(250)),
            Arc::downgrade(&self.alive),
        ));
        Ok(Connections { commands })
    }

    /// Runs `op` on the command connection under the breaker and `op_timeout`;
    /// `None` when skipped, timed out or failed (each counted).
    pub async fn run<T, F, Fut>(&self, op: F) -> Option<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        self.run_within(self.op_timeout, op).await
    }

    /// `run` with its own time budget (for the rare long operation, `clear`).
    pub async fn run_within<T, F, Fut>(&self, budget: Duration, op: F) -> Option<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        if !self.breaker.allow() {
            return None;
        }
        let connection = self.connections()?.commands.clone();
        let outcome = tokio::time::timeout(budget, op(connection)).await;
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

/// Keeps the subscriber subscribed: SUBSCRIBE until it succeeds, then a PING each tick,
/// which also makes the manager reconnect (and re-subscribe) after an outage. Ends
/// when the client is dropped.
async fn keep_subscribed(
    mut subscriber: ConnectionManager,
    channel: String,
    budget: Duration,
    alive: Weak<()>,
) {
    let mut subscribed = false;
    while alive.strong_count() > 0 {
        if subscribed {
            let command = redis::cmd("PING");
            let ping = command.query_async::<Value>(&mut subscriber);
            if !matches!(tokio::time::timeout(budget, ping).await, Ok(Ok(_))) {
                subscribed = false;
            }
        } else {
            let subscribe = subscriber.subscribe(&channel);
            if matches!(tokio::time::timeout(budget, subscribe).await, Ok(Ok(()))) {
                subscribed = true;
            }
        }
        tokio::time::sleep(SUBSCRIBER_TICK).await;
    }
}
