//! `palisade-streams`: Redis Streams, the durable log between the services: stream and group names
//! and their layout over shards (`STREAM_SHARDS`, hash-tagged for a cluster),
//! connecting (`conn`: one Redis or a Redis Cluster, with bounded timeouts so a
//! dead Redis answers errors, not hangs), the ingest producer
//! (`producer`), the backlog monitor (`depth`), reviewer labels (`labels`), the
//! audit trail (`audit`), operators' changes every replica follows (`control`),
//! capped streams written in the background (`capped`: the audit trail's and the
//! shadow samples') and the event streams' retention (`retention`: trimmed by
//! age, never past what a group still needs). No HTTP here; it depends on
//! `palisade-core` only.
//!
//! The services hold the producer and the backlog monitor through the traits
//! [`EventSink`] and [`Backlog`], so their HTTP layers can be exercised without a
//! Redis (the tests' in-memory versions); the Redis paths keep real-Redis tests.

pub mod audit;
pub mod capped;
pub mod conn;
pub mod control;
pub mod depth;
pub mod labels;
pub mod producer;
pub mod retention;

pub use conn::{RedisConn, SyncConn, Target};
use palisade_core::BoxFuture;
use producer::{Entry, Produced};
use std::time::Duration;

/// Where accepted events are written: each entry's dedup key and event in one
/// atomic step; one result per entry, in order.
pub trait EventSink: Send + Sync {
    fn produce(&self, entries: Vec<Entry>) -> BoxFuture<'_, Result<Vec<Produced>, StreamError>>;
}

pub use palisade_core::Backlog;

/// The consumer group screening reads `events:raw` with.
pub const SCREENING_GROUP: &str = "screening";

/// Every Redis key Palisade writes, under an optional prefix (`REDIS_KEY_PREFIX`),
/// so several deployments — or test runs — can share one Redis.
///
/// The event path is split into `STREAM_SHARDS` shards ([`ShardKeys`]); `raw`,
/// `reasoning`, `low_risk`, `dead_letter` and `dedup` here are the first shard's
/// (with one shard on one Redis, the names Palisade always used). The other keys
/// are one each: every command on them touches that key alone, so they need no tag.
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
    /// Operators' changes every replica follows (`events:control`).
    pub control: String,
    /// Every shard's keys, the first one's included.
    pub shards: Vec<ShardKeys>,
    /// `REDIS_KEY_PREFIX`.
    pub prefix: String,
}

/// The keys of one stream shard: raw events, the outputs and dead letters of
/// screening them, and the dedup keys of the events in it. In a sharded or
/// cluster layout all carry one hash tag (`events:raw:{2.1}`, `dedup:{2.1}:<sha256>`),
/// so the produce script (dedup + XADD) and the routing transaction (XADD +
/// XACK) each touch one cluster slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardKeys {
    pub raw: String,
    pub reasoning: String,
    pub low_risk: String,
    pub dead_letter: String,
    /// Events screened `degraded`, waiting to be screened again (`events:rescreen`).
    pub rescreen: String,
    /// Prefix of the dedup keys (`dedup:<sha256>`, or `dedup:{tag}:<sha256>`).
    pub dedup: String,
}

impl ShardKeys {
    fn new(prefix: &str, tag: Option<&str>) -> Self {
        let (key, dedup) = match tag {
            None => (String::new(), format!("{prefix}dedup:")),
            Some(tag) => (format!(":{{{tag}}}"), format!("{prefix}dedup:{{{tag}}}:")),
        };
        ShardKeys {
            raw: format!("{prefix}events:raw{key}"),
            reasoning: format!("{prefix}events:reasoning_queue{key}"),
            low_risk: format!("{prefix}events:low_risk{key}"),
            dead_letter: format!("{prefix}events:dead_letter{key}"),
            rescreen: format!("{prefix}events:rescreen{key}"),
            dedup,
        }
    }
}

impl Keys {
    /// One shard on one Redis: the untagged names (`events:raw`, `dedup:<sha256>`).
    pub fn new(prefix: &str) -> Self {
        Self::layout(prefix, 1, false)
    }

    /// `shards` stream shards; hash-tagged when there are several or Redis is a
    /// cluster (where even one shard's keys must share a slot).
    pub fn layout(prefix: &str, shards: usize, cluster: bool) -> Self {
        let tagged = shards > 1 || cluster;
        let shards: Vec<ShardKeys> = (0..shards.max(1))
            .map(|i| ShardKeys::new(prefix, tagged.then(|| shard_tag(i, shards.max(1))).as_deref()))
            .collect();
        let first = shards[0].clone();
        Keys {
            raw: first.raw,
            reasoning: first.reasoning,
            low_risk: first.low_risk,
            dead_letter: first.dead_letter,
            dedup: first.dedup,
            embedding_cache: format!("{prefix}emb:"),
            labels: format!("{prefix}events:labels"),
            audit: format!("{prefix}events:audit"),
            shadow: format!("{prefix}events:shadow"),
            control: format!("{prefix}events:control"),
            shards,
            prefix: prefix.to_string(),
        }
    }

