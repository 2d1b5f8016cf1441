//! A one-line progress bar on stderr for long CLI work (imports, evaluation, load).

use std::io::Write;
use std::time::{Duration, Instant};

pub struct Progress {
    what: String,
    total: u64,
    done: u64,
    started: Instant,
    last: Instant,
}

impl Progress {
    pub fn new(what: &str, total: u64) -> Self {
        let now = Instant::now();
        Progress { what: what.into(), total, done: 0, started: now, last: now - Duration::from_secs(1) }
    }

    pub fn inc(&mut self, n: u64) {
        self.done += n;
        if self.last.elapsed() >= Duration::from_millis(250) || self.done >= self.total {
            self.last = Instant::now();
            self.draw();
        }
    }

    fn draw(&self) {
        let share = if self.total == 0 { 1.0 } else { self.done as f64 / self.total as f64 };
        let bar = (share.clamp(0.0, 1.0) * 30.0) as usize;
        let rate = self.done as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
        eprint!(
            "\r{:<22} [{}{}] {:>3.0}%  {}/{}  {:.0}/s   ",
            self.what,
            "#".repeat(bar),
            ".".repeat(30 - bar),
            share * 100.0,
            self.done,
            self.total,
            rate
        );
        let _ = std::io::stderr().flush();
    }

    pub fn finish(self) {
        self.draw();
        eprintln!("  ({:.1} s)", self.started.elapsed().as_secs_f64());
    }
}
