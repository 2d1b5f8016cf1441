//! The connection the async Redis paths share: one Redis (a `ConnectionManager`,
//! which reconnects by itself) or a Redis Cluster (`REDIS_CLUSTER_NODES`: the
//! `redis` crate's cluster connection, which keeps one multiplexed connection per
//! node, follows `MOVED`/`ASK` and re-reads the slot map after a failover). Both
//! are `redis::aio::ConnectionLike`, so the stream code is written once; it must
//! send only commands and pipelines whose keys share one slot (see
//! [`super::Keys`]: a shard's keys carry one hash tag).
//!
//! The embedding cache and the entity labels run on worker threads and use a
//! synchronous [`SyncConn`] to the same Redis: there a batch's commands touch many
//! slots, so they go as a plain pipeline on one Redis and as a cluster pipeline
//! (one round trip per master touched) on a cluster.
//!
//! This module owns connecting and routing by key; it knows no key names.

use super::StreamError;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};
use std::time::Duration;

/// Where Redis is: one server, or the seed nodes of a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Single(String),
    Cluster(Vec<String>),
}

impl Target {
    /// `REDIS_CLUSTER_NODES` (comma-separated `host:port` or URLs) when set, else `REDIS_URL`.
    pub fn new(url: &str, cluster_nodes: &[String]) -> Self {
        if cluster_nodes.is_empty() {
            Target::Single(url.to_string())
        } else {
            let url = |n: &String| if n.contains("://") { n.clone() } else { format!("redis://{n}") };
            Target::Cluster(cluster_nodes.iter().map(url).collect())
        }
    }

    /// A synchronous connection whose connect, reads and writes each give up after `timeout`.
    pub fn connect_sync(&self, timeout: Duration) -> redis::RedisResult<SyncConn> {
        match self {
            Target::Single(url) => {
                let conn = redis::Client::open(url.as_str())?.get_connection_with_timeout(timeout)?;
                conn.set_read_timeout(Some(timeout))?;
                conn.set_write_timeout(Some(timeout))?;
                Ok(SyncConn::Single(conn))
            }
            Target::Cluster(nodes) => {
                Ok(SyncConn::Cluster(Box::new(cluster_client(nodes, timeout)?.get_connection()?)))
            }
        }
    }
}

/// A cluster client whose connects and answers each give up after `timeout`,
/// retrying a command twice (50–500 ms apart) across a `MOVED` or a failover.
fn cluster_client(nodes: &[String], timeout: Duration) -> redis::RedisResult<redis::cluster::ClusterClient> {
    redis::cluster::ClusterClientBuilder::new(nodes.to_vec())
        .connection_timeout(timeout)
        .response_timeout(timeout)
        .retries(2)
        .min_retry_wait(50)
        .max_retry_wait(500)
        .build()
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Single(url) => f.write_str(url),
            Target::Cluster(nodes) => write!(f, "the cluster at {}", nodes.join(",")),
        }
    }
}

/// A synchronous connection to one Redis or to a cluster.
pub enum SyncConn {
    Single(redis::Connection),
    Cluster(Box<redis::cluster::ClusterConnection>),
}

impl SyncConn {
    /// Send `cmds` in one pipeline (on a cluster: one per master touched; never a
    /// transaction) and read their answers. On a cluster a command must name its
    /// key (`GET`, `EVAL`; not `MGET`, `EVALSHA` or `SCRIPT LOAD`).
    pub fn pipeline<T: redis::FromRedisValue>(&mut self, cmds: Vec<Cmd>) -> redis::RedisResult<T> {
        match self {
            SyncConn::Single(c) => {
                let mut pipe = redis::pipe();
                for cmd in cmds {
                    pipe.add_command(cmd);
                }
                pipe.query(c)
            }
            SyncConn::Cluster(c) => {
                let mut pipe = redis::cluster::cluster_pipe();
                for cmd in cmds {
                    pipe.add_command(cmd);
                }
                pipe.query(c.as_mut())
            }
        }
    }

    /// One command (routed by its key on a cluster).
    pub fn query<T: redis::FromRedisValue>(&mut self, cmd: &Cmd) -> redis::RedisResult<T> {
        match self {
            SyncConn::Single(c) => cmd.query(c),
            SyncConn::Cluster(c) => cmd.query(c.as_mut()),
        }
    }
}

