//! The screener: one batch through every stage (rules, classifier, the
//! embedding stage in the band) and `palisade_detect`'s decision to its
//! predictions; what it lends plugins (`similar`, `classify`).

use super::stages::Found;
use super::{ScreenMetrics, Similarity, campaign, compare, shadow};
use crate::config::Band;
use palisade_core::Event;
use palisade_detect::classify::slot::Slot;
use palisade_detect::classify::{Classifier, Scored};
use palisade_detect::predict::{self, DecisionPolicy, Prediction};
use palisade_detect::{cascade, similarity};
use palisade_plugins::{PluginHost, rules};
use rayon::prelude::*;
use std::sync::Arc;
use std::time::Instant;

/// Screens batches of events: every stage, one call per plugin per batch.
pub struct Screener {
    pub plugins: Arc<PluginHost>,
    pub similarity: Option<Similarity>,
    pub policy: DecisionPolicy,
    pub metrics: ScreenMetrics,
    /// `SCREENING_FAST_PATH`: a rule score at which the rules alone decide (the
    /// embedding is skipped; risk = the rule score, flag `fast_path`); `None`: off.
    /// (Weighted scoring only: with a classifier the cascade decides.)
    pub fast_path: Option<f32>,
    /// The trained classifier (`SCORING=classifier`); `None`: weighted scoring.
    pub classifier: Option<Arc<Slot>>,
    /// Counts the accounts posting each text (`CAMPAIGN_MIN_ACCOUNTS`); `None`: off.
    pub campaigns: Option<campaign::Campaigns>,
    /// The cascade: events whose classifier risk lies in this band reach the
    /// embedding stage; `None` (`CASCADE=off`): every event does.
    pub cascade_band: Option<Band>,
    /// Share of the neighbours' label mix in an embedded event's scores.
    pub knn_weight: f32,
    /// Shadow candidates scored beside the active rules (never routing).
    pub shadows: Option<Arc<shadow::Shadows>>,
}

impl Screener {
    fn find(&self, events: &[Event]) -> Found {
        match &self.similarity {
            Some(sim) => sim.find(events, &self.metrics).unwrap_or_else(|e| {
                tracing::error!(error = %e, "embedding failed; screening this batch with rules only");
                Found::nothing(events.len())
            }),
            None => Found::nothing(events.len()),
        }
    }

    /// The embedding stage for the events at positions `at` only (ascending),
    /// spread over the whole batch.
    fn find_some(&self, events: &[Event], at: &[usize]) -> Found {
        match at.len() {
            0 => Found::nothing(events.len()),
            n if n == events.len() => self.find(events),
            _ => {
                let subset: Vec<Event> = at.iter().map(|i| events[*i].clone()).collect();
                self.find(&subset).spread(at, events.len())
            }
        }
    }

    /// A batch's stages are done: its time observed; the model that embedded it
    /// and the time per event, which every prediction carries.
    fn batch_done(&self, started: Instant, events: usize) -> (Option<String>, f64) {
        let elapsed = started.elapsed();
        self.metrics.batch_latency.observe(elapsed.as_secs_f64());
        let model_id = self.similarity.as_ref().map(|s| s.embedder.model_id.clone());
        (model_id, elapsed.as_secs_f64() * 1e3 / events as f64)
    }

    /// Screen a batch (in the current span: each stage gets a child span when
    /// traces are on), counting the categories predicted.
    pub fn screen(&self, events: Vec<Event>) -> Vec<Prediction> {
        if events.is_empty() {
            return Vec::new();
        }
        let mut predictions = match &self.classifier {
            Some(slot) => self.screen_classified(slot.get(), events),
            None => self.screen_weighted(events),
        };
        if let Some(campaigns) = &self.campaigns {
            campaigns.mark(&mut predictions);
        }
        for p in &predictions {
            self.metrics.categories.with_label_values(&[p.category]).inc();
        }
        predictions
    }

    /// Rules and the embedding stage, mixed by `weights` (`SCORING=weighted`).
    fn screen_weighted(&self, events: Vec<Event>) -> Vec<Prediction> {
        let started = Instant::now();
        let rules =
            || palisade_core::span!("rules", events = events.len()).in_scope(|| rules::score(&self.plugins, &events));
        let (rule_results, found) = match self.fast_path {
            // The rule stage and the embedding stage are independent: run them side by
            // side on the rayon pool (the cache lookup waits on Redis while the rules compute).
            None => {
                let parent = tracing::Span::current();
                rayon::join(rules, || parent.in_scope(|| self.find(&events)))
            }
            // Fast path: rules first; events they score at or above the bar skip the model.
            Some(bar) => {
                let rule_results = rules();
                let slow: Vec<usize> = (0..events.len()).filter(|i| rule_results[*i].score < bar).collect();
                let found = self.find_some(&events, &slow);
                (rule_results, found)
            }
        };
        let (model_id, per_event_ms) = self.batch_done(started, events.len());
        let predictions: Vec<Prediction> = events
            .into_iter()
            .zip(rule_results)
            .zip(found.examples.into_iter().zip(found.past))
            .map(|((event, r), (near, past))| {
                let fast = self.fast_path.is_some_and(|bar| r.score >= bar);
                let mut p = predict::predict(event, r, similarity::embedding_score(&near), self.policy);
                if fast {
                    p.flags.retain(|f| f != "heuristics_only");
                    p.flags.push("fast_path".into());
                }
                p.similar = near;
                p.similar_events = past;
                p.model_id = model_id.clone();
                p.latency_ms = per_event_ms;
                self.metrics.risk.observe(p.risk_score as f64);
                p
            })
            .collect();
        if let Some(sim) = &self.similarity {
            sim.remember(&predictions, found.vectors);
        }
        predictions
    }
}

