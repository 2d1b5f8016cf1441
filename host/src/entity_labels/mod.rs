//! Entity labels (Osprey-style): what the platform knows about a user or a
//! channel — `repeat-offender`, `trusted-reviewer`, `spam-wave-2026-11` — set by
//! rules, reviewers or bulk jobs, each with a reason, a source and an optional
//! expiry, and read by plugins through the `labels` host function.
//!
//! Layout: one Redis hash per entity, `[prefix]labels:<entity>`, a field per
//! label holding the label as JSON. One Lua script changes a hash and sets its
//! TTL to the latest expiry of what it holds (none when a label never expires),
//! dropping expired labels, so a hash lives as long as its longest label; reads
//! also skip labels past their expiry. Entities are free text; the convention
//! plugins and the prediction use is `user:<id>` and `channel:<id>`
//! (`plugins::lending::entities_of`). The routes (`api`) audit every change.
//! Synchronous (plugins read it from the rule stage's threads); it must not
//! import a service module.

pub mod api;

use palisade_plugins::lending::{LabelSource, LentLabel};
use palisade_streams::conn::LazySync;
use palisade_streams::{SyncConn, Target};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A stored label: what plugins see, and who set it when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntityLabel {
    pub entity: String,
    pub label: String,
    /// `rule`, `reviewer` or `bulk`.
    pub source: String,
    pub reason: String,
    pub expires_at_ms: Option<u64>,
    pub set_at_ms: u64,
    /// The admin key's id (`key:…`) that set it.
    pub set_by: String,
}

impl EntityLabel {
    pub fn lent(&self) -> LentLabel {
        LentLabel {
            entity: self.entity.clone(),
            label: self.label.clone(),
            source: self.source.clone(),
            reason: self.reason.clone(),
            expires_at_ms: self.expires_at_ms,
        }
    }
}

/// The sources a label may name.
pub const SOURCES: [&str; 3] = ["rule", "reviewer", "bulk"];

/// Change one label and reset the hash's TTL to its latest expiry.
/// KEYS[1] the hash; ARGV: now_ms, `set`|`del`, label, label JSON (set).
/// Returns the label's previous JSON (or nil).
const CHANGE: &str = r#"
local old = redis.call('HGET', KEYS[1], ARGV[3])
if ARGV[2] == 'set' then redis.call('HSET', KEYS[1], ARGV[3], ARGV[4]) else redis.call('HDEL', KEYS[1], ARGV[3]) end
local now = tonumber(ARGV[1])
local latest, forever = 0, false
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local ok, l = pcall(cjson.decode, all[i + 1])
  local e = ok and l['expires_at_ms'] or nil
  if e == nil or e == cjson.null then forever = true
  elseif e <= now then redis.call('HDEL', KEYS[1], all[i])
  elseif e > latest then latest = e end
end
if forever then redis.call('PERSIST', KEYS[1]) elseif latest > 0 then redis.call('PEXPIREAT', KEYS[1], latest) end
return old
"#;

#[derive(Debug, thiserror::Error)]
#[error("label store: {0}")]
pub struct StoreError(String);

/// Entity labels in Redis, over one synchronous connection (reconnected after an
/// error; after a failed connect, calls fail at once for a second, so a Redis
/// outage does not hold every plugin call for the connect timeout).
pub struct LabelStore {
    conn: LazySync,
    /// `[prefix]labels:`
    key_prefix: String,
    script: redis::Script,
}

impl LabelStore {
    pub fn new(target: Target, prefix: &str) -> Self {
        LabelStore {
            conn: LazySync::new(target, Duration::from_millis(500)),
            key_prefix: format!("{prefix}labels:"),
            script: redis::Script::new(CHANGE),
        }
    }

    fn key(&self, entity: &str) -> String {
        format!("{}{entity}", self.key_prefix)
    }

