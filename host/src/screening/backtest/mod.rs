//! `palisade backtest` and the install gate: a candidate version — of a rule plugin
//! or of the classifier — scored against the active one without touching
//! production. Over labelled files: P/R/F1 per category for both, and the rows
//! whose verdict changed. Over a range of stream history: verdict flips by
//! category and risk deltas, read with `XRANGE` only (no consumer group, no
//! acknowledgement, nothing written). A verdict is screening's without the
//! embedding stage: the rule plugins, then the classifier when one is configured
//! (with its rule override), else the weighted rule score. Long work reports to a
//! [`Progress`]: a bar on the command line, a job's counters behind
//! `POST /v1/admin/backtests` (`jobs`).

pub mod jobs;

pub use crate::screening::compare::{Comparison, FlippedEvent, Verdict};
use palisade_core::Event;
use palisade_detect::classify::Classifier;
use palisade_detect::predict::{self, DecisionPolicy, Prediction};
use palisade_detect::scores::{Scores, to_data_labels};
use palisade_detect::vectors::bank::Labelled;
use palisade_plugins::rules::{self, RuleResult};
use palisade_plugins::{PluginHost, PluginMetrics, PluginVersion, Runtime, install};
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;

/// One way of screening: rule plugins, and the classifier when there is one.
pub struct Side {
    pub plugins: Arc<PluginHost>,
    pub classifier: Option<Arc<Classifier>>,
    pub policy: DecisionPolicy,
}

/// Where long work reports how far it got.
pub trait Progress: Sync {
    /// The work's size, when known.
    fn total(&self, n: u64);
    fn advance(&self, n: u64);
}

/// No progress shown (the gate, tests).
pub struct Quiet;

impl Progress for Quiet {
    fn total(&self, _: u64) {}
    fn advance(&self, _: u64) {}
}

impl Progress for indicatif::ProgressBar {
    fn total(&self, n: u64) {
        self.set_length(n);
    }
    fn advance(&self, n: u64) {
        self.inc(n);
    }
}

impl Side {
    pub fn verdicts(&self, events: &[Event]) -> Vec<Verdict> {
        let mut out = Vec::with_capacity(events.len());
        for chunk in events.chunks(256) {
            for (event, r) in chunk.iter().zip(rules::score(&self.plugins, chunk)) {
                let p = self.decide(event.clone(), r);
                out.push(Verdict { category: p.category, risk: p.risk_score });
            }
        }
        out
    }

    fn decide(&self, event: Event, r: RuleResult) -> Prediction {
        match &self.classifier {
            Some(c) => {
                let scored = c.score(&event.content, &r);
                predict::classified(event, r, &scored, &c.meta.version, None, &self.policy)
            }
            None => predict::predict(event, r, None, self.policy),
        }
    }
}

/// A copy of the plugin directory `active_dir` (its `.toml` + `.wasm` pairs) in a
/// temporary folder, with `wasm` + `manifest` installed there in place of (or
/// beside) the plugin of that name; compiled through the active directory's cache.
pub fn candidate_plugins(
    active_dir: &Path,
    wasm: &[u8],
    manifest: &str,
) -> anyhow::Result<(tempfile::TempDir, Arc<PluginHost>, Arc<PluginVersion>)> {
    let tmp = tempfile::tempdir()?;
    for entry in std::fs::read_dir(active_dir)?.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        let pair = path.extension().is_some_and(|e| e == "toml" || e == "wasm");
        if pair && !name.starts_with('.') {
            std::fs::copy(&path, tmp.path().join(&name))?;
        }
    }
    // An operator's disables hold for the candidate's side too.
    if let Ok(disabled) = std::fs::read_dir(active_dir.join(".disabled")) {
        std::fs::create_dir_all(tmp.path().join(".disabled"))?;
        for entry in disabled.flatten() {
            std::fs::copy(entry.path(), tmp.path().join(".disabled").join(entry.file_name()))?;
        }
    }
    let runtime = Runtime::new(Some(install::cache_dir(active_dir)))?;
    let version = install::install(&runtime, tmp.path(), wasm, manifest)?;
    let metrics = PluginMetrics::register(&prometheus::Registry::new())?;
    let host = PluginHost::open_offline(runtime, tmp.path(), metrics, Default::default());
    Ok((tmp, host, version))
}

