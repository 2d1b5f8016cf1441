//! Repeated characters: one letter or symbol stretched into a long run.

use palisade_sdk::{Category, Event, Heuristic, RuleHit, Settings, Verdict, text};

pub struct RepeatedCharacters {
    min_run: usize,
    max_weight: f32,
}

impl Heuristic for RepeatedCharacters {
    fn new(settings: &Settings) -> Result<Self, String> {
        Ok(RepeatedCharacters {
            min_run: settings.usize_or("min_run", 5)?.max(2),
            max_weight: settings.f32_or("max_weight", 0.3)?,
        })
    }

    fn score(&self, event: &Event) -> Verdict {
        // Punctuation runs belong to repeated-punctuation; digits (amounts, codes) are not stretching.
        let run =
            text::longest_run(&event.content, |c| !c.is_whitespace() && !c.is_ascii_digit() && !"!?.".contains(c));
        match run {
            Some((c, n)) if n >= self.min_run => {
                let extra = (n - self.min_run) as f32 / (2 * self.min_run) as f32;
                Verdict::from_hits(vec![RuleHit {
                    rule: "repeated-characters".into(),
                    weight: self.max_weight * (0.5 + 0.5 * extra.min(1.0)),
                    category: Some(Category::Spam),
                    detail: Some(format!("`{c}` repeated {n} times")),
                }])
            }
            _ => Verdict::clean(),
        }
    }
}

palisade_sdk::export_heuristic!(RepeatedCharacters);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::testing::Harness;

    #[test]
    fn stretched_words_fire_numbers_do_not() {
        let h = Harness::<RepeatedCharacters>::heuristic_from_manifest(include_str!("../plugin.toml"));
        assert!(h.score_text("heyyyyyyyy").score > 0.0);
        assert_eq!(h.score_text("balloon bookkeeper").score, 0.0);
        assert_eq!(h.score_text("order 1000000 ok").score, 0.0);
    }
}
