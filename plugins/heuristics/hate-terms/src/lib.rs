//! Slurs and dehumanising language (HATE_SPEECH): keyword list on normalised text; extend it per community in the manifest.

use palisade_sdk::rules::KeywordRule;
use palisade_sdk::{Category, Event, Heuristic, Settings, Verdict, text};

pub struct Rule(KeywordRule);

impl Heuristic for Rule {
    fn new(settings: &Settings) -> Result<Self, String> {
        KeywordRule::from_settings("hate-terms", settings, Category::HateSpeech, &[], 0.8).map(Rule)
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
        for text in ["go back to your country you wetback", "those people are subhuman vermin"] {
            let v = h.score_text(text);
            assert_eq!(v.category, Some(Category::HateSpeech), "{text}: {v:?}");
            assert!(v.score >= 0.8, "{text}: {v:?}");
        }
        for text in ["the pest control got rid of the vermin", "back to the country house"] {
            assert_eq!(h.score_text(text).score, 0.0, "{text}");
        }
    }
}
