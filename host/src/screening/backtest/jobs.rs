//! Backtests as admin jobs (`POST /v1/admin/backtests`, `GET …/{id}`): each runs
//! on a thread of its own, one at a time (a second is refused while one runs),
//! and reports its progress as it goes. The newest 20 jobs are kept in this
//! process's memory (a restart forgets them; their results are also in the
//! audit trail). What a job computes is the caller's (the screening admin routes).

use super::Progress;
use palisade_core::now_ms;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Jobs kept, newest first.
const KEEP: usize = 20;

pub struct Job {
    pub id: String,
    /// What was asked (shown back with the job).
    pub request: Value,
    created_ms: u64,
    done: AtomicU64,
    /// 0: not known yet (a stream range without a limit).
    total: AtomicU64,
    outcome: Mutex<Outcome>,
}

enum Outcome {
    Running,
    Done { result: Value, finished_ms: u64 },
    Failed { error: String, finished_ms: u64 },
}

impl Progress for Job {
    fn total(&self, n: u64) {
        self.total.store(n, Ordering::Relaxed);
    }
    fn advance(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
    }
}

impl Job {
    pub fn running(&self) -> bool {
        matches!(*self.outcome.lock().expect("job lock"), Outcome::Running)
    }

    /// The job as the admin API shows it: state, progress, and the result or error.
    pub fn view(&self) -> Value {
        let (done, total) = (self.done.load(Ordering::Relaxed), self.total.load(Ordering::Relaxed));
        let mut out = json!({
            "id": self.id,
            "request": self.request,
            "created_ms": self.created_ms,
            "progress": { "done": done, "total": (total > 0).then_some(total) },
        });
        match &*self.outcome.lock().expect("job lock") {
            Outcome::Running => out["state"] = json!("running"),
            Outcome::Done { result, finished_ms } => {
                out["state"] = json!("done");
                out["finished_ms"] = json!(finished_ms);
                out["result"] = result.clone();
            }
            Outcome::Failed { error, finished_ms } => {
                out["state"] = json!("failed");
                out["finished_ms"] = json!(finished_ms);
                out["error"] = json!(error);
            }
        }
        out
    }
}

#[derive(Default)]
pub struct Jobs {
    jobs: Mutex<VecDeque<Arc<Job>>>,
    next: AtomicU64,
}

impl Jobs {
    /// Run `work` as a new job; `Err` holds the id of the job still running.
    pub fn start(
        &self,
        request: Value,
        work: impl FnOnce(&Job) -> anyhow::Result<Value> + Send + 'static,
    ) -> Result<Arc<Job>, String> {
        let mut jobs = self.jobs.lock().expect("jobs lock");
        if let Some(running) = jobs.iter().find(|j| j.running()) {
            return Err(running.id.clone());
        }
        let job = Arc::new(Job {
            id: format!("bt-{}-{}", now_ms(), self.next.fetch_add(1, Ordering::Relaxed)),
            request,
            created_ms: now_ms(),
            done: AtomicU64::new(0),
            total: AtomicU64::new(0),
            outcome: Mutex::new(Outcome::Running),
        });
        jobs.push_front(job.clone());
        jobs.truncate(KEEP);
        let worker = job.clone();
        let spawned = std::thread::Builder::new().name("backtest".into()).spawn(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&worker)));
            let finished_ms = now_ms();
            *worker.outcome.lock().expect("job lock") = match result {
                Ok(Ok(result)) => Outcome::Done { result, finished_ms },
                Ok(Err(e)) => Outcome::Failed { error: format!("{e:#}"), finished_ms },
                Err(_) => Outcome::Failed { error: "the backtest panicked (see the log)".into(), finished_ms },
            };
        });
        if let Err(e) = spawned {
            *job.outcome.lock().expect("job lock") =
                Outcome::Failed { error: format!("no thread for the job: {e}"), finished_ms: now_ms() };
        }
        Ok(job)
    }

    pub fn get(&self, id: &str) -> Option<Arc<Job>> {
        self.jobs.lock().expect("jobs lock").iter().find(|j| j.id == id).cloned()
    }

    /// Every kept job, newest first.
    pub fn list(&self) -> Vec<Value> {
        self.jobs.lock().expect("jobs lock").iter().map(|j| j.view()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait(job: &Job) -> Value {
        while job.running() {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        job.view()
    }

    #[test]
    fn a_job_reports_progress_and_result_and_one_runs_at_a_time() {
        let jobs = Jobs::default();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let first = jobs
            .start(json!({"n": 1}), move |p| {
                p.total(4);
                p.advance(1);
                rx.recv().ok();
                p.advance(3);
                Ok(json!({"answer": 42}))
            })
            .unwrap();
        while first.done.load(Ordering::Relaxed) == 0 {
            std::thread::yield_now();
        }
        assert_eq!(first.view()["progress"], json!({"done": 1, "total": 4}));
        assert_eq!(first.view()["state"], "running");
        assert_eq!(jobs.start(json!({}), |_| Ok(Value::Null)).err(), Some(first.id.clone()), "one at a time");
        tx.send(()).unwrap();
        let view = wait(&first);
        assert_eq!((view["state"].as_str(), view["result"]["answer"].as_u64()), (Some("done"), Some(42)));
        let failed = jobs.start(json!({}), |_| anyhow::bail!("no such stream")).unwrap();
        assert_eq!(wait(&failed)["error"], "no such stream");
        assert_eq!(jobs.list().len(), 2);
        assert_eq!(jobs.get(&first.id).unwrap().view()["state"], "done");
    }
}
