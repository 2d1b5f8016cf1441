//! Test-only plugin that reports the `tag` setting in its verdict (so a caller can
//! tell versions apart) after `spin` rounds of busy work per batch (so a call can be
//! kept in flight across a reload).

use palisade_sdk::{Event, Heuristic, RuleHit, Settings, Verdict};

pub struct Probe {
    tag: String,
    score: f32,
    spin: usize,
}

impl Heuristic for Probe {
    fn new(settings: &Settings) -> Result<Self, String> {
        Ok(Probe {
            tag: settings.get("tag").unwrap_or_default(),
            score: settings.f32_or("score", 0.5)?,
            spin: settings.usize_or("spin", 0)?,
        })
    }

    fn score(&self, _: &Event) -> Verdict {
        Verdict::from_hits(vec![RuleHit {
            rule: "probe".into(),
            weight: self.score,
            category: None,
            detail: Some(self.tag.clone()),
        }])
    }

    fn score_batch(&self, events: &[Event]) -> Vec<Verdict> {
        let mut x: u64 = 1;
        for i in 0..self.spin {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i as u64));
        }
        events.iter().map(|e| self.score(e)).collect()
    }
}

palisade_sdk::export_heuristic!(Probe);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::testing::Harness;

    #[test]
    fn reports_its_tag() {
        let h = Harness::<Probe>::heuristic_from_manifest(include_str!("../plugin.toml"));
        assert_eq!(h.score_text("x").hits[0].detail.as_deref(), Some("v1"));
    }
}