impl Screener {
    /// The cascade: rules, then the classifier on every event, then the embedding
    /// stage only for events whose risk is in the band; the classifier's embedding
    /// head (when it has one) is mixed into their scores, then their neighbours'
    /// label mix (`knn_weight`, scaled by how close the nearest example is), before
    /// the thresholds decide.
    fn screen_classified(&self, classifier: Arc<Classifier>, events: Vec<Event>) -> Vec<Prediction> {
        let started = Instant::now();
        let rule_results =
            palisade_core::span!("rules", events = events.len()).in_scope(|| rules::score(&self.plugins, &events));
        let scored: Vec<Scored> = palisade_core::span!("classifier", events = events.len())
            .in_scope(|| events.par_iter().zip(&rule_results).map(|(e, r)| classifier.score(&e.content, r)).collect());
        let n = events.len() as u64;
        self.metrics.stages.with_label_values(&["rules"]).inc_by(n);
        self.metrics.stages.with_label_values(&["classifier"]).inc_by(n);
        let band: Vec<usize> = match &self.similarity {
            None => Vec::new(),
            Some(_) => (0..events.len()).filter(|i| cascade::in_band(self.cascade_band, scored[*i].risk())).collect(),
        };
        self.metrics.stages.with_label_values(&["embedding"]).inc_by(band.len() as u64);
        let Found { examples, past, vectors } = self.find_some(&events, &band);
        let embedded: Vec<bool> = {
            let mut e = vec![false; events.len()];
            band.iter().for_each(|i| e[*i] = true);
            e
        };
        // Events outside the band have no vector and no neighbours.
        let no_vector: &[f32] = &[];
        let vector = |i: usize| vectors.get(i).map_or(no_vector, Vec::as_slice);
        if let Some(shadows) = self.shadows.as_ref().filter(|s| s.any()) {
            let verdict = |i: usize, r: &rules::RuleResult, mut s: Scored, c: &Classifier| {
                if embedded[i] {
                    let found = cascade::Embedded { vector: vector(i), neighbours: &examples[i] };
                    cascade::blend(c, &mut s, found, self.knn_weight);
                }
                let (category, risk, _) = predict::decide(r, &s, &self.policy);
                compare::Verdict { category, risk }
            };
            let active: Vec<_> =
                (0..events.len()).map(|i| verdict(i, &rule_results[i], scored[i].clone(), &classifier)).collect();
            let _span = palisade_core::span!("shadow", events = events.len()).entered();
            shadows.observe(&events, &rule_results, &active, &classifier, |i, r, c| {
                verdict(i, r, c.score(&events[i].content, r), c)
            });
        }
        let (model_id, per_event_ms) = self.batch_done(started, events.len());
        let predictions: Vec<Prediction> = events
            .into_iter()
            .zip(rule_results)
            .zip(scored)
            .zip(examples.into_iter().zip(past))
            .enumerate()
            .map(|(i, (((event, r), s), (near, past)))| {
                let found = embedded[i].then(|| cascade::Embedded { vector: vector(i), neighbours: &near });
                let mut p = cascade::cascade(event, r, s, found, &classifier, self.knn_weight, &self.policy);
                if p.high_risk {
                    p.top_ngrams = classifier.contributions(&p.event.content, p.category, 5);
                }
                p.similar = near;
                p.similar_events = past;
                p.model_id = if embedded[i] { model_id.clone() } else { None };
                p.latency_ms = per_event_ms;
                self.metrics.risk.observe(p.risk_score as f64);
                p
            })
            .collect();
        if let Some(sim) = &self.similarity {
            sim.remember(&predictions, vectors);
        }
        predictions
    }
}

/// What screening lends plugins granted `similar` or `classify`: its example bank
/// and classifier (held weakly: the plugin runtime must not keep a screener alive).
struct Lent(std::sync::Weak<Screener>);

impl palisade_plugins::lending::Semantic for Lent {
    fn similar(
        &self,
        texts: &[String],
        k: usize,
    ) -> Result<Vec<Vec<palisade_plugins::lending::LentNeighbour>>, String> {
        let screener = self.0.upgrade();
        let Some((s, sim)) = screener.as_ref().and_then(|s| Some((s, s.similarity.as_ref()?))) else {
            return Ok(vec![Vec::new(); texts.len()]);
        };
        if sim.exemplars.is_empty() {
            return Ok(vec![Vec::new(); texts.len()]);
        }
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let vectors = sim.vectors(&refs, &s.metrics).map_err(|e| format!("embedding failed: {e}"))?;
        Ok(sim
            .exemplars
            .search_many(&vectors, k)
            .into_iter()
            .map(|ns| {
                ns.into_iter()
                    .map(|n| palisade_plugins::lending::LentNeighbour {
                        id: n.id.to_string(),
                        label: n.label.to_string(),
                        similarity: n.similarity,
                    })
                    .collect()
            })
            .collect())
    }

    fn classify(&self, texts: &[String]) -> Option<Vec<Vec<f32>>> {
        let screener = self.0.upgrade()?;
        let classifier = screener.classifier.as_ref()?.get();
        let none = rules::RuleResult::none();
        Some(texts.iter().map(|t| classifier.score(t, &none).scores.to_vec()).collect())
    }
}

impl Screener {
    /// Lend this screener's example bank and classifier to the plugins
    /// (`host.similar`, `host.classify`), in place of any earlier screener's.
    pub fn lend_to_plugins(self: &Arc<Self>) {
        self.plugins.runtime().lending.set_semantic(Arc::new(Lent(Arc::downgrade(self))));
    }
}
