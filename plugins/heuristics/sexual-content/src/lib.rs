//! Sexual content (SEXUAL): keyword list on normalised text.

use palisade_sdk::Category;

palisade_sdk::keyword_heuristic!(Rule, "sexual-content", Category::Sexual, 0.6);

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
