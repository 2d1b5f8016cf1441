//! Gauges both services export, read when Prometheus scrapes: the `events:raw`
//! backlog and whether Redis answered (from the backlog watcher), and the
//! process's memory against its limit (from `/proc` and the cgroup). Reads
//! state; changes none.

use super::names::*;
use crate::Backlog;
use prometheus::{IntGauge, Registry};

#[derive(Clone)]
pub struct Gauges {
    /// Shared with the ingest route (backpressure sets it per request too).
    pub queue_depth: IntGauge,
    redis_up: IntGauge,
    resident_memory: IntGauge,
    memory_limit: IntGauge,
}

impl Gauges {
    /// Registered once per registry (both services of a process share them).
    pub fn register(r: &Registry) -> prometheus::Result<Self> {
        let g = Gauges {
            queue_depth: IntGauge::new(INGEST_QUEUE_DEPTH, "Backlog of events:raw (group lag + pending).")?,
            redis_up: IntGauge::new(REDIS_UP, "1 when the last look at Redis (every 200–500 ms) succeeded, else 0.")?,
            resident_memory: IntGauge::new(PROCESS_RESIDENT_MEMORY, "Resident memory of this process.")?,
            memory_limit: IntGauge::new(
                PROCESS_MEMORY_LIMIT,
                "Memory this process may use: its container's cgroup limit, else the machine's memory.",
            )?,
        };
        for gauge in [&g.queue_depth, &g.redis_up, &g.resident_memory, &g.memory_limit] {
            r.register(Box::new(gauge.clone()))?;
        }
        Ok(g)
    }

    /// Bring every gauge up to date (before rendering `/metrics`).
    pub fn refresh(&self, backlog: Option<&dyn Backlog>) {
        if let Some(b) = backlog {
            self.queue_depth.set(b.backlog() as i64);
            self.redis_up.set(i64::from(b.redis_ok()));
        }
        if let Some(rss) = resident_bytes() {
            self.resident_memory.set(rss as i64);
        }
        if let Some(limit) = memory_limit_bytes() {
            self.memory_limit.set(limit as i64);
        }
    }
}

/// `VmRSS` of `/proc/self/status`.
fn resident_bytes() -> Option<u64> {
    kib_field(&std::fs::read_to_string("/proc/self/status").ok()?, "VmRSS:")
}

/// The cgroup v2 (`memory.max`) or v1 (`memory.limit_in_bytes`) limit; where there
/// is none ("max", or v1's huge sentinel), the machine's `MemTotal`.
fn memory_limit_bytes() -> Option<u64> {
    let cgroup = ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok()?.trim().parse::<u64>().ok())
        .filter(|limit| *limit < 1 << 60);
    cgroup.or_else(|| kib_field(&std::fs::read_to_string("/proc/meminfo").ok()?, "MemTotal:"))
}

/// A `Name:   1234 kB` line's value in bytes.
fn kib_field(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(name))?;
    let kib: u64 = line[name.len()..].trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_this_process() {
        let rss = super::resident_bytes().expect("VmRSS");
        let limit = super::memory_limit_bytes().expect("a limit");
        assert!(rss > 1 << 20 && rss < limit, "rss {rss} limit {limit}");
        assert_eq!(super::kib_field("VmRSS:\t  2048 kB\n", "VmRSS:"), Some(2 << 20));
    }
}
