//! Stated intent to harm people (VIOLENCE): an intent marker ("i'm going to",
//! "i will", "tomorrow i"), a violent verb within a few words after it, and a
//! person or group within a few words after the verb. "Kill the process" has no
//! person; "we will beat them" has no violent verb from the list; "I'll shoot you
//! an email" is dropped by `not_after_target`.

use palisade_sdk::text::{self, KeywordSet};
use palisade_sdk::{Category, Event, Heuristic, RuleHit, Settings, Verdict};

pub struct ViolentIntent {
    intents: KeywordSet,
    verbs: KeywordSet,
    targets: KeywordSet,
    not_after_target: KeywordSet,
    window: usize,
    weight: f32,
}

impl Heuristic for ViolentIntent {
    fn new(settings: &Settings) -> Result<Self, String> {
        let set = |name: &str| KeywordSet::new(settings.list(name));
        let rule = ViolentIntent {
            intents: set("intents"),
            verbs: set("verbs"),
            targets: set("targets"),
            not_after_target: set("not_after_target"),
            window: settings.usize_or("window", 4)?,
            weight: settings.f32_or("weight", 0.85)?,
        };
        if rule.intents.is_empty() || rule.verbs.is_empty() || rule.targets.is_empty() {
            return Err("settings `intents`, `verbs` and `targets` must each list words".into());
        }
        Ok(rule)
    }

    fn score(&self, event: &Event) -> Verdict {
        let words = text::words(&event.content);
        for start in 0..words.len() {
            let Some((intent, n)) = self.intents.at(&words, start) else { continue };
            let after_intent = start + n;
            let Some((verb, v, vn)) = self.verbs.first_in(&words, after_intent, after_intent + self.window + 1) else {
                continue;
            };
            let after_verb = v + vn;
            let Some((target, t, tn)) = self.targets.first_in(&words, after_verb, after_verb + self.window + 1) else {
                continue;
            };
            if self.not_after_target.at(&words, t + tn).is_some() {
                continue;
            }
            return Verdict::from_hits(vec![RuleHit {
                rule: "violent-intent".into(),
                weight: self.weight,
                category: Some(Category::Violence),
                detail: Some(format!("\"{intent}\" … \"{verb}\" … \"{target}\"")),
            }]);
        }
        Verdict::clean()
    }
}

palisade_sdk::export_heuristic!(ViolentIntent);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::testing::Harness;

    fn rule() -> Harness<ViolentIntent> {
        Harness::heuristic_from_manifest(include_str!("../plugin.toml"))
    }

    #[test]
    fn stated_intent_to_harm_people_fires() {
        for text in [
            "I'm going to bring a gun to school and shoot everyone",
            "tomorrow i will stab my teacher",
            "im gonna shoot up the school",
            "we are going to burn their houses down",
            "I will poison him at dinner",
        ] {
            let v = rule().score_text(text);
            assert_eq!(v.category, Some(Category::Violence), "{text}: {v:?}");
            assert!(v.score >= 0.8, "{text}: {v:?}");
        }
    }

    #[test]
    fn everyday_uses_of_violent_words_do_not_fire() {
        for text in [
            "I'm going to kill the process and restart it",
            "we will beat them in the final",
            "I'll shoot you an email tomorrow",
            "going to shoot some photos at the lake",
            "this traffic is killing me",
            "I'm going to smash this workout",
        ] {
            assert_eq!(rule().score_text(text).score, 0.0, "{text}");
        }
    }
}
