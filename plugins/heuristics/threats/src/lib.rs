//! Threats of violence and incitement to self-harm (VIOLENCE): phrase list on normalised text.

use palisade_sdk::Category;

palisade_sdk::keyword_heuristic!(Rule, "threats", Category::Violence, 0.7);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::testing::Harness;

    #[test]
    fn fires_on_listed_terms_only() {
        let h = Harness::<Rule>::heuristic_from_manifest(include_str!("../plugin.toml"));
        for text in ["I will kill you", "im gonna b3at you up", "KYS loser", "you will die tonight"] {
            let v = h.score_text(text);
            assert_eq!(v.category, Some(Category::Violence), "{text}: {v:?}");
            assert!(v.score >= 0.7, "{text}: {v:?}");
        }
        for text in ["this game is killing me", "we will beat them in the final"] {
            assert_eq!(h.score_text(text).score, 0.0, "{text}");
        }
    }
}
