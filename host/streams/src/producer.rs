//! The ingest producer: dedup and XADD in one atomic step, for many events per
//! round trip. Requests hand it jobs; a single task coalesces whatever is queued
//! (up to `BATCH_SIZE` events, waiting at most `BATCH_TIMEOUT_MS` for more) into
//! one script call, with several calls in flight on the multiplexed connection.
//! A caller's answer arrives only after Redis has run the script: an event
//! answered "accepted" is in the stream. A job whose caller stopped waiting before
//! it was sent (answered "outcome unknown") is dropped, not sent late.
//!
//! An entry carries the event, its id, when and in which request it arrived, and
//! (traces on) the request's `traceparent`, so screening's span joins its trace.
//!
//! Events are spread over the stream shards by their dedup hash
//! ([`super::shard_of`]): a flush makes one script call per shard it holds events
//! for, concurrently. With `REDIS_WAIT_REPLICAS` set, each call is followed by
//! `WAIT` on the shard's master, and an event is answered accepted only once that
//! many replicas hold it; a write the replicas did not confirm in time is answered
//! "outcome unknown" (it is in the master, and may be lost if the master fails
//! before it replicates), so a client retries it and dedup answers for it.
//!
//! The script, per event: `SET key event_id NX GET EX ttl` — if the key existed,
//! report the event it belongs to; else XADD, and if the XADD fails (out of
//! memory, say), delete the key again and report that event as failed, then go
//! on with the next. Scripts run atomically, so no reader ever sees a key without
//! its event, a failure never leaves a key that suppresses the retry, and each
//! event's answer is its own: a Redis error never turns an event that was written
//! into a "not stored" answer. (Two calls per event: GET-then-SET after the XADD
//! cost a third, ~20 % more Redis time.)

use super::{RedisConn, ShardKeys, StreamError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc, oneshot};

/// Calls in flight at once (the connection pipelines them).
const IN_FLIGHT: usize = 8;

