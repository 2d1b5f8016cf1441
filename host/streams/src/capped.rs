//! A capped stream written in the background: appends are queued and written by
//! one task (`XADD … MAXLEN ~ keep`), so the caller never waits on Redis; an
//! append that meets a Redis outage is retried until it is written, and past
//! `queue` waiting entries new ones are dropped (and logged). The audit trail
//! (`events:audit`) and the shadow samples (`events:shadow`) are written so.

use super::RedisConn;
use std::time::Duration;
use tokio::sync::mpsc;

/// The fields of one entry, in order.
pub type Fields = Vec<(&'static str, String)>;

pub struct CappedStream {
    pub key: String,
    tx: mpsc::Sender<Fields>,
}

impl CappedStream {
    /// Start the writer on the current runtime.
    pub fn start(conn: RedisConn, key: &str, keep: usize, queue: usize) -> Self {
        let (tx, mut rx) = mpsc::channel::<Fields>(queue);
        let (mut writer, stream) = (conn, key.to_string());
        tokio::spawn(async move {
            while let Some(fields) = rx.recv().await {
                let command = xadd(&stream, keep, &fields);
                loop {
                    let written: redis::RedisResult<String> = command.query_async(&mut writer).await;
                    match written {
                        Ok(_) => break,
                        Err(e) => {
                            tracing::warn!(error = %e, stream = %stream, "stream entry not written yet; retrying");
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                    }
                }
            }
        });
        CappedStream { key: key.to_string(), tx }
    }

    /// Queue one entry; false when the queue is full (the entry is dropped).
    pub fn push(&self, fields: Fields) -> bool {
        self.tx.try_send(fields).is_ok()
    }
}

/// One trimmed append.
pub fn xadd(key: &str, keep: usize, fields: &Fields) -> redis::Cmd {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(key).arg("MAXLEN").arg("~").arg(keep).arg("*");
    for (name, value) in fields {
        cmd.arg(*name).arg(value);
    }
    cmd
}

/// The newest `count` entries of `key`, newest first, each the JSON of its
/// `field` with the stream id added as `id` (entries without it are skipped).
pub async fn recent_json(
    conn: &mut RedisConn,
    key: &str,
    field: &str,
    count: usize,
) -> redis::RedisResult<Vec<serde_json::Value>> {
    let reply: redis::streams::StreamRangeReply =
        redis::cmd("XREVRANGE").arg(key).arg("+").arg("-").arg("COUNT").arg(count).query_async(conn).await?;
    Ok(reply
        .ids
        .into_iter()
        .filter_map(|id| {
            let json: String = id.get(field)?;
            let mut entry: serde_json::Value = serde_json::from_str(&json).ok()?;
            entry["id"] = serde_json::Value::String(id.id);
            Some(entry)
        })
        .collect())
}
