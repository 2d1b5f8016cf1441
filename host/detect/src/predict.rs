//! From stage results to a prediction: the combined risk, category, confidence,
//! flags and explanation of one event. Pure functions over already-computed
//! scores; no I/O.
//!
//! - risk = `RULE_WEIGHT` × rule score + `EMBEDDING_WEIGHT` × embedding score
//!   (0.6 / 0.4). Without an embedding score (no model configured) the rule score
//!   stands alone and the `heuristics_only` flag says so.
//! - category: the category with the strongest combined evidence; `LOW_RISK` when
//!   the risk is at or below the threshold.
//! - confidence: how far the risk sits from the threshold, scaled to [0.5, 1].
//!
//! With the trained classifier (`SCORING=classifier`, [`classified`]): the seven
//! `category_scores` (probabilities, summing to 1), `risk_score` = 1 − P(LOW_RISK),
//! `category` as [`crate::classify::decide`] says (routed on risk, labelled by
//! the most probable risky category), `high_risk` = the category is not
//! `LOW_RISK` (that is what routes to `events:reasoning_queue`), confidence = the
//! probability that route is right (the risk when high, P(LOW_RISK) when low),
//! and the explanation adds the word n-grams that pulled hardest.
//! Rules stay policy: a rule score above `SCREENING_THRESHOLD` routes high with
//! the rule's category even where the classifier says `LOW_RISK` (`rule_override`),
//! unless the classifier's own risk is below `RULE_OVERRIDE_MIN_RISK` (default 0:
//! always; 1: never).

use crate::classify::{CATEGORIES, Scored};
use palisade_core::Event;
use palisade_plugins::rules::RuleResult;
use palisade_vocab::Category;
use serde::Serialize;
use std::collections::BTreeMap;

/// The decision policy: how stage scores become a route. The weights of the
/// rule and embedding scores in the weighted risk (`RULE_WEIGHT`,
/// `EMBEDDING_WEIGHT`), the risk above which an event is routed high
/// (`SCREENING_THRESHOLD`; also the rule score at which a rule overrides the
/// classifier), and the classifier risk from which it may.
#[derive(Debug, Clone, Copy)]
pub struct DecisionPolicy {
    pub rules: f32,
    pub embedding: f32,
    pub threshold: f32,
    /// `SCORING=classifier`: the classifier risk from which a rule may override
    /// its `LOW_RISK` verdict (0: always; 1: never).
    pub override_min_risk: f32,
}

impl Default for DecisionPolicy {
    fn default() -> Self {
        DecisionPolicy { rules: 0.6, embedding: 0.4, threshold: 0.7, override_min_risk: 0.0 }
    }
}

/// One rule hit in an explanation.
#[derive(Debug, Clone, Serialize)]
pub struct TopHit {
    pub plugin: String,
    pub rule: String,
    pub weight: f32,
    pub category: Option<Category>,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Prediction {
    pub event: Event,
    pub risk_score: f32,
    pub rule_score: f32,
    pub embedding_score: Option<f32>,
    pub category: Category,
    pub confidence: f32,
    pub high_risk: bool,
    pub flags: Vec<String>,
    /// Heuristic plugins whose part is missing from this verdict (quarantined,
    /// failed, or faulted on its batch); non-empty means flag `degraded` too.
    pub degraded: Vec<String>,
    pub explanation: Vec<TopHit>,
    /// `name@version` of every heuristic plugin that scored the event.
    pub plugin_versions: Vec<String>,
    /// Nearest labelled examples (with similarity and label).
    pub similar: Vec<crate::vectors::Neighbour>,
    /// Most similar past screened events (label: the category they got). They are
    /// other users' messages: serialised without their text (the screen routes add
    /// it back for `SIMILAR_EVENTS_TEXT_KEYS`).
    #[serde(serialize_with = "without_text")]
    pub similar_events: Vec<crate::vectors::Neighbour>,
    pub model_id: Option<String>,
    /// `classifier` or `weighted` (SCORING).
    pub scoring: &'static str,
    /// Probability of every category (classifier scoring only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category_scores: Option<BTreeMap<&'static str, f32>>,
    /// The classifier artifact's version (classifier scoring only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classifier_version: Option<String>,
    /// Word n-grams that pulled hardest toward the category (flagged events only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub top_ngrams: Vec<crate::classify::Contribution>,
    /// Entity labels (of its user, author or channel) a rule read and then gave
    /// the event a verdict: the labels that affected it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<palisade_plugins::lending::LentLabel>,
    /// Distinct accounts that posted this text on this platform in the campaign
    /// window, this one included (`screening::campaign`; absent below 2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub campaign_accounts: Option<u64>,
    pub latency_ms: f64,
}

/// Past events as id, label and similarity: no other user's text leaves by default.
fn without_text<S: serde::Serializer>(past: &[crate::vectors::Neighbour], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    #[derive(Serialize)]
    struct Past<'a> {
        id: &'a str,
        label: &'a str,
        similarity: f32,
    }
    let mut seq = s.serialize_seq(Some(past.len()))?;
    for n in past {
        seq.serialize_element(&Past { id: &n.id, label: &n.label, similarity: n.similarity })?;
    }
    seq.end()
}