/// A labelled row whose verdict the candidate changes.
#[derive(Debug, Clone, Serialize)]
pub struct ChangedRow {
    pub id: String,
    pub label: String,
    pub text: String,
    pub active: Verdict,
    pub candidate: Verdict,
}

#[derive(Debug, Clone, Serialize)]
pub struct LabelledReport {
    pub active: Scores,
    pub candidate: Scores,
    /// How many rows changed category.
    pub changed_total: usize,
    /// The first `show` of them.
    pub changed: Vec<ChangedRow>,
}

impl LabelledReport {
    /// Per category: F1 active → candidate (and P/R), then the changed rows.
    pub fn render(&self) -> String {
        let mut out =
            format!("{:<22} {:>17} {:>17} {:>17} {:>8}\n", "category", "precision", "recall", "f1", "support");
        for (category, a) in &self.active.per_category {
            let c = self.candidate.per_category.get(category).copied().unwrap_or(palisade_detect::scores::Stat {
                precision: 0.0,
                recall: 0.0,
                f1: 0.0,
                support: a.support,
            });
            let pair = |x: f64, y: f64| format!("{x:.3} → {y:.3}");
            out += &format!(
                "{category:<22} {:>17} {:>17} {:>17} {:>8}{}\n",
                pair(a.precision, c.precision),
                pair(a.recall, c.recall),
                pair(a.f1, c.f1),
                a.support,
                if (c.f1 - a.f1).abs() >= 0.0005 { format!("  ({:+.3})", c.f1 - a.f1) } else { String::new() }
            );
        }
        out += &format!(
            "weighted F1 {:.3} → {:.3}   macro F1 {:.3} → {:.3}   accuracy {:.3} → {:.3}   ({} rows)\n",
            self.active.weighted_f1,
            self.candidate.weighted_f1,
            self.active.macro_f1,
            self.candidate.macro_f1,
            self.active.accuracy,
            self.candidate.accuracy,
            self.active.rows
        );
        out += &format!("{} rows changed category", self.changed_total);
        if !self.changed.is_empty() {
            out += &format!(" (first {}):\n", self.changed.len());
            for r in &self.changed {
                out += &format!(
                    "  {:<14} label {:<20} {} → {}  {:?}\n",
                    r.id, r.label, r.active.category, r.candidate.category, r.text
                );
            }
        } else {
            out += "\n";
        }
        out
    }
}

/// Both sides over labelled rows (scored against the labels each data set has).
pub fn labelled(
    active: &Side,
    candidate: &Side,
    rows: &[Labelled],
    show: usize,
    progress: &dyn Progress,
) -> LabelledReport {
    let events: Vec<Event> = rows.iter().map(|r| Event::sample(&r.text)).collect();
    progress.total(rows.len() as u64 * 2);
    let a = active.verdicts(&events);
    progress.advance(rows.len() as u64);
    let c = candidate.verdicts(&events);
    progress.advance(rows.len() as u64);
    let truth: Vec<String> = rows.iter().map(|r| r.label.clone()).collect();
    let labels = |v: &[Verdict]| to_data_labels(&truth, v.iter().map(|v| v.category.to_string()).collect());
    let changed: Vec<ChangedRow> = rows
        .iter()
        .zip(a.iter().zip(&c))
        .filter(|(_, (a, c))| a.category != c.category)
        .map(|(r, (a, c))| ChangedRow {
            id: r.id.clone(),
            label: r.label.clone(),
            text: r.text.chars().take(120).collect(),
            active: *a,
            candidate: *c,
        })
        .collect();
    LabelledReport {
        active: Scores::of(&truth, &labels(&a)),
        candidate: Scores::of(&truth, &labels(&c)),
        changed_total: changed.len(),
        changed: changed.into_iter().take(show).collect(),
    }
}

