//! Retention of the event streams (`STREAM_RETENTION_SECONDS`): entries older
//! than the window are trimmed (`XTRIM … MINID ~`, whole radix-tree nodes at a
//! time), but never one that a consumer group still needs. In one atomic script,
//! the trim point is held at or below every group's last-delivered ID and its
//! oldest pending entry, so an undelivered or unacknowledged entry survives
//! however old it is. Each screening consumer trims its own shard's streams.

use super::RedisConn;
use std::time::Duration;

const TRIM: &str = r#"
local function older(a, b)
  local am, as = string.match(a, '(%d+)-(%d+)')
  local bm, bs = string.match(b, '(%d+)-(%d+)')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am < bm or (am == bm and as < bs)
end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local cut = ARGV[1]
for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local name, delivered
  for i = 1, #g, 2 do
    if g[i] == 'name' then name = g[i + 1] elseif g[i] == 'last-delivered-id' then delivered = g[i + 1] end
  end
  if older(delivered, cut) then cut = delivered end
  local pending = redis.call('XPENDING', KEYS[1], name)
  if pending[1] > 0 and older(pending[2], cut) then cut = pending[2] end
end
return redis.call('XTRIM', KEYS[1], 'MINID', '~', cut)
"#;

/// Trim each stream to the entries of the last `keep` (held back by its groups,
/// as above); how many entries went.
pub async fn trim(conn: &mut RedisConn, streams: &[&str], keep: Duration) -> redis::RedisResult<u64> {
    static SCRIPT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| redis::Script::new(TRIM));
    let cut = format!("{}-0", palisade_core::now_ms().saturating_sub(keep.as_millis() as u64));
    let mut trimmed = 0;
    for stream in streams {
        trimmed += SCRIPT.key(*stream).arg(&cut).invoke_async::<u64>(conn).await?;
    }
    Ok(trimmed)
}
