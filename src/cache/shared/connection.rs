//! The two shapes of the tier's Redis: one server, through a reconnecting
//! `ConnectionManager`, or a Redis Cluster, through a `ClusterConnection` that routes
//! each command and script to the node of its keys' slot and follows resharding. Both
//! speak RESP3, so the subscriber's messages arrive as pushes either way, and a PUBLISH
//! on any node of a cluster reaches the subscribers on every node.
//!
//! The scripts are cluster-safe because every key of one script shares the entry's
//! user hash tag (`names.rs`); only `clear`'s SCAN needs to know the cluster's nodes.

use std::time::Duration;

use futures_util::future::try_join_all;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{
    Cmd, ConnectionInfo, IntoConnectionInfo, Pipeline, ProtocolVersion, PushInfo, RedisFuture,
    RedisResult, TlsCertificates, Value,
};
use tokio::sync::mpsc::UnboundedSender;

use crate::config::SharedCacheConfig;

/// How long making a connection may take before it counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Where the tier's Redis is; no I/O until a connection is asked for.
pub enum Target {
    Single(redis::Client),
    Cluster(Seeds),
}

/// A cluster's seed nodes and CA: a client is built per connection, since the
/// subscriber's needs its push sender at build time.
pub struct Seeds {
    nodes: Vec<ConnectionInfo>,
    ca: Option<Vec<u8>>,
}

impl Target {
    /// Parses the URLs (and the CA); every connection speaks RESP3.
    pub fn new(config: &SharedCacheConfig) -> RedisResult<Self> {
        let nodes = config
            .nodes
            .iter()
            .map(|url| resp3(url.as_str().into_connection_info()?))
            .collect::<RedisResult<Vec<_>>>()?;
        if config.cluster {
            return Ok(Self::Cluster(Seeds {
                nodes,
                ca: config.ca.clone(),
            }));
        }
        let info = nodes.into_iter().next().ok_or_else(|| {
            redis::RedisError::from((redis::ErrorKind::InvalidClientConfig, "no URL"))
        })?;
        Ok(Self::Single(match &config.ca {
            Some(pem) => redis::Client::build_with_tls(info, certificates(pem))?,
            None => redis::Client::open(info)?,
        }))
    }

    /// The command connection. For one server it is made lazily (it never fails on
    /// I/O); for a cluster it reads the slot map now, and may fail.
    pub async fn commands(&self) -> RedisResult<Connection> {
        match self {
            Self::Single(client) => {
                ConnectionManager::new_lazy_with_config(client.clone(), manager_config())
                    .map(Connection::Single)
            }
            Self::Cluster(seeds) => {
                let client = seeds.client(None)?;
                Ok(Connection::Cluster(client.get_async_connection().await?))
            }
        }
    }

    /// A connection whose pushes (the subscribed channel's messages) go to `pushes`;
    /// it subscribes again by itself after a reconnection.
    pub async fn subscriber(&self, pushes: UnboundedSender<PushInfo>) -> RedisResult<Subscriber> {
        match self {
            Self::Single(client) => ConnectionManager::new_lazy_with_config(
                client.clone(),
                manager_config()
                    .set_push_sender(pushes)
                    .set_automatic_resubscription(),
            )
            .map(Subscriber::Single),
            Self::Cluster(seeds) => {
                let client = seeds.client(Some(pushes))?;
                Ok(Subscriber::Cluster(client.get_async_connection().await?))
            }
        }
    }
}

impl Seeds {
    fn client(&self, pushes: Option<UnboundedSender<PushInfo>>) -> RedisResult<ClusterClient> {
        let mut builder = ClusterClientBuilder::new(self.nodes.clone())
            .use_protocol(ProtocolVersion::RESP3)
            .connection_timeout(CONNECT_TIMEOUT)
            .retries(2);
        if let Some(pem) = &self.ca {
            builder = builder.certs(certificates(pem));
        }
        if let Some(pushes) = pushes {
            builder = builder.push_sender(pushes);
        }
        builder.build()
    }
}

fn resp3(info: ConnectionInfo) -> RedisResult<ConnectionInfo> {
    let settings = info
        .redis_settings()
        .clone()
        .set_protocol(ProtocolVersion::RESP3);
    Ok(info.set_redis_settings(settings))
}

fn certificates(pem: &[u8]) -> TlsCertificates {
    TlsCertificates {
        client_tls: None,
        root_cert: Some(pem.to_vec()),
    }
}

fn manager_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(None)
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_millis(400))
}

