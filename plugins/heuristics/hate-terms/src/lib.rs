//! Slurs and dehumanising language (HATE_SPEECH): keyword list on normalised text; extend it per community in the manifest.

use palisade_sdk::Category;

palisade_sdk::keyword_heuristic!(Rule, "hate-terms", Category::HateSpeech, 0.8);

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
