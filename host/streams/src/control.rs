//! `events:control`: operators' changes that every replica follows. A change made
//! through one process's admin API (a plugin's rollback, disable or enable; the
//! classifier's rollback) is appended here with the state it leads to (the
//! plugin's version and sha256 or the classifier's version, enabled or not) and the process it
//! came from; every other process reads the stream every half second and brings
//! its own plugin directory and classifier to that state. Because an entry names
//! a state, not a step, applying it where that state already holds (a replica
//! sharing the directory, which saw the files change) does nothing. Processes
//! follow from the moment they start: a change made while a replica with a
//! directory of its own was down reaches it through that directory only
//! (docs/deploy.md). Capped at 10,000 entries. Applying is the caller's job.

use super::RedisConn;
use super::capped::CappedStream;
use serde::{Deserialize, Serialize};
use std::time::Duration;

const KEEP: usize = 10_000;
const QUEUE: usize = 1_000;

/// What an operator did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    PluginRollback,
    PluginDisable,
    PluginEnable,
    ClassifierRollback,
}

impl Action {
    /// Its wire name (`plugin_rollback`, …), as the stream entry's `action` field holds it.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::PluginRollback => "plugin_rollback",
            Action::PluginDisable => "plugin_disable",
            Action::PluginEnable => "plugin_enable",
            Action::ClassifierRollback => "classifier_rollback",
        }
    }
}

/// One change, as every replica applies it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub action: Action,
    /// The plugin's name (`classifier` for the classifier).
    pub subject: String,
    /// The version it leads to: a plugin's `VERSION@SHA256`, the classifier's version.
    pub to: Option<String>,
    /// Who made it (the admin key's id).
    pub actor: String,
    /// The process it was made in.
    pub origin: String,
}

pub struct ControlStream {
    key: String,
    /// This process, as its entries name it.
    pub origin: String,
    stream: CappedStream,
}

impl ControlStream {
    /// Start the writer on the current runtime.
    pub fn start(conn: RedisConn, key: &str) -> Self {
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let origin = format!("{}-{}-{nanos:x}", host.trim(), std::process::id());
        ControlStream { key: key.to_string(), origin, stream: CappedStream::start(conn, key, KEEP, QUEUE) }
    }

    /// Tell the other replicas (queued; written in the background).
    pub fn publish(&self, action: Action, subject: &str, to: Option<String>, actor: &str) {
        let change = Change { action, subject: subject.into(), to, actor: actor.into(), origin: self.origin.clone() };
        let json = serde_json::to_string(&change).unwrap_or_default();
        if !self.stream.push(vec![("action", action.as_str().to_string()), ("change", json)]) {
            tracing::error!(
                action = action.as_str(),
                subject,
                "the control stream's queue is full: other replicas will not hear this change"
            );
        }
    }

    /// Read the changes other processes make from now on, every 500 ms, and hand
    /// each to `apply` (on a blocking thread: it may touch files).
    pub fn follow(&self, mut conn: RedisConn, apply: impl Fn(Change) + Send + Sync + 'static) {
        let (key, origin) = (self.key.clone(), self.origin.clone());
        let apply = std::sync::Arc::new(apply);
        tokio::spawn(async move {
            let mut last = String::from("$");
            loop {
                if last == "$" {
                    // Start after the newest entry there is (none: from the beginning).
                    let newest: redis::RedisResult<redis::streams::StreamRangeReply> =
                        redis::AsyncCommands::xrevrange_count(&mut conn, &key, "+", "-", 1).await;
                    match newest {
                        Ok(r) => last = r.ids.first().map_or_else(|| "0".into(), |e| e.id.clone()),
                        Err(e) => tracing::warn!(error = %e, "cannot read the control stream yet"),
                    }
                } else {
                    let opts = redis::streams::StreamReadOptions::default().count(100);
                    let read: redis::RedisResult<redis::streams::StreamReadReply> =
                        redis::AsyncCommands::xread_options(&mut conn, &[&key], &[&last], &opts).await;
                    match read {
                        Ok(reply) => {
                            for entry in reply.keys.into_iter().flat_map(|k| k.ids) {
                                last = entry.id.clone();
                                let change: Option<Change> =
                                    entry.get::<String>("change").and_then(|j| serde_json::from_str(&j).ok());
                                if let Some(change) = change.filter(|c| c.origin != origin) {
                                    let apply = apply.clone();
                                    let _ = tokio::task::spawn_blocking(move || apply(change)).await;
                                }
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "reading the control stream failed; retrying"),
                    }
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
    }
}
