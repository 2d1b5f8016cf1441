//! Offensive language: profanity and insults from a configurable keyword list (TOXIC).

use palisade_sdk::Category;

palisade_sdk::keyword_heuristic!(OffensiveLanguage, "offensive-language", Category::Toxic, 0.55);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::testing::Harness;

    fn rule() -> Harness<OffensiveLanguage> {
        Harness::heuristic_from_manifest(include_str!("../plugin.toml"))
    }

    #[test]
    fn profanity_scores_toxic_and_more_words_score_higher() {
        let one = rule().score_text("this is bullshit");
        assert_eq!(one.category, Some(Category::Toxic));
        let two = rule().score_text("sh1t, you stuuupid idiots");
        assert!(two.score > one.score, "{two:?}");
        assert!(two.hits[0].detail.as_deref().unwrap().contains("idiots"));
    }

    #[test]
    fn clean_and_embedded_words_do_not_fire() {
        assert_eq!(rule().score_text("a classic assessment of Scunthorpe").score, 0.0);
        assert_eq!(rule().score_text("thanks, see you tomorrow").hits.len(), 0);
    }
}
