//! `palisade screen TEXT`: one message through the validators, the rule plugins
//! and the classifier of this machine's configuration, through the service's
//! cascade (the embedding stage and the example bank where the classifier's risk
//! lies in `CASCADE_BAND`); JSON out: the verdict (`category`, `high_risk`,
//! `risk_score`, `flags`), and each stage's own say (`classifier` alone, with
//! the toxicity side model's scores when it carries one,
//! `rule_score`, `rule_category`, `verdicts`, `violations`).

use super::open;
use crate::config::Config;
use palisade_core::Event;
use palisade_detect::vectors::Neighbour;
use palisade_detect::{cascade, predict};
use palisade_plugins::{PluginKind, to_wit};
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// The message text.
    pub text: String,
}

pub fn run(config: &Config, text: &str) -> anyhow::Result<()> {
    let host = open(config, None)?;
    let event = Event::sample(text);
    let events = to_wit(std::slice::from_ref(&event));
    let mut violations = Vec::new();
    for (plugin, _) in host.active(PluginKind::Validator) {
        match plugin.validate(&events) {
            Ok(mut v) => violations.extend(v.remove(0).into_iter().map(
                |v| serde_json::json!({"plugin": plugin.name, "field": v.field, "code": v.code, "message": v.message}),
            )),
            Err(e) => eprintln!("validator {}: {e}", plugin.name),
        }
    }
    let started = Instant::now();
    let result = palisade_plugins::rules::score(&host, std::slice::from_ref(&event)).remove(0);
    let classifier = match &config.classifier.dir {
        Some(dir) if dir.exists() => {
            Some(palisade_detect::classify::Classifier::new(palisade_detect::classify::Artifact::load(dir, None)?))
        }
        _ => None,
    };
    let scored = classifier.as_ref().map(|c| (c, c.score(text, &result)));
    // The verdict screening gives: the cascade, with the embedding stage where
    // the classifier's risk lies in the band (and a model is configured).
    let policy = config.decision_policy();
    let verdict = match &scored {
        Some((c, s)) => {
            let settings = &config.classifier;
            let reached = config.model.dir.is_some() && cascade::in_band(settings.cascade_band(), s.risk());
            let found = if reached { Some(embedding_stage(config, text)?) } else { None };
            let embedded = found.as_ref().map(|(vector, neighbours)| cascade::Embedded { vector, neighbours });
            cascade::cascade(event.clone(), result.clone(), s.clone(), embedded, c, settings.knn_weight, &policy)
        }
        None => predict::predict(event.clone(), result.clone(), None, policy),
    };
    let classified = scored.map(|(c, s)| {
        serde_json::json!({
            "version": c.meta.version,
            "category": s.category,
            "risk_score": s.risk(),
            "category_scores": palisade_detect::classify::CATEGORIES.iter().zip(s.scores).collect::<std::collections::BTreeMap<_, _>>(),
            "top_ngrams": c.contributions(text, s.category, 5),
            "toxicity": c.toxicity(text).map(|t| palisade_detect::toxicity::CLASSES.iter().zip(t).collect::<std::collections::BTreeMap<_, _>>()),
        })
    });
    let out = serde_json::json!({
        "event": event,
        "violations": violations,
        "category": verdict.category,
        "high_risk": verdict.high_risk,
        "risk_score": verdict.risk_score,
        "flags": verdict.flags,
        "classifier": classified,
        "rule_score": result.score,
        "rule_category": result.category,
        "verdicts": result.verdicts,
        "failed_plugins": result.failed,
        "latency_us": started.elapsed().as_secs_f64() * 1e6,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

/// The event's vector and its nearest labelled examples (the example bank in VECTOR_DIR).
fn embedding_stage(config: &Config, text: &str) -> anyhow::Result<(Vec<f32>, Vec<Neighbour>)> {
    let vector = super::embedder(config)?.embed(&[text])?.remove(0);
    let (bank, _) = palisade_detect::vectors::open(&config.vectors.store(), "exemplars")?;
    let neighbours = bank.search(&vector, config.screening.similar_k);
    Ok((vector, neighbours))
}