    fn with_conn<T>(&self, f: impl FnMut(&mut SyncConn) -> redis::RedisResult<T>) -> Result<T, StoreError> {
        self.conn.with_conn(f).map_err(StoreError)
    }

    /// Apply `(entity, label, new)` changes (`None`: remove) in one pipelined
    /// round trip (each change atomic by itself); the labels they replaced. On a
    /// cluster each change is an `EVAL` (a cluster pipeline cannot load a script).
    fn change(&self, changes: &[(&str, &str, Option<&EntityLabel>)]) -> Result<Vec<Option<EntityLabel>>, StoreError> {
        let now = palisade_core::now_ms();
        // Each change: its key and the script's arguments.
        let calls: Vec<(String, [String; 4])> = changes
            .iter()
            .map(|(entity, label, new)| {
                let json = new.map(|l| serde_json::to_string(l).expect("a label serialises")).unwrap_or_default();
                let op = if new.is_some() { "set" } else { "del" };
                (self.key(entity), [now.to_string(), op.to_string(), label.to_string(), json])
            })
            .collect();
        let old: Vec<Option<String>> = self.with_conn(|c| match c {
            SyncConn::Single(c) => {
                let mut pipe = redis::pipe();
                pipe.load_script(&self.script).ignore();
                for (key, args) in &calls {
                    pipe.invoke_script(self.script.key(key).arg(args));
                }
                pipe.query(c)
            }
            cluster => cluster.pipeline(
                calls
                    .iter()
                    .map(|(key, args)| redis::cmd("EVAL").arg(CHANGE).arg(1).arg(key).arg(args).to_owned())
                    .collect(),
            ),
        })?;
        Ok(old.into_iter().map(|j| j.and_then(|j| serde_json::from_str(&j).ok())).collect())
    }

    /// Set (or replace) labels; returns the ones they replaced, in order.
    pub fn set_many(&self, labels: &[EntityLabel]) -> Result<Vec<Option<EntityLabel>>, StoreError> {
        let changes: Vec<_> = labels.iter().map(|l| (l.entity.as_str(), l.label.as_str(), Some(l))).collect();
        self.change(&changes)
    }

    /// Set (or replace) a label; returns the one it replaced.
    pub fn set(&self, label: &EntityLabel) -> Result<Option<EntityLabel>, StoreError> {
        Ok(self.set_many(std::slice::from_ref(label))?.pop().flatten())
    }

    /// Remove a label; returns it (`None`: the entity did not hold it).
    pub fn remove(&self, entity: &str, label: &str) -> Result<Option<EntityLabel>, StoreError> {
        Ok(self.change(&[(entity, label, None)])?.pop().flatten())
    }

    /// The unexpired labels of each entity, one pipelined round trip.
    pub fn get_many(&self, entities: &[String]) -> Result<Vec<Vec<EntityLabel>>, StoreError> {
        if entities.is_empty() {
            return Ok(Vec::new());
        }
        let hvals = || entities.iter().map(|e| redis::cmd("HVALS").arg(self.key(e)).to_owned()).collect();
        let values: Vec<Vec<String>> = self.with_conn(|c| c.pipeline(hvals()))?;
        let now = palisade_core::now_ms();
        Ok(values
            .into_iter()
            .map(|vs| {
                let mut labels: Vec<EntityLabel> = vs
                    .iter()
                    .filter_map(|v| serde_json::from_str::<EntityLabel>(v).ok())
                    .filter(|l| l.expires_at_ms.is_none_or(|t| t > now))
                    .collect();
                labels.sort_by(|a, b| a.label.cmp(&b.label));
                labels
            })
            .collect())
    }
}

impl LabelSource for LabelStore {
    fn labels(&self, entities: &[String]) -> Result<Vec<Vec<LentLabel>>, String> {
        let all = self.get_many(entities).map_err(|e| e.to_string())?;
        Ok(all.into_iter().map(|ls| ls.iter().map(EntityLabel::lent).collect()).collect())
    }
}
