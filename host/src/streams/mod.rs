//! Redis Streams, the durable log between the services: stream and group names,
//! connecting (a `ConnectionManager` that reconnects by itself, with bounded
//! timeouts so a dead Redis answers errors, not hangs), the ingest producer
//! (`producer`), the backlog monitor (`depth`), reviewer labels (`labels`), the
//! audit trail (`audit`) and capped streams written in the background
//! (`capped`: the audit trail's and the shadow samples'). No HTTP here.
//!
//! The services hold the producer and the backlog monitor through the traits
//! [`EventSink`] and [`Backlog`], so their HTTP layers can be exercised without a
//! Redis (the tests' in-memory versions); the Redis paths keep real-Redis tests.

pub mod audit;
pub mod capped;
pub mod depth;
pub mod labels;
pub mod producer;

use crate::core::BoxFuture;
use producer::{Entry, Produced};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::time::Duration;

/// Where accepted events are written: each entry's dedup key and event in one
/// atomic step; one result per entry, in order.
pub trait EventSink: Send + Sync {
    fn produce(&self, entries: Vec<Entry>) -> BoxFuture<'_, Result<Vec<Produced>, StreamError>>;
}

/// The screening backlog of `events:raw` as last seen, and whether Redis answered.
pub trait Backlog: Send + Sync {
    /// Events not yet screened (group lag + pending).
    fn backlog(&self) -> u64;
    /// Whether the last look at Redis succeeded.
    fn redis_ok(&self) -> bool;
}

/// The consumer group screening reads `events:raw` with.
pub const SCREENING_GROUP: &str = "screening";

/// Every Redis key Palisade writes, under an optional prefix (`REDIS_KEY_PREFIX`),
/// so several deployments — or test runs — can share one Redis.
#[derive(Debug, Clone)]
pub struct Keys {
    /// Raw events, as ingestion accepted them (`events:raw`).
    pub raw: String,
    /// High-risk predictions for the reasoning service (`events:reasoning_queue`).
    pub reasoning: String,
    /// Low-risk predictions (`events:low_risk`).
    pub low_risk: String,
    /// Entries that could not be screened after `MAX_DELIVERIES` (`events:dead_letter`).
    pub dead_letter: String,
    /// Prefix of dedup keys (`dedup:<sha256>`).
    pub dedup: String,
    /// Prefix of cached embeddings (`emb:<model>:<sha256>`).
    pub embedding_cache: String,
    /// Reviewer labels for training (`events:labels`).
    pub labels: String,
    /// The audit trail of plugin changes (`events:audit`).
    pub audit: String,
    /// Events a shadow candidate would have decided differently (`events:shadow`).
    pub shadow: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Keys {
            raw: format!("{prefix}events:raw"),
            reasoning: format!("{prefix}events:reasoning_queue"),
            low_risk: format!("{prefix}events:low_risk"),
            dead_letter: format!("{prefix}events:dead_letter"),
            dedup: format!("{prefix}dedup:"),
            embedding_cache: format!("{prefix}emb:"),
            labels: format!("{prefix}events:labels"),
            audit: format!("{prefix}events:audit"),
            shadow: format!("{prefix}events:shadow"),
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum StreamError {
    /// The command never reached Redis (refused, not connected): nothing was written.
    #[error("Redis is unavailable: {0}")]
    Unavailable(String),
    /// The command may have reached Redis and run there (no answer in time, or the
    /// connection broke mid-call): the outcome is not known.
    #[error("Redis did not answer in time: {0}")]
    Unknown(String),
    /// Redis answered with an error (the produce script undoes its own write first).
    #[error("Redis answered something unexpected: {0}")]
    Protocol(String),
}

impl From<redis::RedisError> for StreamError {
    fn from(e: redis::RedisError) -> Self {
        if e.is_connection_refusal() {
            StreamError::Unavailable(e.to_string())
        } else if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() {
            StreamError::Unknown(e.to_string())
        } else {
            StreamError::Protocol(e.to_string())
        }
    }
}

/// Connect, retrying for up to `wait` (Redis may still be starting); each
/// command's answer is awaited at most `timeout` (`REDIS_TIMEOUT_MS`).
pub async fn connect_with_retry(
    url: &str,
    wait: Duration,
    timeout: Duration,
) -> Result<ConnectionManager, StreamError> {
    let started = std::time::Instant::now();
    loop {
        match connect(url, timeout).await {
            Ok(c) => return Ok(c),
            Err(e) if started.elapsed() >= wait => {
                return Err(StreamError::Unavailable(format!("{url} did not answer within {wait:?}: {e}")));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// A self-reconnecting connection. Fails fast (within `timeout`) while Redis is
/// down or hung, and recovers without a restart once it is back.
pub async fn connect(url: &str, timeout: Duration) -> Result<ConnectionManager, StreamError> {
    let client = redis::Client::open(url).map_err(|e| StreamError::Unavailable(format!("bad REDIS_URL: {e}")))?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(500));
    Ok(ConnectionManager::new_with_config(client, config).await?)
}
