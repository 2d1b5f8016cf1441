//! The cascade: how the stages' results for one event become its prediction.
//! Rules and the classifier score every event; the embedding stage (the
//! classifier's embedding head over the event's vector, then its neighbours'
//! label mix) joins only for events whose classifier risk lies in the band; the
//! decision policy (`predict`) then names the category and the route.
//! Screening (`palisade::screening`) and `palisade eval` both call [`cascade`],
//! so the figures eval reports are what the service does. Pure: no I/O.

/// A closed interval within [0, 1], written `low,high`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Band {
    pub low: f32,
    pub high: f32,
}

impl Band {
    pub fn contains(&self, v: f32) -> bool {
        (self.low..=self.high).contains(&v)
    }
}

impl std::str::FromStr for Band {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (low, high) = s.split_once(',').ok_or("no comma")?;
        let (low, high): (f32, f32) =
            (low.trim().parse().map_err(|e| format!("{e}"))?, high.trim().parse().map_err(|e| format!("{e}"))?);
        if !(0.0 <= low && low <= high && high <= 1.0) {
            return Err("out of order or outside [0, 1]".into());
        }
        Ok(Band { low, high })
    }
}

use crate::classify::{Classifier, Scored};
use crate::predict::{self, DecisionPolicy, Prediction};
use crate::similarity;
use crate::vectors::Neighbour;
use palisade_core::Event;
use palisade_plugins::rules::RuleResult;

/// Whether an event of classifier risk `risk` reaches the embedding stage
/// (`band`: `CASCADE_BAND`; `None`, `CASCADE=off`: every event does).
pub fn in_band(band: Option<Band>, risk: f32) -> bool {
    band.is_none_or(|b| b.contains(risk))
}

/// What the embedding stage found for one event: its vector (empty: none) and
/// its nearest labelled examples (empty: none, or the kNN blend left out).
#[derive(Clone, Copy)]
pub struct Embedded<'a> {
    pub vector: &'a [f32],
    pub neighbours: &'a [Neighbour],
}

/// The embedding stage's say in one embedded event's classifier scores: the
/// classifier's embedding head over its vector, then its neighbours' label mix
/// (weight `knn_weight`, scaled by how close the nearest example is); decided again.
pub fn blend(classifier: &Classifier, scored: &mut Scored, embedded: Embedded<'_>, knn_weight: f32) {
    let mix = similarity::label_mix(embedded.neighbours);
    classifier.embedding_stage(scored, embedded.vector, mix.as_ref(), knn_weight);
}

/// One event through the cascade: its rule results and classifier scores,
/// blended with what the embedding stage found where the event reached it
/// (`embedded`; the caller asks [`in_band`]), then decided by `policy` (rules
/// may override a `LOW_RISK` verdict). The prediction's kNN score is set for an
/// embedded event; explanations beyond the rule hits are the caller's.
pub fn cascade(
    event: Event,
    rules: RuleResult,
    mut scored: Scored,
    embedded: Option<Embedded<'_>>,
    classifier: &Classifier,
    knn_weight: f32,
    policy: &DecisionPolicy,
) -> Prediction {
    if let Some(e) = embedded {
        blend(classifier, &mut scored, e, knn_weight);
    }
    let knn = embedded.and_then(|e| similarity::embedding_score(e.neighbours)).map(|(score, _)| score);
    predict::classified(event, rules, &scored, &classifier.meta.version, knn, policy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_band_is_closed_and_none_means_every_event() {
        let band = Band { low: 0.2, high: 0.8 };
        assert!(in_band(Some(band), 0.2) && in_band(Some(band), 0.8) && !in_band(Some(band), 0.81));
        assert!(in_band(None, 0.0) && in_band(None, 1.0));
        assert_eq!("0.1,0.9".parse::<Band>(), Ok(Band { low: 0.1, high: 0.9 }));
        assert!("0.9,0.1".parse::<Band>().is_err());
    }
}