const SCRIPT: &str = r#"
local ttl = ARGV[1]
local out = {}
for n = 2, #KEYS do
  local key = KEYS[n]
  local i = 2 + (n - 2) * 5
  local prev = redis.pcall('SET', key, ARGV[i], 'NX', 'GET', 'EX', ttl)
  if type(prev) == 'table' and prev.err then
    out[#out + 1] = '!' .. prev.err
  elseif prev then
    out[#out + 1] = '=' .. prev
  else
    local id
    if ARGV[i + 4] == '' then
      id = redis.pcall('XADD', KEYS[1], '*', 'event_id', ARGV[i], 'received_at_ms', ARGV[i + 1],
        'request_id', ARGV[i + 2], 'event', ARGV[i + 3])
    else
      id = redis.pcall('XADD', KEYS[1], '*', 'event_id', ARGV[i], 'received_at_ms', ARGV[i + 1],
        'request_id', ARGV[i + 2], 'event', ARGV[i + 3], 'traceparent', ARGV[i + 4])
    end
    if type(id) == 'table' and id.err then
      redis.call('DEL', key)
      out[#out + 1] = '!' .. id.err
    else
      out[#out + 1] = id
    end
  end
end
return out
"#;

/// One event to produce.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The event's dedup hash (hex SHA-256): it picks the shard, and under the
    /// shard's dedup prefix it is the dedup key.
    pub dedup_hash: String,
    pub event_id: String,
    pub received_at_ms: u64,
    pub request_id: String,
    /// The normalised event as JSON.
    pub event_json: String,
    /// The ingest request's W3C trace context (field `traceparent`), when traced.
    pub traceparent: Option<String>,
}

/// What happened to one entry.
#[derive(Debug, Clone, PartialEq)]
pub enum Produced {
    Accepted {
        stream_id: String,
    },
    Duplicate {
        duplicate_of: String,
    },
    /// Redis refused this one (nothing of it was kept), with its error.
    Failed {
        reason: String,
    },
}

struct Job {
    entries: Vec<Entry>,
    reply: oneshot::Sender<Result<Vec<Produced>, StreamError>>,
}

#[derive(Clone)]
pub struct Producer {
    tx: mpsc::Sender<Job>,
}

impl Producer {
    /// Start the coalescing task on the current runtime.
    pub fn start(conn: RedisConn, shards: Vec<ShardKeys>, options: ProduceOptions) -> Self {
        let (tx, rx) = mpsc::channel(16_384);
        let run = Coalescer {
            conn,
            flush: Arc::new(Flush {
                shards,
                ttl: options.ttl_seconds.to_string(),
                script: redis::Script::new(SCRIPT),
                wait_replicas: options.wait_replicas,
                wait_timeout: options.wait_timeout,
            }),
            batch_size: options.batch_size,
            batch_timeout: options.batch_timeout,
        };
        tokio::spawn(run.run(rx));
        Producer { tx }
    }

    /// Produce entries (dedup + XADD); one result per entry, in order.
    pub async fn produce(&self, entries: Vec<Entry>) -> Result<Vec<Produced>, StreamError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        self.tx.send(Job { entries, reply }).await.map_err(|_| StreamError::Unavailable("producer stopped".into()))?;
        answer.await.map_err(|_| StreamError::Unavailable("producer dropped the request".into()))?
    }
}

/// How the producer batches and how durable an answer is.
#[derive(Debug, Clone)]
pub struct ProduceOptions {
    /// The dedup window (`DEDUP_WINDOW_SECONDS`).
    pub ttl_seconds: u64,
    pub batch_size: usize,
    pub batch_timeout: Duration,
    /// Replicas that must hold a write before it is answered (`REDIS_WAIT_REPLICAS`; 0: none).
    pub wait_replicas: u32,
    /// How long `WAIT` waits for them.
    pub wait_timeout: Duration,
}

struct Coalescer {
    conn: RedisConn,
    flush: Arc<Flush>,
    batch_size: usize,
    batch_timeout: Duration,
}

/// What one flush needs besides the connection and the jobs.
struct Flush {
    shards: Vec<ShardKeys>,
    ttl: String,
    script: redis::Script,
    wait_replicas: u32,
    wait_timeout: Duration,
}

impl Coalescer {
    async fn run(self, mut rx: mpsc::Receiver<Job>) {
        let slots = Arc::new(Semaphore::new(IN_FLIGHT));
        while let Some(first) = rx.recv().await {
            // While every slot is busy, jobs queue up and the next batch grows.
            let Ok(permit) = slots.clone().acquire_owned().await else { return };
            let mut size = first.entries.len();
            let mut jobs = vec![first];
            let deadline = tokio::time::Instant::now() + self.batch_timeout;
            while size < self.batch_size {
                let next = match rx.try_recv() {
                    Ok(job) => job,
                    Err(mpsc::error::TryRecvError::Empty) if !self.batch_timeout.is_zero() => {
                        match tokio::time::timeout_at(deadline, rx.recv()).await {
                            Ok(Some(job)) => job,
                            _ => break,
                        }
                    }
                    Err(_) => break,
                };
                size += next.entries.len();
                jobs.push(next);
            }
            // A caller that stopped waiting (its request answered `outcome_unknown` after
            // REDIS_TIMEOUT_MS: Redis hung) is not written for now. Else a stall's queue
            // would all reach Redis as it resumes, and new requests would wait behind it.
            jobs.retain(|job| !job.reply.is_closed());
            if jobs.is_empty() {
                continue;
            }
            let (conn, flush) = (self.conn.clone(), self.flush.clone());
            tokio::spawn(async move {
                flush.run(conn, jobs).await;
                drop(permit);
            });
        }
    }
}

impl Flush {
    /// One script call per shard the jobs have events for, concurrently; each job
    /// answered from its events' results, in order.
    async fn run(&self, conn: RedisConn, jobs: Vec<Job>) {
        let entries: Vec<&Entry> = jobs.iter().flat_map(|j| &j.entries).collect();
        let mut by_shard: Vec<Vec<usize>> = vec![Vec::new(); self.shards.len()];
        for (i, e) in entries.iter().enumerate() {
            by_shard[super::shard_of(&e.dedup_hash, self.shards.len())].push(i);
        }
        let calls = by_shard.iter().enumerate().filter(|(_, at)| !at.is_empty()).map(|(shard, at)| {
            let shard = &self.shards[shard];
            let batch: Vec<&Entry> = at.iter().map(|&i| entries[i]).collect();
            self.produce_shard(conn.clone(), shard, batch)
        });
        let answers = futures_util::future::join_all(calls).await;
        // Each entry's answer: its row, or its shard's error.
        let mut rows: Vec<Option<Result<Produced, StreamError>>> = vec![None; entries.len()];
        for (at, answer) in by_shard.iter().filter(|at| !at.is_empty()).zip(answers) {
            match answer {
                Ok(produced) => at.iter().zip(produced).for_each(|(&i, p)| rows[i] = Some(Ok(p))),
                Err(e) => at.iter().for_each(|&i| rows[i] = Some(Err(e.clone()))),
            }
        }
        let mut rows = rows.into_iter().map(|r| r.expect("every entry has a shard"));
        for job in jobs {
            let answers: Vec<Result<Produced, StreamError>> = rows.by_ref().take(job.entries.len()).collect();
            let _ = job.reply.send(job_answer(answers));
        }
    }

    /// Dedup + XADD of one shard's entries in one script call (then `WAIT`, when asked).
    async fn produce_shard(
        &self,
        mut conn: RedisConn,
        shard: &ShardKeys,
        entries: Vec<&Entry>,
    ) -> Result<Vec<Produced>, StreamError> {
        let mut invocation = self.script.key(&shard.raw);
        invocation.arg(&self.ttl);
        for e in &entries {
            invocation.key(format!("{}{}", shard.dedup, e.dedup_hash));
            invocation.arg(&e.event_id).arg(e.received_at_ms).arg(&e.request_id).arg(&e.event_json);
            invocation.arg(e.traceparent.as_deref().unwrap_or(""));
        }
        // One string per entry: a stream id, `=` and the event id it duplicates, or `!` and an error.
        let rows: Vec<String> = invocation.invoke_async(&mut conn).await?;
        if rows.len() != entries.len() {
            return Err(StreamError::Protocol("the produce script returned too few results".into()));
        }
        let produced: Vec<Produced> = rows
            .into_iter()
            .map(|value| {
                if let Some(original) = value.strip_prefix('=') {
                    Produced::Duplicate { duplicate_of: original.to_string() }
                } else if let Some(reason) = value.strip_prefix('!') {
                    Produced::Failed { reason: reason.to_string() }
                } else {
                    Produced::Accepted { stream_id: value }
                }
            })
            .collect();
        if self.wait_replicas > 0 && produced.iter().any(|p| matches!(p, Produced::Accepted { .. })) {
            let acked = conn.wait_replicas(&shard.raw, self.wait_replicas, self.wait_timeout).await?;
            if acked < self.wait_replicas {
                return Err(StreamError::Unknown(format!(
                    "written to the master of {}, but {acked} of {} replicas confirmed it within {:?}",
                    shard.raw, self.wait_replicas, self.wait_timeout
                )));
            }
        }
        Ok(produced)
    }
}

/// A job's answer from its entries' answers. If some of its shards answered and
/// another failed, the failure becomes "outcome unknown": part of the job was
/// written, so no answer may say that nothing was.
fn job_answer(answers: Vec<Result<Produced, StreamError>>) -> Result<Vec<Produced>, StreamError> {
    let written = answers.iter().any(|a| a.is_ok());
    answers
        .into_iter()
        .map(|a| match a {
            Err(StreamError::Unavailable(e)) | Err(StreamError::Protocol(e)) if written => {
                Err(StreamError::Unknown(format!("part of the request was written; another shard: {e}")))
            }
            other => other,
        })
        .collect()
}

impl super::EventSink for Producer {
    fn produce(&self, entries: Vec<Entry>) -> palisade_core::BoxFuture<'_, Result<Vec<Produced>, StreamError>> {
        Box::pin(Producer::produce(self, entries))
    }
}
