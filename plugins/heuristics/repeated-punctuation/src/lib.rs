//! Repeated punctuation: runs like `!!!!` or `?!?!?` (emphatic, spammy tone).

use palisade_sdk::{Category, Event, Heuristic, RuleHit, Settings, Verdict, text};

pub struct RepeatedPunctuation {
    min_run: usize,
    max_weight: f32,
    category: Category,
}

impl Heuristic for RepeatedPunctuation {
    fn new(settings: &Settings) -> Result<Self, String> {
        let category = settings.get("category").unwrap_or_else(|| "SPAM".into());
        Ok(RepeatedPunctuation {
            min_run: settings.usize_or("min_run", 4)?.max(2),
            max_weight: settings.f32_or("max_weight", 0.35)?,
            category: Category::parse(&category).ok_or(format!("setting `category`: unknown `{category}`"))?,
        })
    }

    fn score(&self, event: &Event) -> Verdict {
        let run = text::repeated_punctuation(&event.content);
        if run < self.min_run {
            return Verdict::clean();
        }
        // Half the cap at the threshold, the full cap at three times it.
        let extra = (run - self.min_run) as f32 / (2 * self.min_run) as f32;
        Verdict::from_hits(vec![RuleHit {
            rule: "repeated-punctuation".into(),
            weight: self.max_weight * (0.5 + 0.5 * extra.min(1.0)),
            category: Some(self.category),
            detail: Some(format!("run of {run} punctuation marks")),
        }])
    }
}

palisade_sdk::export_heuristic!(RepeatedPunctuation);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::testing::Harness;

    #[test]
    fn long_runs_fire_and_grow() {
        let h = Harness::<RepeatedPunctuation>::heuristic_from_manifest(include_str!("../plugin.toml"));
        assert_eq!(h.score_text("really?! ok...").score, 0.0);
        let four = h.score_text("WIN NOW!!!!");
        let many = h.score_text("WIN NOW!!!!!!!!!!!!");
        assert!(four.score > 0.0 && many.score > four.score, "{four:?} {many:?}");
    }
}