/// The command connection, of either shape; cheap to clone.
#[derive(Clone)]
pub enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(cmd, offset, count),
            Self::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

/// A node SCAN must visit: the one server, or a cluster primary by address.
type Node = Option<(String, u16)>;

/// SCAN batches per node at most (of up to 1,000 names each): a bound, not a budget.
const MAX_SCAN_ROUNDS: usize = 100_000;

impl Connection {
    /// Deletes every name matching `pattern` (SCAN + DEL in batches, on each node that
    /// holds keys).
    pub async fn delete_matching(&mut self, pattern: &str) -> RedisResult<()> {
        for node in self.scan_nodes().await? {
            let mut cursor: u64 = 0;
            for _ in 0..MAX_SCAN_ROUNDS {
                let mut scan = redis::cmd("SCAN");
                scan.arg(cursor)
                    .arg("MATCH")
                    .arg(pattern)
                    .arg("COUNT")
                    .arg(1000);
                let (next, batch): (u64, Vec<String>) =
                    redis::FromRedisValue::from_redis_value(self.on_node(&node, scan).await?)?;
                if !batch.is_empty() {
                    self.delete(&batch).await?;
                }
                cursor = next;
                if cursor == 0 {
                    break;
                }
            }
        }
        Ok(())
    }

    /// The nodes whose keys together are every key: the server, or each primary.
    async fn scan_nodes(&mut self) -> RedisResult<Vec<Node>> {
        match self {
            Self::Single(_) => Ok(vec![None]),
            Self::Cluster(c) => {
                let nodes: String = redis::cmd("CLUSTER").arg("NODES").query_async(c).await?;
                Ok(primaries(&nodes).into_iter().map(Some).collect())
            }
        }
    }

    /// Runs `cmd` on `node` (see `scan_nodes`).
    async fn on_node(&mut self, node: &Node, cmd: Cmd) -> RedisResult<Value> {
        match (self, node) {
            (Self::Cluster(c), Some((host, port))) => {
                let at = SingleNodeRoutingInfo::ByAddress {
                    host: host.clone(),
                    port: *port,
                };
                c.route_command(cmd, RoutingInfo::SingleNode(at)).await
            }
            (connection, _) => cmd.query_async(connection).await,
        }
    }

    /// Deletes `keys`, which in a cluster may sit in different slots (one DEL each there).
    async fn delete(&mut self, keys: &[String]) -> RedisResult<()> {
        match self {
            Self::Single(c) => redis::cmd("DEL").arg(keys).query_async(c).await,
            Self::Cluster(c) => try_join_all(keys.iter().map(|key| {
                let mut c = c.clone();
                async move { redis::cmd("DEL").arg(key).query_async::<i64>(&mut c).await }
            }))
            .await
            .map(drop),
        }
    }
}

/// The primaries' addresses in `CLUSTER NODES` output (`<id> <ip:port@cport> <flags> …`).
fn primaries(nodes: &str) -> Vec<(String, u16)> {
    nodes
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let address = fields.nth(1)?;
            let flags = fields.next()?;
            if !flags.split(',').any(|f| f == "master") || flags.contains("fail") {
                return None;
            }
            let (host, port) = address.split('@').next()?.rsplit_once(':')?;
            Some((host.to_owned(), port.parse().ok()?))
        })
        .collect()
}

/// The subscriber connection, of either shape.
pub enum Subscriber {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Subscriber {
    pub async fn subscribe(&mut self, channel: &str) -> RedisResult<()> {
        match self {
            Self::Single(c) => c.subscribe(channel).await,
            Self::Cluster(c) => c.subscribe(channel).await,
        }
    }

    /// A PING, which also makes a dropped connection reconnect (and re-subscribe).
    pub async fn ping(&mut self) -> RedisResult<()> {
        let command = redis::cmd("PING");
        match self {
            Self::Single(c) => command.query_async::<Value>(c).await.map(drop),
            Self::Cluster(c) => command.query_async::<Value>(c).await.map(drop),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_primaries_of_a_cluster_are_read_from_cluster_nodes() {
        let nodes = "\
07c3 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 0-5460
67ed 127.0.0.1:30002@40002 master - 0 1426238316232 2 connected 5461-10922
292f 127.0.0.1:30003@40003 master,fail - 0 1426238318243 3 connected 10923-16383
6ec2 127.0.0.1:30004@40004 slave 07c3 0 1426238317741 1 connected
";
        assert_eq!(
            primaries(nodes),
            [
                ("127.0.0.1".to_owned(), 30001),
                ("127.0.0.1".to_owned(), 30002)
            ]
        );
    }
}