/// A category whose F1 the candidate lowers by more than the gate allows.
#[derive(Debug, Clone, Serialize)]
pub struct F1Drop {
    pub category: String,
    pub active: f64,
    pub candidate: f64,
}

impl std::fmt::Display for F1Drop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "F1 of {} drops {:.3} ({:.3} → {:.3})",
            self.category,
            self.active - self.candidate,
            self.active,
            self.candidate
        )
    }
}

/// The gate: every category the gate set labels whose F1 falls by more than
/// `max_drop` (worst first); empty when the candidate may go in.
pub fn gate(report: &LabelledReport, max_drop: f64) -> Vec<F1Drop> {
    let mut drops: Vec<F1Drop> = report
        .active
        .per_category
        .iter()
        .filter(|(_, s)| s.support > 0)
        .filter_map(|(category, a)| {
            let c = report.candidate.per_category.get(category).map_or(0.0, |s| s.f1);
            (a.f1 - c > max_drop + 1e-12).then(|| F1Drop { category: category.clone(), active: a.f1, candidate: c })
        })
        .collect();
    drops.sort_by(|x, y| (y.active - y.candidate).total_cmp(&(x.active - x.candidate)));
    drops
}

/// The gate's verdict on a candidate: the figures it rests on (kept in the audit
/// trail) and the categories that fell too far (none: it passes).
#[derive(Debug, Clone, Serialize)]
pub struct GateOutcome {
    /// The gate set: a file, or `request` (rows sent to the admin API).
    pub source: String,
    pub rows: usize,
    pub max_f1_drop: f64,
    pub weighted_f1: BothSides,
    pub changed_rows: usize,
    pub drops: Vec<F1Drop>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct BothSides {
    pub active: f64,
    pub candidate: f64,
}

impl GateOutcome {
    /// Both sides over the gate set.
    pub fn check(active: &Side, candidate: &Side, rows: &[Labelled], source: &str, max_drop: f64) -> Self {
        let report = labelled(active, candidate, rows, 0, &Quiet);
        GateOutcome {
            source: source.into(),
            rows: rows.len(),
            max_f1_drop: max_drop,
            weighted_f1: BothSides { active: report.active.weighted_f1, candidate: report.candidate.weighted_f1 },
            changed_rows: report.changed_total,
            drops: gate(&report, max_drop),
        }
    }

    pub fn passed(&self) -> bool {
        self.drops.is_empty()
    }

    /// One line: why it was refused (worst category first), or what it passed on.
    pub fn summary(&self) -> String {
        let (a, c) = (self.weighted_f1.active, self.weighted_f1.candidate);
        match self.drops.split_first() {
            Some((worst, more)) => format!(
                "refused by the gate ({}, {} rows): {worst} — more than the allowed {}{}; nothing was changed",
                self.source,
                self.rows,
                self.max_f1_drop,
                match more {
                    [] => String::new(),
                    more => format!(" (also {})", more.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("; ")),
                }
            ),
            None => format!(
                "gate passed ({}, {} rows): weighted F1 {a:.3} → {c:.3}, no category down more than {}; {} rows changed",
                self.source, self.rows, self.max_f1_drop, self.changed_rows
            ),
        }
    }
}

/// Where stream history is read: the Redis (one, or a cluster), the key layout
/// that names a stream's shards, and the answer timeout.
#[derive(Clone)]
pub struct History {
    pub target: palisade_streams::Target,
    pub keys: palisade_streams::Keys,
    pub timeout: std::time::Duration,
}

/// A range of stream history: `XRANGE stream from to` over each of `streams`
/// (one, or a stream's shards: [`palisade_streams::Keys::streams_named`]), at most
/// `limit` entries in all, shared evenly (a shard's unused share passes on).
pub struct StreamRange {
    pub streams: Vec<String>,
    pub from: String,
    pub to: String,
    pub limit: Option<u64>,
}

impl StreamRange {
    /// `streams` from `since` ago (`24h`) or from id `from` (not both; neither: the
    /// start) to id `to` (default: the end).
    pub fn new(
        streams: Vec<String>,
        since: Option<&str>,
        from: Option<&str>,
        to: Option<&str>,
        limit: Option<u64>,
        now_ms: u64,
    ) -> Result<Self, String> {
        let from = match (since, from) {
            (Some(_), Some(_)) => return Err("give `since` or `from`, not both".into()),
            (Some(since), None) => since_id(since, now_ms)?,
            (None, Some(from)) => from.to_string(),
            (None, None) => "-".into(),
        };
        Ok(StreamRange { streams, from, to: to.unwrap_or("+").to_string(), limit })
    }

