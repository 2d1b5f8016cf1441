//! Faults a service survives but must not hide: a panic in a request's or a
//! batch's task. Each one is counted (`palisade_panics_total{where}`), logged
//! with its message, and kept here, so `/ready` reports the service `degraded`
//! (with where and how often) until it restarts: a bug that ate one answer
//! never leaves every signal green. Records; decides nothing.

use super::names::{PANICS, WHERE};
use prometheus::{IntCounterVec, Opts, Registry};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

#[derive(Clone)]
pub struct Faults {
    panics: IntCounterVec,
    /// Panics by where they happened: how many, and the last message.
    seen: Arc<Mutex<BTreeMap<String, (u64, String)>>>,
}

impl Faults {
    /// Registered once per registry (both services of a process share it).
    pub fn register(r: &Registry) -> prometheus::Result<Self> {
        let panics = IntCounterVec::new(
            Opts::new(PANICS, "Panics caught in a request's or a batch's task, by where (the service went on)."),
            &[WHERE],
        )?;
        r.register(Box::new(panics.clone()))?;
        Ok(Faults { panics, seen: Default::default() })
    }

    /// Count and keep a caught panic; returns its message.
    pub fn panicked(&self, at: &str, payload: &(dyn std::any::Any + Send)) -> String {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".into());
        self.panics.with_label_values(&[at]).inc();
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = seen.entry(at.to_string()).or_default();
        *entry = (entry.0 + 1, message.clone());
        tracing::error!(at, panic = %message, "a task panicked; its work was answered with an error");
        message
    }

    /// [`Faults::panicked`] for a blocking task that failed: its message (a task
    /// cancelled at shutdown is not a panic and is not counted).
    pub fn join_failed(&self, at: &str, e: tokio::task::JoinError) -> String {
        match e.try_into_panic() {
            Ok(payload) => self.panicked(at, payload.as_ref()),
            Err(e) => e.to_string(),
        }
    }

    /// Every place that panicked since start: `{where: {"count", "last"}}`.
    pub fn report(&self) -> serde_json::Map<String, serde_json::Value> {
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.iter().map(|(k, (n, last))| (k.clone(), serde_json::json!({ "count": n, "last": last }))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_task_is_counted_and_reported() {
        let r = Registry::new();
        let faults = Faults::register(&r).unwrap();
        assert!(faults.report().is_empty());
        let failed = tokio::task::spawn_blocking(|| -> u32 { panic!("range end index 384 out of range") }).await;
        let message = faults.join_failed("screen", failed.unwrap_err());
        assert!(message.contains("384"), "{message}");
        assert_eq!(faults.panics.with_label_values(&["screen"]).get(), 1);
        assert_eq!(faults.report()["screen"]["count"], 1);
        assert!(crate::telemetry::render(&r).contains("palisade_panics_total{where=\"screen\"} 1"));
    }
}