/// Combine one event's stage results (`SCORING=weighted`).
pub fn predict(event: Event, rules: RuleResult, embedding: Option<(f32, Category)>, w: DecisionPolicy) -> Prediction {
    let (risk, mut flags) = match embedding {
        Some((e, _)) => ((w.rules * rules.score + w.embedding * e) / (w.rules + w.embedding), Vec::new()),
        None => (rules.score, vec!["heuristics_only".to_string()]),
    };
    let high_risk = risk > w.threshold;
    // Strongest evidence: the rule category unless the embedding's carries more weight.
    let category = match embedding {
        Some((e, cat)) if w.embedding * e > w.rules * rules.score => cat,
        _ => rules.category,
    };
    // The category says where the event goes: a risk at or below the threshold is LOW_RISK.
    let category = if high_risk { category } else { Category::LowRisk };
    let span = if high_risk { 1.0 - w.threshold } else { w.threshold };
    let confidence = (0.5 + 0.5 * ((risk - w.threshold).abs() / span.max(f32::EPSILON))).clamp(0.5, 1.0);
    if high_risk {
        flags.push("high_risk".into());
    }
    let mut p = from_rules(event, rules, flags);
    p.risk_score = risk;
    p.embedding_score = embedding.map(|(e, _)| e);
    p.category = category;
    p.confidence = confidence;
    p.high_risk = high_risk;
    p
}

/// A prediction from the classifier's verdict (`SCORING=classifier`);
/// `embedding`: the kNN score when the embedding stage saw the event. Rules are
/// policy: a rule score above `w.threshold` (`SCREENING_THRESHOLD`) routes the
/// event high with the rule's category even where the classifier says `LOW_RISK`
/// (flag `rule_override`), unless the classifier's risk is under
/// `w.override_min_risk` (`RULE_OVERRIDE_MIN_RISK`).
pub fn classified(
    event: Event,
    rules: RuleResult,
    scored: &Scored,
    version: &str,
    embedding: Option<f32>,
    w: &DecisionPolicy,
) -> Prediction {
    let (category, risk, overridden) = decide(&rules, scored, w);
    let high_risk = category.is_risky();
    let mut flags = Vec::new();
    if overridden {
        flags.push("rule_override".into());
    }
    if high_risk {
        flags.push("high_risk".into());
    }
    if embedding.is_some() {
        flags.push("embedded".into());
    }
    let mut p = from_rules(event, rules, flags);
    p.risk_score = risk;
    p.embedding_score = embedding;
    p.category = category;
    // How likely the route is right: the risk when high, P(LOW_RISK) when low
    // (a risky event's category may hold only a third of the probability).
    p.confidence = if overridden {
        p.rule_score
    } else if high_risk {
        risk
    } else {
        scored.scores[0]
    };
    p.high_risk = high_risk;
    p.scoring = "classifier";
    p.category_scores = Some(CATEGORIES.iter().copied().zip(scored.scores).collect());
    p.classifier_version = Some(version.to_string());
    p
}

/// The classifier's category and risk with the rules' override (a rule score
/// above `w.threshold` with a risky category wins over a `LOW_RISK` verdict whose
/// risk is at least `w.override_min_risk`), and whether the override applied.
pub fn decide(rules: &RuleResult, scored: &Scored, w: &DecisionPolicy) -> (Category, f32, bool) {
    let allowed = w.override_min_risk < 1.0 && scored.risk() >= w.override_min_risk;
    let overridden = allowed && !scored.category.is_risky() && rules.score > w.threshold && rules.category.is_risky();
    if overridden {
        (rules.category, scored.risk().max(rules.score), true)
    } else {
        (scored.category, scored.risk(), false)
    }
}

