//! `events:audit`, the audit trail in Redis: an [`AuditSink`] whose entries are
//! queued and written by one task (`XADD … MAXLEN ~ 100000`), so recording never
//! blocks a reload or a screening call, and an entry that meets a Redis outage
//! is retried until it is written (up to 10,000 waiting; past that the oldest
//! news is the reload log line). Read back newest first by `GET /v1/admin/audit`.

use crate::core::audit::{AuditEntry, AuditSink};
use redis::aio::ConnectionManager;
use std::time::Duration;
use tokio::sync::mpsc;

/// Entries kept in the stream (approximately: Redis trims whole nodes).
const KEEP: usize = 100_000;
/// Entries waiting for Redis before new ones are dropped (and logged).
const QUEUE: usize = 10_000;

pub struct AuditStream {
    conn: ConnectionManager,
    key: String,
    tx: mpsc::Sender<AuditEntry>,
}

impl AuditStream {
    /// Start the writer on the current runtime.
    pub fn start(conn: ConnectionManager, key: &str) -> Self {
        let (tx, mut rx) = mpsc::channel::<AuditEntry>(QUEUE);
        let (mut writer, stream) = (conn.clone(), key.to_string());
        tokio::spawn(async move {
            while let Some(entry) = rx.recv().await {
                let command = xadd(&stream, &entry);
                loop {
                    let written: redis::RedisResult<String> = command.query_async(&mut writer).await;
                    match written {
                        Ok(_) => break,
                        Err(e) => {
                            tracing::warn!(error = %e, action = entry.action, "audit entry not written yet; retrying");
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                    }
                }
            }
        });
        AuditStream { conn, key: key.to_string(), tx }
    }

    /// The newest `count` entries, newest first.
    pub async fn recent(&self, count: usize) -> redis::RedisResult<Vec<serde_json::Value>> {
        let reply: redis::streams::StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(&self.key)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(count)
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(reply
            .ids
            .into_iter()
            .filter_map(|id| {
                let json: String = id.get("entry")?;
                let mut entry: serde_json::Value = serde_json::from_str(&json).ok()?;
                entry["id"] = serde_json::Value::String(id.id);
                Some(entry)
            })
            .collect())
    }
}

/// Append one entry now, from a command-line tool (no runtime needed); fails fast
/// when Redis does not answer.
pub fn append_now(url: &str, key: &str, entry: &AuditEntry) -> redis::RedisResult<()> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_connection_with_timeout(Duration::from_secs(2))?;
    conn.set_read_timeout(Some(Duration::from_secs(2)))?;
    xadd(key, entry).query(&mut conn)
}

/// The entry as a trimmed append to the stream.
fn xadd(key: &str, entry: &AuditEntry) -> redis::Cmd {
    let json = serde_json::to_string(entry).expect("audit entries serialise");
    let mut cmd = redis::cmd("XADD");
    cmd.arg(key).arg("MAXLEN").arg("~").arg(KEEP).arg("*");
    cmd.arg("action").arg(entry.action).arg("subject").arg(&entry.subject).arg("entry").arg(json);
    cmd
}

impl AuditSink for AuditStream {
    fn record(&self, entry: AuditEntry) {
        tracing::info!(target: "audit", action = entry.action, actor = %entry.actor, subject = %entry.subject,
            old = ?entry.old.as_ref().map(|v| &v.version), new = ?entry.new.as_ref().map(|v| &v.version), "audit");
        if let Err(e) = self.tx.try_send(entry) {
            tracing::error!(error = %e, "audit queue full: this entry is only in the log");
        }
    }
}
