//! ALL-CAPS shouting: a high share of uppercase letters in a long enough message.

use palisade_sdk::{Category, Event, Heuristic, RuleHit, Settings, Verdict, text};

pub struct CapsShouting {
    min_ratio: f32,
    min_letters: usize,
    max_weight: f32,
}

impl Heuristic for CapsShouting {
    fn new(settings: &Settings) -> Result<Self, String> {
        Ok(CapsShouting {
            min_ratio: settings.f32_or("min_ratio", 0.7)?,
            min_letters: settings.usize_or("min_letters", 10)?,
            max_weight: settings.f32_or("max_weight", 0.4)?,
        })
    }

    fn score(&self, event: &Event) -> Verdict {
        let (ratio, letters) = text::caps_ratio(&event.content);
        if letters < self.min_letters || ratio < self.min_ratio {
            return Verdict::clean();
        }
        // Scale from half the cap at the threshold to the full cap at 100 % caps.
        let span = (1.0 - self.min_ratio).max(f32::EPSILON);
        let weight = self.max_weight * (0.5 + 0.5 * (ratio - self.min_ratio) / span);
        Verdict::from_hits(vec![RuleHit {
            rule: "caps-shouting".into(),
            weight,
            category: Some(Category::Toxic),
            detail: Some(format!("{:.0}% of {letters} letters uppercase", ratio * 100.0)),
        }])
    }
}

palisade_sdk::export_heuristic!(CapsShouting);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::testing::Harness;

    #[test]
    fn shouting_fires_and_short_acronyms_do_not() {
        let h = Harness::<CapsShouting>::heuristic_from_manifest(include_str!("../plugin.toml"));
        let v = h.score_text("WHY WOULD YOU EVER DO THAT");
        assert!(v.score > 0.3, "{v:?}");
        assert_eq!(h.score_text("OK, see you at NASA HQ").score, 0.0);
        assert_eq!(h.score_text("LOL").score, 0.0);
    }
}
