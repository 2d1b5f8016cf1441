//! The ingest producer: dedup and XADD in one atomic step, for many events per
//! round trip. Requests hand it jobs; a single task coalesces whatever is queued
//! (up to `BATCH_SIZE` events, waiting at most `BATCH_TIMEOUT_MS` for more) into
//! one script call, with several calls in flight on the multiplexed connection.
//! A caller's answer arrives only after Redis has run the script: an event
//! answered "accepted" is in the stream.
//!
//! An entry carries the event, its id, when and in which request it arrived, and
//! (traces on) the request's `traceparent`, so screening's span joins its trace.
//!
//! The script, per event: `SET key event_id NX GET EX ttl` — if the key existed,
//! report the event it belongs to; else XADD, and if the XADD fails (out of
//! memory, say), delete the key again and report that event as failed, then go
//! on with the next. Scripts run atomically, so no reader ever sees a key without
//! its event, a failure never leaves a key that suppresses the retry, and each
//! event's answer is its own: a Redis error never turns an event that was written
//! into a "not stored" answer. (Two calls per event: GET-then-SET after the XADD
//! cost a third, ~20 % more Redis time.)

use super::StreamError;
use redis::aio::ConnectionManager;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc, oneshot};

/// Calls in flight at once (the connection pipelines them).
const IN_FLIGHT: usize = 8;

const SCRIPT: &str = r#"
local ttl = ARGV[1]
local out = {}
for i = 2, #ARGV, 6 do
  local key = ARGV[i]
  local prev = redis.pcall('SET', key, ARGV[i + 1], 'NX', 'GET', 'EX', ttl)
  if type(prev) == 'table' and prev.err then
    out[#out + 1] = '!' .. prev.err
  elseif prev then
    out[#out + 1] = '=' .. prev
  else
    local id
    if ARGV[i + 5] == '' then
      id = redis.pcall('XADD', KEYS[1], '*', 'event_id', ARGV[i + 1], 'received_at_ms', ARGV[i + 2],
        'request_id', ARGV[i + 3], 'event', ARGV[i + 4])
    else
      id = redis.pcall('XADD', KEYS[1], '*', 'event_id', ARGV[i + 1], 'received_at_ms', ARGV[i + 2],
        'request_id', ARGV[i + 3], 'event', ARGV[i + 4], 'traceparent', ARGV[i + 5])
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
    /// `[prefix]dedup:<sha256>`.
    pub dedup_key: String,
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
    pub fn start(
        conn: ConnectionManager,
        stream: &str,
        ttl_seconds: u64,
        batch_size: usize,
        batch_timeout: Duration,
    ) -> Self {
        let (tx, rx) = mpsc::channel(16_384);
        let run = Coalescer {
            conn,
            stream: stream.to_string(),
            ttl: ttl_seconds.to_string(),
            script: Arc::new(redis::Script::new(SCRIPT)),
            batch_size,
            batch_timeout,
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

struct Coalescer {
    conn: ConnectionManager,
    stream: String,
    ttl: String,
    script: Arc<redis::Script>,
    batch_size: usize,
    batch_timeout: Duration,
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
            let (conn, stream, ttl, script) =
                (self.conn.clone(), self.stream.clone(), self.ttl.clone(), self.script.clone());
            tokio::spawn(async move {
                flush(conn, &stream, &ttl, &script, jobs).await;
                drop(permit);
            });
        }
    }
}

async fn flush(mut conn: ConnectionManager, stream: &str, ttl: &str, script: &redis::Script, jobs: Vec<Job>) {
    let mut invocation = script.key(stream);
    invocation.arg(ttl);
    for e in jobs.iter().flat_map(|j| &j.entries) {
        invocation.arg(&e.dedup_key).arg(&e.event_id).arg(e.received_at_ms).arg(&e.request_id).arg(&e.event_json);
        invocation.arg(e.traceparent.as_deref().unwrap_or(""));
    }
    // One string per entry: a stream id, `=` and the event id it duplicates, or `!` and an error.
    let result: Result<Vec<String>, StreamError> = invocation.invoke_async(&mut conn).await.map_err(StreamError::from);
    match result {
        Ok(rows) => {
            let mut rows = rows.into_iter().map(|value| {
                if let Some(original) = value.strip_prefix('=') {
                    Produced::Duplicate { duplicate_of: original.to_string() }
                } else if let Some(reason) = value.strip_prefix('!') {
                    Produced::Failed { reason: reason.to_string() }
                } else {
                    Produced::Accepted { stream_id: value }
                }
            });
            for job in jobs {
                let answer: Vec<Produced> = rows.by_ref().take(job.entries.len()).collect();
                let answer = if answer.len() == job.entries.len() {
                    Ok(answer)
                } else {
                    Err(StreamError::Protocol("the produce script returned too few results".into()))
                };
                let _ = job.reply.send(answer);
            }
        }
        Err(e) => {
            for job in jobs {
                let _ = job.reply.send(Err(e.clone()));
            }
        }
    }
}

impl super::EventSink for Producer {
    fn produce(&self, entries: Vec<Entry>) -> crate::core::BoxFuture<'_, Result<Vec<Produced>, StreamError>> {
        Box::pin(Producer::produce(self, entries))
    }
}
