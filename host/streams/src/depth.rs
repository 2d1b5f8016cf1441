//! The backlog of `events:raw` (summed over its shards) and whether Redis
//! answers, refreshed in the background (not per request). Backlog = the
//! screening group's entries not yet delivered (counted from IDs where Redis's
//! `lag` is wrong or unknown, as after a restart: see `BACKLOG`) plus its
//! pending entries (delivered, not acknowledged); where no group exists yet,
//! the stream's length.

use super::{RedisConn, SCREENING_GROUP};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

pub struct Depth {
    streams: Vec<String>,
    /// Refreshes so far (every 20th checks Redis's `lag` against a count).
    refreshes: AtomicU64,
    backlog: AtomicU64,
    redis_ok: AtomicBool,
}

impl Depth {
    /// Watch the backlog of these streams (the raw stream's shards), summed.
    pub fn new(streams: Vec<String>) -> Arc<Self> {
        Arc::new(Depth {
            streams,
            refreshes: AtomicU64::new(0),
            backlog: AtomicU64::new(0),
            redis_ok: AtomicBool::new(false),
        })
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
        let check = self.refreshes.fetch_add(1, Ordering::Relaxed).is_multiple_of(20);
        let mut sum = 0;
        for stream in &self.streams {
            sum += backlog(conn, stream, check).await?;
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

/// One stream's backlog, read from IDs in one atomic script. Redis's `lag` is
/// wrong after it restarts: an AOF replay leaves the group's `entries-read`
/// behind (it replays `XREADGROUP` as `XCLAIM … LASTID`), so `lag` overstates the
/// backlog for good, and until the group catches up it is nil. So:
/// - when the group has delivered up to the stream's last ID, nothing is
///   undelivered, whatever `lag` says;
/// - when `lag` is nil, or on a check (`ARGV[2] == '1'`, every few seconds), the
///   entries after the last-delivered ID are counted (up to 10,000);
/// - either way a wrong `entries-read` is set right (`XGROUP SETID` to the same
///   ID, so no entry is delivered twice or skipped), and Redis's `lag` is exact
///   from then on.
///
/// Backlog = undelivered + pending.
const BACKLOG: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local function field(flat, name)
  for i = 1, #flat, 2 do if flat[i] == name then return flat[i + 1] end end
end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
local length, added = field(info, 'length'), field(info, 'entries-added')
for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  if field(g, 'name') == ARGV[1] then
    local pending, delivered, lag = field(g, 'pending'), field(g, 'last-delivered-id'), field(g, 'lag')
    if delivered == field(info, 'last-generated-id') then
      if lag ~= 0 then redis.call('XGROUP', 'SETID', KEYS[1], ARGV[1], delivered, 'ENTRIESREAD', added) end
      return pending
    end
    if (not lag) or (ARGV[2] == '1' and lag <= 10000) then
      local after = #redis.call('XRANGE', KEYS[1], '(' .. delivered, '+', 'COUNT', 10001)
      if after <= 10000 then
        if after ~= lag then
          redis.call('XGROUP', 'SETID', KEYS[1], ARGV[1], delivered, 'ENTRIESREAD', added - after)
        end
        return after + pending
      end
      if not lag then lag = math.max(length - pending, after) end
    end
    return lag + pending
  end
end
return length
"#;

async fn backlog(conn: &mut RedisConn, stream: &str, check: bool) -> redis::RedisResult<u64> {
    static SCRIPT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| redis::Script::new(BACKLOG));
    SCRIPT.key(stream).arg(SCREENING_GROUP).arg(if check { "1" } else { "0" }).invoke_async(conn).await
}

impl super::Backlog for Depth {
    fn backlog(&self) -> u64 {
        self.backlog.load(Ordering::Relaxed)
    }

    fn redis_ok(&self) -> bool {
        self.redis_ok.load(Ordering::Relaxed)
    }
}