/// A synchronous connection shared by a store's worker threads: opened on first
/// use, dropped after any error and opened again on a later use, but not within
/// a second of a failed connect (a down Redis costs each call an error, not a
/// connect timeout). A call whose connection times out or drops mid-answer is
/// tried once more on a fresh connection: on a starved machine one late answer
/// must not cost a verdict its rule (every call here is a read or an idempotent
/// write).
pub struct LazySync {
    target: Target,
    timeout: Duration,
    state: std::sync::Mutex<LazyState>,
}

#[derive(Default)]
struct LazyState {
    conn: Option<SyncConn>,
    failed_at: Option<std::time::Instant>,
}

impl LazySync {
    /// Connects, reads and writes give up after `timeout`.
    pub fn new(target: Target, timeout: Duration) -> Self {
        LazySync { target, timeout, state: Default::default() }
    }

    /// Run `f` on the connection (twice at most, see above); the error as text.
    pub fn with_conn<T>(&self, mut f: impl FnMut(&mut SyncConn) -> redis::RedisResult<T>) -> Result<T, String> {
        const RETRY_AFTER: Duration = Duration::from_secs(1);
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut tries = 0;
        loop {
            tries += 1;
            if let Some(at) = state.failed_at.filter(|at| at.elapsed() < RETRY_AFTER) {
                return Err(format!("Redis unreachable {} ms ago; retrying shortly", at.elapsed().as_millis()));
            }
            let mut conn = match state.conn.take() {
                Some(conn) => conn,
                None => match self.target.connect_sync(self.timeout) {
                    Ok(conn) => conn,
                    Err(e) => {
                        state.failed_at = Some(std::time::Instant::now());
                        return Err(e.to_string());
                    }
                },
            };
            state.failed_at = None;
            match f(&mut conn) {
                Ok(answer) => {
                    state.conn = Some(conn); // kept only while it answers
                    return Ok(answer);
                }
                Err(e) if tries == 1 && (e.is_timeout() || e.is_connection_dropped() || e.is_io_error()) => continue,
                Err(e) => return Err(e.to_string()),
            }
        }
    }
}

/// A connection to one Redis or to a cluster; cheap to clone (clones share it).
#[derive(Clone)]
pub enum RedisConn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl RedisConn {
    /// Connect, failing fast (within `timeout`) while Redis is down or hung.
    pub async fn connect(target: &Target, timeout: Duration) -> Result<Self, StreamError> {
        match target {
            Target::Single(url) => {
                let client = redis::Client::open(url.as_str())
                    .map_err(|e| StreamError::Unavailable(format!("bad REDIS_URL: {e}")))?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_millis(500));
                Ok(RedisConn::Single(ConnectionManager::new_with_config(client, config).await?))
            }
            Target::Cluster(nodes) => {
                let client = cluster_client(nodes, timeout)
                    .map_err(|e| StreamError::Unavailable(format!("bad REDIS_CLUSTER_NODES: {e}")))?;
                Ok(RedisConn::Cluster(client.get_async_connection().await?))
            }
        }
    }

    /// `WAIT replicas timeout` on the node that holds `key` (in a cluster: the
    /// master of its slot, over the connection that wrote to it): how many
    /// replicas acknowledged every write this connection made there.
    pub async fn wait_replicas(&mut self, key: &str, replicas: u32, timeout: Duration) -> redis::RedisResult<u32> {
        let mut cmd = redis::cmd("WAIT");
        cmd.arg(replicas).arg(timeout.as_millis() as u64);
        match self {
            RedisConn::Single(c) => cmd.query_async(c).await,
            RedisConn::Cluster(c) => {
                use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
                let route = Route::with_key(key.as_bytes(), SlotAddr::Master);
                let value =
                    c.route_command(cmd, RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route))).await?;
                redis::from_redis_value(value).map_err(Into::into)
            }
        }
    }
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConn::Single(c) => c.req_packed_command(cmd),
            RedisConn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            RedisConn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConn::Single(c) => c.get_db(),
            RedisConn::Cluster(c) => c.get_db(),
        }
    }
}
