//! The backlog of `events:raw` (summed over its shards) and whether Redis
//! answers, refreshed in the background (not per request). Backlog = the
//! screening group's lag (entries not yet delivered) plus its pending entries
//! (delivered, not acknowledged); where no group exists yet, the stream's length.

use super::{RedisConn, SCREENING_GROUP};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

pub struct Depth {
    streams: Vec<String>,
    backlog: AtomicU64,
    redis_ok: AtomicBool,
}

impl Depth {
    /// Watch the backlog of these streams (the raw stream's shards), summed.
    pub fn new(streams: Vec<String>) -> Arc<Self> {
        Arc::new(Depth { streams, backlog: AtomicU64::new(0), redis_ok: AtomicBool::new(false) })
    }

    /// Refresh now (also what the background task runs).
    pub async fn refresh(&self, conn: &mut RedisConn) {
        match self.total(conn).await {
            Ok(n) => {
                self.backlog.store(n, Ordering::Relaxed);
                self.redis_ok.store(true, Ordering::Relaxed);
            }
            Err(e) => {
                if self.redis_ok.swap(false, Ordering::Relaxed) {
                    tracing::error!(error = %e, "Redis unreachable");
                }
            }
        }
    }

    async fn total(&self, conn: &mut RedisConn) -> redis::RedisResult<u64> {
        let mut sum = 0;
        for stream in &self.streams {
            sum += backlog(conn, stream).await?;
        }
        Ok(sum)
    }

    /// Refresh every `every` on the current runtime.
    pub fn watch(self: &Arc<Self>, mut conn: RedisConn, every: Duration) {
        let depth = self.clone();
        tokio::spawn(async move {
            loop {
                depth.refresh(&mut conn).await;
                tokio::time::sleep(every).await;
            }
        });
    }
}

async fn backlog(conn: &mut RedisConn, stream: &str) -> redis::RedisResult<u64> {
    let groups: redis::Value = redis::cmd("XINFO").arg("GROUPS").arg(stream).query_async(conn).await.or_else(|e| {
        // No stream yet: nothing is waiting.
        if e.to_string().contains("no such key") { Ok(redis::Value::Array(Vec::new())) } else { Err(e) }
    })?;
    if let redis::Value::Array(groups) = groups {
        for g in groups {
            let fields: std::collections::HashMap<String, redis::Value> = redis::from_redis_value(g)?;
            let name: Option<String> = fields.get("name").and_then(|v| redis::from_redis_value(v.clone()).ok());
            if name.as_deref() == Some(SCREENING_GROUP) {
                let num = |k: &str| fields.get(k).and_then(|v| redis::from_redis_value::<u64>(v.clone()).ok());
                let pending = num("pending").unwrap_or(0);
                // `lag` is nil when Redis cannot tell (after deletions): fall back to the length.
                let lag = match num("lag") {
                    Some(lag) => lag,
                    None => redis::cmd("XLEN").arg(stream).query_async::<u64>(conn).await?.saturating_sub(pending),
                };
                return Ok(lag + pending);
            }
        }
    }
    redis::cmd("XLEN").arg(stream).query_async(conn).await
}

impl super::Backlog for Depth {
    fn backlog(&self) -> u64 {
        self.backlog.load(Ordering::Relaxed)
    }

    fn redis_ok(&self) -> bool {
        self.redis_ok.load(Ordering::Relaxed)
    }
}
