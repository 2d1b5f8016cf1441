//! Dehumanising generalisations (HATE_SPEECH): a group of people named, then
//! within a few words a dehumanising or exclusionary predicate ("… are vermin",
//! "… should be deported"). Slurs are `hate-terms`' job; this catches hate written
//! in ordinary words, which the slur-driven labelled data does not teach.

use palisade_sdk::text::{self, KeywordSet};
use palisade_sdk::{Category, Event, Heuristic, RuleHit, Settings, Verdict};

pub struct Dehumanising {
    groups: KeywordSet,
    predicates: KeywordSet,
    window: usize,
    weight: f32,
}

impl Heuristic for Dehumanising {
    fn new(settings: &Settings) -> Result<Self, String> {
        let (groups, predicates) =
            (KeywordSet::new(settings.list("groups")), KeywordSet::new(settings.list("predicates")));
        if groups.is_empty() || predicates.is_empty() {
            return Err("settings `groups` and `predicates` must both list words".into());
        }
        Ok(Dehumanising {
            groups,
            predicates,
            window: settings.usize_or("window", 4)?,
            weight: settings.f32_or("weight", 0.85)?,
        })
    }

    fn score(&self, event: &Event) -> Verdict {
        let words = text::words(&event.content);
        for start in 0..words.len() {
            let Some((group, n)) = self.groups.at(&words, start) else { continue };
            let after = start + n;
            if let Some((predicate, _, _)) = self.predicates.first_in(&words, after, after + self.window + 1) {
                return Verdict::from_hits(vec![RuleHit {
                    rule: "dehumanising".into(),
                    weight: self.weight,
                    category: Some(Category::HateSpeech),
                    detail: Some(format!("\"{group}\" … \"{predicate}\"")),
                }]);
            }
        }
        Verdict::clean()
    }
}

palisade_sdk::export_heuristic!(Dehumanising);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::testing::Harness;

    fn rule() -> Harness<Dehumanising> {
        Harness::heuristic_from_manifest(include_str!("../plugin.toml"))
    }

    #[test]
    fn dehumanising_generalisations_fire() {
        for text in [
            "Muslims are all terrorists and should be banned",
            "immigrants are vermin",
            "Refugees should all be deported now",
            "those people are animals",
        ] {
            let v = rule().score_text(text);
            assert_eq!(v.category, Some(Category::HateSpeech), "{text}: {v:?}");
        }
    }

    #[test]
    fn ordinary_talk_about_groups_does_not_fire() {
        for text in [
            "Muslims in our town organised a food drive",
            "immigrants built this city",
            "women's football is growing fast",
            "the rats in the subway are huge",
        ] {
            assert_eq!(rule().score_text(text).score, 0.0, "{text}");
        }
    }
}
