//! Sexual content (SEXUAL): keyword list on normalised text.

use palisade_sdk::rules::KeywordRule;
use palisade_sdk::{Category, Event, Heuristic, Settings, Verdict, text};

pub struct Rule(KeywordRule);

impl Heuristic for Rule {
    fn new(settings: &Settings) -> Result<Self, String> {
        KeywordRule::from_settings("sexual-content", settings, Category::Sexual, &[], 0.6).map(Rule)
    }

    fn score(&self, event: &Event) -> Verdict {
        Verdict::from_hits(self.0.hit(&text::words(&event.content)).into_iter().collect())
    }
}

palisade_sdk::export_heuristic!(Rule);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::testing::Harness;

    #[test]
    fn fires_on_listed_terms_only() {
        let h = Harness::<Rule>::heuristic_from_manifest(include_str!("../plugin.toml"));
        for text in ["send nudes", "want to see my dick pic?", "hot singles in your area, xxx"] {
            let v = h.score_text(text);
            assert_eq!(v.category, Some(Category::Sexual), "{text}: {v:?}");
            assert!(v.score >= 0.6, "{text}: {v:?}");
        }
        for text in ["sexual harassment policy training", "the dickens novel"] {
            assert_eq!(h.score_text(text).score, 0.0, "{text}");
        }
    }
}
