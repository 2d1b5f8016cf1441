//! Test-only: a heuristic built with wit-bindgen straight from the published
//! `wit/published/0.1.0` (not the SDK, which follows the newest WIT), so the
//! suite can show that a component built against `palisade:plugin@0.1.0` keeps
//! loading and scoring in a host that speaks a later 0.1.x.

wit_bindgen::generate!({
    path: "../../../wit/published/0.1.0",
    world: "palisade:plugin/heuristic@0.1.0",
});

use palisade::plugin::host;
use palisade::plugin::types::RuleHit;

struct Compat;

impl Guest for Compat {
    fn score(events: Vec<Event>) -> Vec<Verdict> {
        let score: f32 = host::config("score").and_then(|s| s.parse().ok()).unwrap_or(0.5);
        host::log(host::Level::Debug, &format!("scoring {} events", events.len()));
        events
            .iter()
            .map(|e| {
                if e.content.to_lowercase().contains("compat") {
                    let hit = RuleHit { rule: "compat-0.1.0".into(), weight: score, category: None, detail: None };
                    Verdict { score, category: None, hits: vec![hit] }
                } else {
                    Verdict { score: 0.0, category: None, hits: Vec::new() }
                }
            })
            .collect()
    }
}

export!(Compat);
