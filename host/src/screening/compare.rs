//! Comparing two ways of screening the same events: verdict flips by category
//! pair, risk deltas by tenth, and a bounded sample of the events that flipped.
//! Shared by live shadow candidates (`shadow`) and `palisade backtest`.

use palisade_vocab::Category;
use serde::Serialize;
use std::collections::BTreeMap;

/// An event's verdict under one side.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Verdict {
    pub category: Category,
    pub risk: f32,
}

/// An event whose verdict the candidate changes.
#[derive(Debug, Clone, Serialize)]
pub struct FlippedEvent {
    pub stream_id: String,
    pub event_id: String,
    pub active: Verdict,
    pub candidate: Verdict,
}

/// Flips and risk deltas between both sides over events without labels.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Comparison {
    pub compared: u64,
    pub agreed: u64,
    /// `ACTIVE→CANDIDATE` category pairs that differ, with counts.
    pub flips: BTreeMap<String, u64>,
    /// Candidate risk − active risk, in tenths: `-1.0..-0.9` … `0.9..1.0`; a zero
    /// delta is counted in `0.0..0.1`.
    pub risk_delta: BTreeMap<String, u64>,
    /// The first flipped events (bounded).
    pub sample: Vec<FlippedEvent>,
    /// Entries skipped: no `event` field or not an event.
    pub unparseable: u64,
}

impl Comparison {
    pub fn add(&mut self, stream_id: &str, event_id: &str, a: Verdict, c: Verdict, sample: usize) {
        self.compared += 1;
        let delta = c.risk - a.risk;
        let bucket = ((delta * 10.0).floor() as i32).clamp(-10, 9);
        let label = format!("{:.1}..{:.1}", bucket as f32 / 10.0, (bucket + 1) as f32 / 10.0);
        *self.risk_delta.entry(label).or_default() += 1;
        if a.category == c.category {
            self.agreed += 1;
            return;
        }
        *self.flips.entry(format!("{}→{}", a.category, c.category)).or_default() += 1;
        if self.sample.len() < sample {
            self.sample.push(FlippedEvent {
                stream_id: stream_id.into(),
                event_id: event_id.into(),
                active: a,
                candidate: c,
            });
        }
    }

    pub fn agreement(&self) -> f64 {
        if self.compared == 0 { 1.0 } else { self.agreed as f64 / self.compared as f64 }
    }

    /// A printable report under `title` (what was compared).
    pub fn render(&self, title: &str) -> String {
        let mut out = format!(
            "{title}: {} events compared, agreement {:.2} % ({} unparseable entries skipped)\n",
            self.compared,
            self.agreement() * 100.0,
            self.unparseable
        );
        out += "flips (active → candidate):\n";
        for (pair, n) in &self.flips {
            out += &format!("  {pair:<32} {n}\n");
        }
        out += "risk delta (candidate − active):\n";
        let mut deltas: Vec<(&String, &u64)> = self.risk_delta.iter().collect();
        deltas.sort_by(|a, b| bucket_start(a.0).total_cmp(&bucket_start(b.0)));
        for (bucket, n) in deltas {
            out += &format!("  {bucket:<12} {n}\n");
        }
        if !self.sample.is_empty() {
            out += &format!("first {} flipped events:\n", self.sample.len());
            for f in &self.sample {
                out += &format!(
                    "  {} {:<24} {} ({:.2}) → {} ({:.2})\n",
                    f.stream_id, f.event_id, f.active.category, f.active.risk, f.candidate.category, f.candidate.risk
                );
            }
        }
        out
    }
}

/// The lower bound of a `lo..hi` bucket label, for ordering.
fn bucket_start(label: &str) -> f32 {
    label.split("..").next().and_then(|s| s.parse().ok()).unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flips_and_deltas_are_counted_by_pair_and_tenth() {
        let v = |category, risk| Verdict { category: Category::parse(category).unwrap(), risk };
        let mut c = Comparison::default();
        c.add("1-0", "a", v("LOW_RISK", 0.1), v("LOW_RISK", 0.15), 5);
        c.add("2-0", "b", v("LOW_RISK", 0.2), v("TOXIC", 0.9), 5);
        c.add("3-0", "c", v("SPAM", 0.8), v("LOW_RISK", 0.1), 5);
        assert_eq!((c.compared, c.agreed), (3, 1));
        assert_eq!(c.flips["LOW_RISK→TOXIC"], 1);
        assert_eq!(c.flips["SPAM→LOW_RISK"], 1);
        assert_eq!(c.risk_delta["0.0..0.1"], 1);
        assert_eq!(c.risk_delta["0.7..0.8"], 1);
        assert_eq!(c.risk_delta["-0.7..-0.6"], 1);
        assert_eq!(c.sample.len(), 2);
    }
}
