//! Python and JavaScript plugins, built by `scripts/build-plugins` with
//! componentize-py and componentize-js from `plugins/examples/`: they load with
//! their language's default limits and no WASI, score the same events as the
//! Rust rule they port (`caps-shouting`), and a Python or JS rule that raises
//! fails that plugin's call only — the exception quoted in the fault — while the
//! other plugins keep scoring.

use palisade_core::Event;
use palisade_plugins::manifest::Language;
use palisade_plugins::rules;
use palisade_tests::{PluginDir, set_key};

const PORTS: [&str; 3] = ["caps-shouting", "caps-shouting-py", "caps-shouting-js"];

/// Events on both sides of the rule's thresholds, in several scripts.
const TEXTS: [&str; 12] = [
    "WHY WOULD YOU EVER DO THAT",
    "STOP POSTING THIS GARBAGE right now",
    "OK, see you at NASA HQ",
    "LOL",
    "I AM SO DONE WITH ALL OF YOU!!!",
    "Mostly quiet text with ONE LOUD WORD in it",
    "ÉCOUTE-MOI BIEN, JE NE LE RÉPÉTERAI PAS",
    "ΣΤΑΜΑΤΑ ΝΑ ΓΡΑΦΕΙΣ ΑΥΤΑ ΕΔΩ ΜΕΣΑ",
    "ПРЕКРАТИ ПИСАТЬ ЭТО СЮДА НЕМЕДЛЕННО",
    "🔥🔥🔥 THIS IS FIRE 🔥🔥🔥 and so good",
    "12345 67890 !!! ???",
    "ThIs Is AlTeRnAtInG cAsE tExT hErE",
];

#[test]
fn python_and_javascript_ports_score_the_same_events_as_the_rust_rule() {
    let dir = PluginDir::new();
    for name in PORTS {
        dir.install(name);
    }
    let (host, _) = dir.open();
    for name in PORTS {
        let info = host.get(name).unwrap().info();
        assert!(info.load_error.is_none(), "{name}: {:?}", info.load_error);
    }
    let py = host.get("caps-shouting-py").unwrap().info();
    assert_eq!(py.language, Some(Language::Python));
    let caps: Vec<&str> = py.capabilities.iter().map(|c| c.as_str()).collect();
    assert_eq!(caps, ["log", "config", "clock"], "built against 0.1.0, the default grants suffice");

    let events: Vec<Event> = TEXTS.iter().map(|t| Event::sample(t)).collect();
    // Twice: the second call reuses the pooled instances (a rule built once).
    for round in 0..2 {
        let results = rules::score(&host, &events);
        let mut fired = 0;
        for (text, result) in TEXTS.iter().zip(&results) {
            assert!(result.failed.is_empty(), "{text}: {:?}", result.failed);
            let verdict = |plugin: &str| result.verdicts.iter().find(|v| v.plugin == plugin);
            let rust = verdict("caps-shouting");
            fired += usize::from(rust.is_some());
            for port in &PORTS[1..] {
                let other = verdict(port);
                assert_eq!(rust.is_some(), other.is_some(), "round {round}, {port} on {text:?}: {result:?}");
                if let (Some(r), Some(o)) = (rust, other) {
                    assert!((r.score - o.score).abs() < 1e-5, "{port} on {text:?}: {} vs {}", o.score, r.score);
                    assert_eq!(r.category, o.category, "{port} on {text:?}");
                    let rules = |v: &rules::PluginVerdict| v.hits.iter().map(|h| h.rule.clone()).collect::<Vec<_>>();
                    assert_eq!(rules(r), rules(o), "{port} on {text:?}");
                }
            }
        }
        assert!((4..TEXTS.len()).contains(&fired), "the events straddle the threshold: {fired} fired");
    }
}

#[test]
fn a_python_or_js_rule_that_raises_fails_its_own_call_and_the_others_keep_scoring() {
    let dir = PluginDir::new();
    // A setting the rule cannot read: it raises on its first call.
    for port in &PORTS[1..] {
        dir.install_with(port, |m| set_key(&m, "min_ratio", "\"loud\""));
    }
    dir.install("caps-shouting");
    let (host, _) = dir.open();
    let results = rules::score(&host, &[Event::sample("WHY WOULD YOU EVER DO THAT")]);
    let mut failed = results[0].failed.clone();
    failed.sort();
    assert_eq!(failed.len(), 2, "{failed:?}");
    for ((plugin, fault), port) in failed.iter().zip(["caps-shouting-js", "caps-shouting-py"]) {
        assert_eq!(plugin, port);
        // The guest's exception, not just "trapped", reaches the operator.
        assert!(fault.contains("SettingError") && fault.contains("setting `min_ratio`"), "{fault}");
        let info = host.get(port).unwrap().info();
        assert_eq!(info.errors.get("trap"), Some(&1), "{:?}", info.errors);
    }
    assert!(results[0].verdicts.iter().any(|v| v.plugin == "caps-shouting"), "{results:?}");
}
