//! Repeat offenders get a lower bar. For each batch: one `labels` call for the
//! authors; for the events whose author holds one of the `labels` settings, one
//! `classify` call; a message whose risk (1 − P(LOW_RISK)) reaches `bar` fires
//! with `score` and its most likely harmful category, so it goes to review
//! although the classifier alone would have let it pass. Authors without the
//! label cost one label lookup per batch and nothing else.

use palisade_sdk::lend::{self, EntityLabel};
use palisade_sdk::{Event, Heuristic, RuleHit, Settings, Verdict};

pub struct RepeatOffender {
    labels: Vec<String>,
    bar: f32,
    score: f32,
}

impl RepeatOffender {
    /// The first of our labels this author holds.
    fn marked<'a>(&self, held: &'a [EntityLabel]) -> Option<&'a EntityLabel> {
        held.iter().find(|l| self.labels.contains(&l.label))
    }
}

impl Heuristic for RepeatOffender {
    fn new(settings: &Settings) -> Result<Self, String> {
        let labels = settings.list("labels");
        if labels.is_empty() {
            return Err("`labels` must name at least one label".into());
        }
        Ok(RepeatOffender { labels, bar: settings.f32_or("bar", 0.25)?, score: settings.f32_or("score", 0.9)? })
    }

    fn score(&self, event: &Event) -> Verdict {
        self.score_batch(std::slice::from_ref(event)).remove(0)
    }

    fn score_batch(&self, events: &[Event]) -> Vec<Verdict> {
        let authors: Vec<String> = events.iter().map(Event::author_entity).collect();
        let held = lend::labels(&authors);
        let marked: Vec<(usize, &EntityLabel)> =
            held.iter().enumerate().filter_map(|(i, h)| self.marked(h).map(|l| (i, l))).collect();
        let mut verdicts = vec![Verdict::default(); events.len()];
        if marked.is_empty() {
            return verdicts;
        }
        let texts: Vec<String> = marked.iter().map(|(i, _)| events[*i].content.clone()).collect();
        let scores = lend::classify(&texts);
        for ((i, label), s) in marked.into_iter().zip(scores) {
            let risk = s.risk();
            if let Some((category, _)) = s.top_risky().filter(|_| risk >= self.bar) {
                let detail = format!(
                    "{} holds `{}` ({}); risk {risk:.2} ≥ {:.2}, most likely {}",
                    label.entity,
                    label.label,
                    label.reason,
                    self.bar,
                    category.as_str()
                );
                verdicts[i] = Verdict::from_hits(vec![RuleHit {
                    rule: "repeat-offender".into(),
                    weight: self.score,
                    category: Some(category),
                    detail: Some(detail),
                }]);
            }
        }
        verdicts
    }
}

palisade_sdk::export_heuristic!(RepeatOffender);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::Category;
    use palisade_sdk::lend::CategoryScores;
    use palisade_sdk::testing::{Harness, lend_classify, lend_label};

    fn event(user: &str, text: &str) -> Event {
        Event { user_id: user.into(), content: text.into(), ..Event::default() }
    }

    #[test]
    fn a_labelled_authors_borderline_message_fires_and_others_do_not() {
        let h = Harness::<RepeatOffender>::heuristic_from_manifest(include_str!("../plugin.toml"));
        lend_label("user:troll", "repeat-offender", "three strikes");
        let borderline = CategoryScores(vec![(Category::LowRisk, 0.6), (Category::Toxic, 0.3)]);
        lend_classify("you are pathetic", borderline);
        let verdicts =
            h.plugin.score_batch(&[event("troll", "you are pathetic"), event("someone", "you are pathetic")]);
        assert_eq!(verdicts[0].score, 0.9);
        assert_eq!(verdicts[0].category, Some(Category::Toxic));
        assert!(verdicts[0].hits[0].detail.as_deref().unwrap().contains("three strikes"));
        assert_eq!(verdicts[1].score, 0.0, "an author without the label is left alone");
    }

    #[test]
    fn a_labelled_authors_harmless_message_stays_quiet() {
        let h = Harness::<RepeatOffender>::heuristic_from_manifest(include_str!("../plugin.toml"));
        lend_label("user:troll2", "repeat-offender", "spam");
        lend_classify("see you at lunch", CategoryScores(vec![(Category::LowRisk, 0.95), (Category::Spam, 0.03)]));
        assert_eq!(h.plugin.score_batch(&[event("troll2", "see you at lunch")])[0].score, 0.0);
    }
}
