//! Test-only: asks the host, once per batch, for the 2 labelled examples nearest
//! each event, the classifier's scores and the labels of each author, and reports
//! the answers as hits (`similar`, `classify`, `labels`) so a test can compare them
//! with what the host holds.

use palisade_sdk::lend;
use palisade_sdk::{Event, Heuristic, RuleHit, Settings, Verdict};

pub struct LendEcho;

fn hit(rule: &str, detail: String) -> RuleHit {
    RuleHit { rule: rule.into(), weight: 0.01, category: None, detail: Some(detail) }
}

impl Heuristic for LendEcho {
    fn new(_: &Settings) -> Result<Self, String> {
        Ok(LendEcho)
    }

    fn score(&self, event: &Event) -> Verdict {
        self.score_batch(std::slice::from_ref(event)).remove(0)
    }

    fn score_batch(&self, events: &[Event]) -> Vec<Verdict> {
        let texts: Vec<String> = events.iter().map(|e| e.content.clone()).collect();
        let authors: Vec<String> = events.iter().map(Event::author_entity).collect();
        let (near, scores, labels) = (lend::similar(&texts, 2), lend::classify(&texts), lend::labels(&authors));
        near.into_iter()
            .zip(scores)
            .zip(labels)
            .map(|((near, scores), labels)| {
                let near: Vec<String> =
                    near.iter().map(|n| format!("{}={}={:.4}", n.id, n.label, n.similarity)).collect();
                let scores: Vec<String> = scores.0.iter().map(|(c, p)| format!("{}={p:.4}", c.as_str())).collect();
                let labels: Vec<String> = labels.iter().map(|l| format!("{}={}", l.entity, l.label)).collect();
                Verdict {
                    score: 0.01,
                    category: None,
                    hits: vec![
                        hit("similar", near.join(";")),
                        hit("classify", scores.join(";")),
                        hit("labels", labels.join(";")),
                    ],
                }
            })
            .collect()
    }
}

palisade_sdk::export_heuristic!(LendEcho);