/// The parts every scoring shares: rule hits as the explanation, rule and fault
/// flags after `flags`, plugin versions; risk and category still to be set.
fn from_rules(event: Event, rules: RuleResult, mut flags: Vec<String>) -> Prediction {
    let mut explanation: Vec<TopHit> = rules
        .verdicts
        .iter()
        .flat_map(|v| {
            v.hits.iter().map(|h| TopHit {
                plugin: v.plugin.clone(),
                rule: h.rule.clone(),
                weight: h.weight,
                category: h.category,
                detail: h.detail.clone(),
            })
        })
        .collect();
    explanation.sort_by(|a, b| b.weight.total_cmp(&a.weight));
    explanation.truncate(5);
    for v in &rules.verdicts {
        if v.mode == palisade_plugins::Mode::Shadow {
            flags.push(format!("shadow:{}", v.plugin));
        } else if v.score >= 0.5 {
            flags.push(format!("rule:{}", v.plugin));
        }
    }
    flags.extend(rules.failed.iter().map(|(p, _)| format!("plugin_fault:{p}")));
    flags.extend(rules.unavailable.iter().map(|p| format!("host_unavailable:{p}")));
    if !rules.degraded.is_empty() {
        flags.push("degraded".into());
    }
    let plugin_versions = rules.verdicts.iter().map(|v| format!("{}@{}", v.plugin, v.version)).collect();
    Prediction {
        event,
        risk_score: 0.0,
        rule_score: rules.score,
        embedding_score: None,
        category: Category::LowRisk,
        confidence: 0.0,
        high_risk: false,
        flags,
        degraded: rules.degraded,
        labels: rules.labels,
        campaign_accounts: None,
        explanation,
        plugin_versions,
        similar: Vec::new(),
        similar_events: Vec::new(),
        model_id: None,
        scoring: "weighted",
        category_scores: None,
        classifier_version: None,
        top_ngrams: Vec::new(),
        latency_ms: 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(score: f32, category: Category) -> RuleResult {
        RuleResult {
            score,
            category,
            failed: vec![("broken".into(), "trapped".into())],
            degraded: vec!["broken".into()],
            ..RuleResult::none()
        }
    }

    #[test]
    fn weights_threshold_and_flags() {
        let w = DecisionPolicy::default();
        let p = predict(Event::sample("x"), rules(0.9, Category::Toxic), Some((0.5, Category::Spam)), w);
        assert!((p.risk_score - 0.74).abs() < 1e-6);
        assert!(p.high_risk && p.category == Category::Toxic);
        assert!(p.flags.contains(&"plugin_fault:broken".to_string()));
        assert!(p.flags.contains(&"degraded".to_string()) && p.degraded == ["broken"]);
        let p = predict(Event::sample("x"), rules(0.1, Category::Toxic), None, w);
        assert_eq!((p.category, p.high_risk), (Category::LowRisk, false));
        assert!(p.flags.contains(&"heuristics_only".to_string()));
        assert!(p.confidence > 0.8, "far below the threshold: {}", p.confidence);
        let p = predict(Event::sample("x"), rules(0.6, Category::Toxic), Some((0.99, Category::HateSpeech)), w);
        assert_eq!(p.category, Category::HateSpeech, "the embedding carries more weight here");
    }

    /// The category and the route agree: an event routed to `events:low_risk`
    /// (not high risk) is never labelled with a risky category, and one routed
    /// to the reasoning queue always is.
    #[test]
    fn the_category_agrees_with_the_route() {
        let w = DecisionPolicy::default();
        for rule in [0.0, 0.2, 0.5, 0.7, 0.8, 1.0] {
            for knn in
                [None, Some((0.1, Category::Spam)), Some((0.5, Category::Toxic)), Some((0.95, Category::HateSpeech))]
            {
                let p = predict(Event::sample("x"), rules(rule, Category::Toxic), knn, w);
                assert_eq!(
                    p.category != Category::LowRisk,
                    p.high_risk,
                    "rules {rule}, embedding {knn:?}: risk {} labelled {} but high_risk {}",
                    p.risk_score,
                    p.category,
                    p.high_risk
                );
            }
        }
        // The case that was wrong: risk 0.5 under a 0.7 threshold was TOXIC yet routed low.
        let p = predict(Event::sample("x"), rules(0.5, Category::Toxic), None, w);
        assert_eq!((p.category, p.high_risk), (Category::LowRisk, false));
    }

    #[test]
    fn classifier_verdicts_and_rule_overrides() {
        let w = DecisionPolicy::default();
        let low =
            Scored { scores: [0.9, 0.02, 0.05, 0.01, 0.01, 0.01, 0.0], category: Category::LowRisk, embedded: false };
        let p = classified(Event::sample("x"), rules(0.1, Category::Toxic), &low, "v1", None, &w);
        assert_eq!((p.category, p.high_risk, p.scoring), (Category::LowRisk, false, "classifier"));
        assert!((p.risk_score - 0.1).abs() < 1e-6 && (p.confidence - 0.9).abs() < 1e-6);
        assert_eq!(p.category_scores.as_ref().unwrap().len(), 7);
        // A rule above the bar is policy: it routes high with its category.
        let p = classified(Event::sample("x"), rules(0.9, Category::Violence), &low, "v1", None, &w);
        assert_eq!((p.category, p.high_risk), (Category::Violence, true));
        assert!(p.flags.contains(&"rule_override".to_string()) && p.risk_score >= 0.9);
        let spam = Scored { scores: [0.3, 0.6, 0.1, 0.0, 0.0, 0.0, 0.0], category: Category::Spam, embedded: false };
        let p = classified(Event::sample("x"), rules(0.9, Category::Violence), &spam, "v1", Some(0.4), &w);
        assert_eq!((p.category, p.high_risk), (Category::Spam, true), "the classifier's risky verdict stands");
        assert!(p.flags.contains(&"embedded".to_string()) && !p.flags.contains(&"rule_override".to_string()));
        // RULE_OVERRIDE_MIN_RISK: a LOW_RISK verdict whose risk is under it stands.
        let sure = DecisionPolicy { override_min_risk: 0.2, ..w };
        let p = classified(Event::sample("x"), rules(0.9, Category::Violence), &low, "v1", None, &sure);
        assert_eq!((p.category, p.high_risk), (Category::LowRisk, false), "risk 0.1 is under 0.2");
        let unsure =
            Scored { scores: [0.7, 0.02, 0.25, 0.01, 0.01, 0.01, 0.0], category: Category::LowRisk, embedded: false };
        let p = classified(Event::sample("x"), rules(0.9, Category::Violence), &unsure, "v1", None, &sure);
        assert_eq!((p.category, p.high_risk), (Category::Violence, true), "risk 0.3 reaches 0.2");
        let never = DecisionPolicy { override_min_risk: 1.0, ..w };
        let p = classified(Event::sample("x"), rules(1.0, Category::Violence), &unsure, "v1", None, &never);
        assert_eq!(p.category, Category::LowRisk, "1 turns the override off");
    }

    #[test]
    fn risk_spread_over_three_risky_categories_routes_high_with_the_most_probable() {
        // 0.94 risk, none of the three risky categories at its own threshold.
        let scores = [0.06, 0.02, 0.30, 0.28, 0.02, 0.32, 0.0];
        let thresholds = [0.55, 0.5, 0.4, 0.5, 0.6, 0.8, 0.5];
        let scored = Scored { scores, category: crate::classify::decide(&scores, &thresholds), embedded: false };
        let p = classified(
            Event::sample("x"),
            rules(0.0, Category::LowRisk),
            &scored,
            "v1",
            None,
            &DecisionPolicy::default(),
        );
        assert_eq!((p.category, p.high_risk), (Category::Violence, true));
        assert!((p.risk_score - 0.94).abs() < 1e-6 && p.flags.contains(&"high_risk".to_string()));
        assert!((p.confidence - 0.94).abs() < 1e-6, "sure it is harmful, not sure which way: {}", p.confidence);
        // Without an any-flag threshold (an artifact from before it) the same
        // scores went low: what this fixes.
        let before = [2.0, 0.5, 0.4, 0.5, 0.6, 0.8, 0.5];
        assert_eq!(crate::classify::decide(&scores, &before), Category::LowRisk);
        // Under the any-flag risk, only a category at its own threshold routes.
        let calm = [0.7, 0.02, 0.25, 0.01, 0.01, 0.01, 0.0];
        assert_eq!(crate::classify::decide(&calm, &thresholds), Category::LowRisk);
        let violent = [0.5, 0.0, 0.0, 0.0, 0.0, 0.5, 0.0];
        assert_eq!(crate::classify::decide(&violent, &[0.6, 1.0, 1.0, 1.0, 1.0, 0.45, 1.0]), Category::Violence);
    }
}
