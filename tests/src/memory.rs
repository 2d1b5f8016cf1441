//! In-memory stand-ins for the services' storage seams ([`EventSink`],
//! [`Backlog`]), so HTTP behaviour (every 4xx/5xx path, auth, answers) is tested
//! with `tower::ServiceExt::oneshot` and no Redis. The Redis implementations keep
//! their own real-Redis tests; these only stand in for the storage behind the routes.

use palisade_core::BoxFuture;
use palisade_streams::producer::{Entry, Produced};
use palisade_streams::{Backlog, EventSink, StreamError};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Keeps produced entries in order, with dedup by key (no expiry); `fail` makes
/// every produce answer as an unreachable Redis would.
#[derive(Default)]
pub struct MemorySink {
    pub entries: Mutex<Vec<Entry>>,
    first_by_key: Mutex<HashMap<String, String>>,
    pub fail: AtomicBool,
}

impl EventSink for MemorySink {
    fn produce(&self, entries: Vec<Entry>) -> BoxFuture<'_, Result<Vec<Produced>, StreamError>> {
        Box::pin(async move {
            if self.fail.load(Ordering::Relaxed) {
                return Err(StreamError::Unavailable("the in-memory sink was told to fail".into()));
            }
            let mut stored = self.entries.lock().unwrap();
            let mut first = self.first_by_key.lock().unwrap();
            Ok(entries
                .into_iter()
                .map(|e| match first.get(&e.dedup_hash) {
                    Some(id) => Produced::Duplicate { duplicate_of: id.clone() },
                    None => {
                        let stream_id = format!("{}-0", stored.len() + 1);
                        first.insert(e.dedup_hash.clone(), stream_id.clone());
                        stored.push(e);
                        Produced::Accepted { stream_id }
                    }
                })
                .collect())
        })
    }
}

/// A backlog set by the test.
pub struct FixedBacklog {
    pub events: AtomicU64,
    pub redis_ok: AtomicBool,
}

impl Default for FixedBacklog {
    fn default() -> Self {
        FixedBacklog { events: AtomicU64::new(0), redis_ok: AtomicBool::new(true) }
    }
}

impl Backlog for FixedBacklog {
    fn backlog(&self) -> u64 {
        self.events.load(Ordering::Relaxed)
    }

    fn redis_ok(&self) -> bool {
        self.redis_ok.load(Ordering::Relaxed)
    }
}
