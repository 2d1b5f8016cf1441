//! `events:audit`, the audit trail in Redis: an [`AuditSink`] over a
//! [`CappedStream`] (`MAXLEN ~ AUDIT_MAX_ENTRIES`), so recording never blocks a reload or a
//! screening call, and an entry that meets a Redis outage is retried until it is
//! written (up to 10,000 waiting; past that the oldest news is the reload log
//! line). Read back newest first by `GET /v1/admin/audit`.

use super::RedisConn;
use super::capped::{self, CappedStream};
use palisade_core::audit::{AuditEntry, AuditSink};
use std::time::Duration;

/// Entries waiting for Redis before new ones are dropped (and logged).
const QUEUE: usize = 10_000;

pub struct AuditStream {
    conn: RedisConn,
    stream: CappedStream,
    /// Entries kept (`AUDIT_MAX_ENTRIES`; approximately: Redis trims whole nodes).
    pub keep: usize,
}

impl AuditStream {
    /// Start the writer on the current runtime.
    pub fn start(conn: RedisConn, key: &str, keep: usize) -> Self {
        AuditStream { stream: CappedStream::start(conn.clone(), key, keep, QUEUE), conn, keep }
    }

    /// The newest `count` entries, newest first, and how many the trail holds.
    pub async fn recent(&self, count: usize) -> redis::RedisResult<(Vec<serde_json::Value>, u64)> {
        let mut conn = self.conn.clone();
        let entries = capped::recent_json(&mut conn, &self.stream.key, "entry", count).await?;
        let length = redis::AsyncCommands::xlen(&mut conn, &self.stream.key).await?;
        Ok((entries, length))
    }
}

/// Append one entry now, from a command-line tool (no runtime needed); fails fast
/// when Redis does not answer.
pub fn append_now(target: &super::Target, key: &str, keep: usize, entry: &AuditEntry) -> redis::RedisResult<()> {
    target.connect_sync(Duration::from_secs(2))?.query(&capped::xadd(key, keep, &fields(entry)))
}

/// The entry's stream fields: action and subject (to filter by eye), and the whole entry as JSON.
fn fields(entry: &AuditEntry) -> capped::Fields {
    let json = serde_json::to_string(entry).expect("audit entries serialise");
    vec![("action", entry.action.to_string()), ("subject", entry.subject.clone()), ("entry", json)]
}

impl AuditSink for AuditStream {
    fn record(&self, entry: AuditEntry) {
        tracing::info!(target: "audit", action = entry.action, actor = %entry.actor, subject = %entry.subject,
            old = ?entry.old.as_ref().map(|v| &v.version), new = ?entry.new.as_ref().map(|v| &v.version), "audit");
        if !self.stream.push(fields(&entry)) {
            tracing::error!("audit queue full: this entry is only in the log");
        }
    }
}