    /// `events:raw -..+`, or `events:raw:{0} + 2 more shards -..+`.
    pub fn title(&self) -> String {
        let more = match self.streams.len() {
            0 | 1 => String::new(),
            n => format!(" + {} more shards", n - 1),
        };
        format!("{}{more} {}..{}", self.streams.first().map_or("", String::as_str), self.from, self.to)
    }
}

/// The start of a range `since` ago (`90s`, `30m`, `24h`, `7d`) as a stream id.
pub fn since_id(since: &str, now_ms: u64) -> Result<String, String> {
    let (n, unit) = since.split_at(since.find(|c: char| !c.is_ascii_digit()).unwrap_or(since.len()));
    let n: u64 = n.parse().map_err(|_| format!("`{since}`: say how long, like 90s, 30m, 24h or 7d"))?;
    let ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("`{since}`: the unit is s, m, h or d")),
    };
    Ok(format!("{}-0", now_ms.saturating_sub(n * ms)))
}

/// Both sides over a range of stream history, shard after shard, 500 entries
/// per `XRANGE`. Reads only: the streams, their groups and their pending lists
/// stay as they were.
pub async fn stream(
    conn: &mut impl redis::aio::ConnectionLike,
    range: &StreamRange,
    active: &Side,
    candidate: &Side,
    sample: usize,
    progress: &dyn Progress,
) -> anyhow::Result<Comparison> {
    let mut out = Comparison::default();
    if let Some(limit) = range.limit {
        progress.total(limit);
    }
    let mut read = 0u64;
    for (i, stream) in range.streams.iter().enumerate() {
        // This stream's share of what the limit leaves: an even split, rounded up.
        let share = range.limit.map(|l| (l - read).div_ceil((range.streams.len() - i) as u64));
        let (mut from, mut got) = (range.from.clone(), 0u64);
        loop {
            let count = share.map_or(500, |l| (l - got).min(500));
            if count == 0 {
                break;
            }
            let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
                .arg(stream)
                .arg(&from)
                .arg(&range.to)
                .arg("COUNT")
                .arg(count)
                .query_async(conn)
                .await?;
            let Some(last) = reply.ids.last().map(|e| e.id.clone()) else { break };
            got += reply.ids.len() as u64;
            let mut ids = Vec::new();
            let mut events = Vec::new();
            for entry in &reply.ids {
                let raw: Option<String> = entry.get("event");
                match raw.as_deref().map(serde_json::from_str::<Event>) {
                    Some(Ok(e)) => {
                        ids.push(entry.id.clone());
                        events.push(e);
                    }
                    _ => out.unparseable += 1,
                }
            }
            let (a, c) = (active.verdicts(&events), candidate.verdicts(&events));
            for ((id, e), (a, c)) in ids.iter().zip(&events).zip(a.into_iter().zip(c)) {
                out.add(id, &e.event_id, a, c, sample);
            }
            progress.advance(reply.ids.len() as u64);
            // The next page starts after the last id read (`(` excludes it).
            from = format!("({last}");
            if (reply.ids.len() as u64) < count {
                break;
            }
        }
        read += got;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_reads_durations_and_refuses_others() {
        assert_eq!(since_id("24h", 100_000_000).unwrap(), "13600000-0");
        assert_eq!(since_id("90s", 100_000).unwrap(), "10000-0");
        assert!(since_id("1w", 0).unwrap_err().contains("unit"));
        assert!(since_id("h", 0).unwrap_err().contains("how long"));
    }
}