    /// The streams a user means by a stream's one-Redis name (`events:raw`,
    /// `events:low_risk`, …): every shard's (`events:raw:{0}`, …) in a sharded
    /// layout. Any other name is that one stream, under the prefix.
    pub fn streams_named(&self, name: &str) -> Vec<String> {
        let plain = ShardKeys::new("", None);
        let field: fn(&ShardKeys) -> &String = match name {
            n if n == plain.raw => |k| &k.raw,
            n if n == plain.reasoning => |k| &k.reasoning,
            n if n == plain.low_risk => |k| &k.low_risk,
            n if n == plain.dead_letter => |k| &k.dead_letter,
            n if n == plain.rescreen => |k| &k.rescreen,
            _ => return vec![format!("{}{name}", self.prefix)],
        };
        self.shards.iter().map(|k| field(k).clone()).collect()
    }
}

/// The shard an event goes to, from its dedup hash (hex SHA-256), so duplicates
/// always meet in the same shard.
pub fn shard_of(dedup_hash: &str, shards: usize) -> usize {
    let head = dedup_hash.get(..15).and_then(|h| u64::from_str_radix(h, 16).ok()).unwrap_or(0);
    (head % shards.max(1) as u64) as usize
}

/// The cluster slot of a key: CRC16 (XMODEM) of its hash tag (the text between
/// the first `{` and the next `}`, when not empty) or of the whole key, mod 16384.
pub fn slot(key: &str) -> u16 {
    let bytes = key.as_bytes();
    let hashed = key
        .find('{')
        .and_then(|open| key[open + 1..].find('}').filter(|&len| len > 0).map(|len| &bytes[open + 1..open + 1 + len]))
        .unwrap_or(bytes);
    let mut crc: u16 = 0;
    for &b in hashed {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    crc % 16384
}

/// The hash tag of shard `i` of `n`: the first of `i`, `i.1`, `i.2`, … whose slot
/// lies in the i-th of n equal slot ranges. A cluster made by `redis-cli --cluster
/// create` gives its masters equal contiguous ranges, so n shards spread evenly
/// over them (with n a multiple of the masters).
pub fn shard_tag(i: usize, n: usize) -> String {
    let range = (i * 16384 / n) as u16..((i + 1) * 16384 / n) as u16;
    (0..)
        .map(|k| if k == 0 { i.to_string() } else { format!("{i}.{k}") })
        .find(|tag| range.contains(&slot(&format!("{{{tag}}}"))))
        .expect("some tag falls in every range")
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
pub async fn connect_with_retry(target: &Target, wait: Duration, timeout: Duration) -> Result<RedisConn, StreamError> {
    let started = std::time::Instant::now();
    loop {
        match RedisConn::connect(target, timeout).await {
            Ok(c) => return Ok(c),
            Err(e) if started.elapsed() >= wait => {
                return Err(StreamError::Unavailable(format!("{target} did not answer within {wait:?}: {e}")));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis_and_tags_spread_shards_over_equal_ranges() {
        // Values from `redis-cli CLUSTER KEYSLOT`.
        assert_eq!(slot("foo"), 12182);
        assert_eq!(slot("hello"), 866);
        assert_eq!(slot("{foo}.bar"), slot("foo"));
        assert_eq!(slot("a{}b"), slot("a{}b"), "an empty tag hashes the whole key");
        for n in [1, 2, 3, 6, 16] {
            for i in 0..n {
                let s = usize::from(slot(&format!("{{{}}}", shard_tag(i, n))));
                assert!((i * 16384 / n..(i + 1) * 16384 / n).contains(&s), "shard {i} of {n}: slot {s}");
            }
        }
    }

    #[test]
    fn one_shard_on_one_redis_keeps_the_old_names_and_a_shard_shares_one_slot() {
        let single = Keys::new("p:");
        assert_eq!((single.raw.as_str(), single.dedup.as_str()), ("p:events:raw", "p:dedup:"));
        assert_eq!(single.shards, [ShardKeys::new("p:", None)]);
        let sharded = Keys::layout("", 3, false);
        assert_eq!(sharded.shards.len(), 3);
        for shard in &sharded.shards {
            let dedup = format!("{}{}", shard.dedup, "ab".repeat(32));
            let slots: Vec<u16> =
                [&shard.raw, &shard.reasoning, &shard.low_risk, &shard.dead_letter, &shard.rescreen, &dedup]
                    .map(|k| slot(k))
                    .to_vec();
            assert!(slots.iter().all(|&s| s == slots[0]), "{shard:?}: {slots:?}");
        }
        assert_eq!(Keys::layout("", 1, true).raw, "events:raw:{0}");
        // Duplicates meet: the shard is a function of the hash; hashes spread.
        let hashes: Vec<String> =
            (0..300u64).map(|i| format!("{:016x}{}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15), "0".repeat(48))).collect();
        let mut counts = [0; 3];
        hashes.iter().for_each(|h| counts[shard_of(h, 3)] += 1);
        assert!(counts.iter().all(|&c| c > 60), "{counts:?}");
    }
    #[test]
    fn a_stream_named_by_its_one_redis_name_is_every_shard_of_it() {
        assert_eq!(Keys::new("p:").streams_named("events:raw"), ["p:events:raw"]);
        let sharded = Keys::layout("p:", 3, true);
        let low_risk = sharded.streams_named("events:low_risk");
        assert_eq!(low_risk, sharded.shards.iter().map(|k| k.low_risk.clone()).collect::<Vec<_>>());
        assert!(low_risk.len() == 3 && low_risk[0].starts_with("p:events:low_risk:{"), "{low_risk:?}");
        assert_eq!(sharded.streams_named("events:raw:{1}"), ["p:events:raw:{1}"], "one shard by its own name");
        assert_eq!(sharded.streams_named("my:stream"), ["p:my:stream"]);
    }
}
