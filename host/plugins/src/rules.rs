//! The rule stage (screening's, and pre-post screening of bots' posts): call each
//! active heuristic plugin once per batch and combine the verdicts.
//!
//! Combination (documented in docs/plugins.md): each enforcing plugin `i` with
//! manifest weight `w_i` and score `s_i` contributes `c_i = min(1, w_i · s_i)`;
//! the rule score is the noisy-OR `1 − Π (1 − c_i)` — one strong rule is enough,
//! several weak ones add up, and the result stays in [0, 1]. The category is that
//! of the largest contribution with a category. Shadow-mode plugins are scored and
//! reported but not combined. A plugin that faults costs only its own verdict.

use super::lending::{LentLabel, entities_of};
use super::{Mode, Plugin, PluginHost, PluginKind, PluginVersion, Verdict, to_wit};
use palisade_core::Event;
use palisade_vocab::Category;
use rayon::prelude::*;
use serde::Serialize;
use std::sync::Arc;

/// One plugin's part in an event's rule score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PluginVerdict {
    pub plugin: String,
    pub version: String,
    pub mode: Mode,
    pub weight: f32,
    pub score: f32,
    pub category: Option<Category>,
    pub hits: Vec<Hit>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    pub rule: String,
    pub weight: f32,
    pub category: Option<Category>,
    pub detail: Option<String>,
}

/// The rule stage's result for one event.
#[derive(Debug, Clone, Serialize)]
pub struct RuleResult {
    pub score: f32,
    pub category: Category,
    pub verdicts: Vec<PluginVerdict>,
    /// Plugins that could not score this batch, with why.
    pub failed: Vec<(String, String)>,
    /// Plugins that scored this batch while a host function they called failed
    /// (the label store timed out, …): their verdict lacks what it would have said.
    pub unavailable: Vec<String>,
    /// Heuristic plugins that should have scored this event and did not
    /// (quarantined, failed to load, faulted on this batch, or scored without a
    /// host function's answer): the score is missing their part. Empty when every
    /// rule ran whole.
    pub degraded: Vec<String>,
    /// Entity labels of this event's user, author or channel that a plugin read
    /// and then gave the event a verdict: the labels that affected it.
    pub labels: Vec<LentLabel>,
}

impl RuleResult {
    /// No rule said anything (score 0, `LOW_RISK`).
    pub fn none() -> Self {
        RuleResult {
            score: 0.0,
            category: Category::LowRisk,
            verdicts: Vec::new(),
            failed: Vec::new(),
            unavailable: Vec::new(),
            degraded: Vec::new(),
            labels: Vec::new(),
        }
    }
}

/// Score a batch with every active heuristic plugin (one call each, on the rayon
/// pool; verdicts in plugin order, so ties break the same way every time).
pub fn score(host: &PluginHost, events: &[Event]) -> Vec<RuleResult> {
    let wit = to_wit(events);
    let mut results: Vec<RuleResult> = events.iter().map(|_| RuleResult::none()).collect();
    // Plugins are independent (each has its own instances): the pool's threads take
    // the next unscored one until none is left, so a slow plugin leaves no thread idle.
    let active = host.active(PluginKind::Heuristic);
    let outcomes: Vec<_> = active.par_iter().map(|(p, v)| (p, v, p.scores(&wit))).collect();
    let mut unavailable = Vec::new();
    for (plugin, version, outcome) in outcomes {
        match outcome {
            Ok(scores) => {
                if !scores.unavailable.is_empty() {
                    unavailable.push(plugin.name.clone());
                }
                for ((result, v), event) in results.iter_mut().zip(scores.verdicts).zip(events) {
                    if v.score > 0.0 || !v.hits.is_empty() {
                        result.verdicts.push(plugin_verdict(&version.manifest, v));
                        lent_to(result, event, &scores.labels);
                    }
                }
            }
            Err(e) => results.iter_mut().for_each(|r| r.failed.push((plugin.name.clone(), e.to_string()))),
        }
    }
    // Out of service (quarantined, failed to load), faulted on this batch, or short
    // of a host function: the same for every event.
    let mut degraded = host.degraded(PluginKind::Heuristic);
    degraded.extend(results.first().into_iter().flat_map(|r| r.failed.iter().map(|(p, _)| p.clone())));
    degraded.extend(unavailable.iter().cloned());
    degraded.sort();
    degraded.dedup();
    for r in &mut results {
        combine(r);
        r.degraded.clone_from(&degraded);
        r.unavailable.clone_from(&unavailable);
    }
    results
}

/// Add the labels of `event`'s entities among those a plugin read.
fn lent_to(result: &mut RuleResult, event: &Event, lent: &[LentLabel]) {
    if lent.is_empty() {
        return;
    }
    let entities = entities_of(event);
    for l in lent.iter().filter(|l| entities.contains(&l.entity)) {
        if !result.labels.contains(l) {
            result.labels.push(l.clone());
        }
    }
}

/// `r` as it would be with `plugin`'s verdict replaced by `with` (enforcing), or
/// without it (`None`): how a candidate version would have scored the event.
pub fn substitute(r: &RuleResult, plugin: &str, with: Option<&PluginVerdict>) -> RuleResult {
    let mut out = r.clone();
    out.verdicts.retain(|v| v.plugin != plugin);
    if let Some(v) = with {
        out.verdicts.push(PluginVerdict { mode: Mode::Enforce, ..v.clone() });
    }
    combine(&mut out);
    out
}

/// What each active heuristic plugin of `host` (shadow candidates) says about a
/// batch: per plugin, a verdict per event (`None` where it found nothing), or why
/// it could not score the batch.
pub type CandidateVerdicts = Vec<(Arc<Plugin>, Arc<PluginVersion>, Result<Vec<Option<PluginVerdict>>, String>)>;

pub fn candidates(host: &PluginHost, events: &[Event]) -> CandidateVerdicts {
    let wit = to_wit(events);
    host.active(PluginKind::Heuristic)
        .into_par_iter()
        .map(|(plugin, version)| {
            let verdicts = plugin.score(&wit).map_err(|e| e.to_string()).map(|vs| {
                vs.into_iter()
                    .map(|v| (v.score > 0.0 || !v.hits.is_empty()).then(|| plugin_verdict(&version.manifest, v)))
                    .collect()
            });
            (plugin, version, verdicts)
        })
        .collect()
}

fn plugin_verdict(m: &crate::Manifest, v: Verdict) -> PluginVerdict {
    PluginVerdict {
        plugin: m.name.clone(),
        version: m.version.clone(),
        mode: m.mode,
        weight: m.weight,
        score: v.score,
        category: v.category.map(Category::from),
        hits: v
            .hits
            .into_iter()
            .map(|h| Hit { rule: h.rule, weight: h.weight, category: h.category.map(Category::from), detail: h.detail })
            .collect(),
    }
}

fn combine(r: &mut RuleResult) {
    let mut keep = 1.0f32;
    let mut best: Option<(f32, Category)> = None;
    for v in r.verdicts.iter().filter(|v| v.mode == Mode::Enforce) {
        let c = (v.weight * v.score).clamp(0.0, 1.0);
        keep *= 1.0 - c;
        if let Some(cat) = v.category
            && best.is_none_or(|(b, _)| c > b)
        {
            best = Some((c, cat));
        }
    }
    r.score = 1.0 - keep;
    r.category = best.map_or(Category::LowRisk, |(_, c)| c);
}
