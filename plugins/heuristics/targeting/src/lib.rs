//! Targeted harassment: an insult aimed at someone — a second-person marker
//! ("you", "ur", "you're") or an @mention within a few words before an insult.

use palisade_sdk::text::{self, KeywordSet};
use palisade_sdk::{Category, Event, Heuristic, RuleHit, Settings, Verdict};

pub struct Targeting {
    targets: KeywordSet,
    insults: KeywordSet,
    window: usize,
    weight: f32,
}

impl Heuristic for Targeting {
    fn new(settings: &Settings) -> Result<Self, String> {
        let (targets, insults) = (KeywordSet::new(settings.list("targets")), KeywordSet::new(settings.list("insults")));
        if targets.is_empty() || insults.is_empty() {
            return Err("settings `targets` and `insults` must both list words".into());
        }
        Ok(Targeting {
            targets,
            insults,
            window: settings.usize_or("window", 4)?,
            weight: settings.f32_or("weight", 0.85)?,
        })
    }

    fn score(&self, event: &Event) -> Verdict {
        let words = text::words(&event.content);
        let mentioned = !text::mentions(&event.content).is_empty();
        // The insult must start within `window` words after a target marker.
        let mut hit = None;
        for start in 0..words.len() {
            let Some(target) = self.targets.find_in(&words, start, start + 1).into_iter().next() else {
                continue;
            };
            let window_end = start + 2 + self.window;
            if let Some(insult) = self.insults.find_in(&words, start + 1, window_end).into_iter().next() {
                hit = Some(format!("\"{target}\" … \"{insult}\""));
                break;
            }
        }
        if hit.is_none() && mentioned {
            hit = self.insults.find(&words).into_iter().next().map(|i| format!("@mention … \"{i}\""));
        }
        let Some(detail) = hit else {
            return Verdict::clean();
        };
        Verdict::from_hits(vec![RuleHit {
            rule: "targeting".into(),
            weight: self.weight,
            category: Some(Category::TargetedHarassment),
            detail: Some(detail),
        }])
    }
}

palisade_sdk::export_heuristic!(Targeting);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::testing::Harness;

    fn rule() -> Harness<Targeting> {
        Harness::heuristic_from_manifest(include_str!("../plugin.toml"))
    }

    #[test]
    fn insults_at_a_person_fire() {
        for text in ["you are such a pathetic loser", "ur so stupid", "@dave is a total clown", "You're an 1d10t"] {
            let v = rule().score_text(text);
            assert_eq!(v.category, Some(Category::TargetedHarassment), "{text}: {v:?}");
        }
    }

    #[test]
    fn insults_not_aimed_at_anyone_do_not_fire() {
        assert_eq!(rule().score_text("that movie was stupid").score, 0.0);
        assert_eq!(rule().score_text("you are amazing, thank you").score, 0.0);
    }
}
