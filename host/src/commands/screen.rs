//! `palisade screen TEXT`: one message through the validators, the rule plugins
//! and the classifier of this machine's configuration; JSON out.

use super::open;
use crate::config::Config;
use palisade_core::Event;
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
    let classified = classifier.as_ref().map(|c| {
        let s = c.score(text, &result);
        serde_json::json!({
            "version": c.meta.version,
            "category": s.category,
            "risk_score": s.risk(),
            "category_scores": palisade_detect::classify::CATEGORIES.iter().zip(s.scores).collect::<std::collections::BTreeMap<_, _>>(),
            "top_ngrams": c.contributions(text, s.category, 5),
        })
    });
    let out = serde_json::json!({
        "event": event,
        "violations": violations,
        "classifier": classified,
        "rule_score": result.score,
        "category": result.category,
        "verdicts": result.verdicts,
        "failed_plugins": result.failed,
        "latency_us": started.elapsed().as_secs_f64() * 1e6,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
