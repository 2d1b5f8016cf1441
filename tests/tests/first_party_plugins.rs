//! Every shipped plugin loads as a real component from its own manifest, and the
//! rule stage routes clear examples to the category a moderator would pick.

use palisade_core::Event;
use palisade_plugins::rules;
use palisade_plugins::{PluginKind, PluginState, to_wit};
use palisade_tests::{PluginDir, repo_root, shipped};

fn all_shipped() -> (PluginDir, std::sync::Arc<palisade_plugins::PluginHost>) {
    let dir = PluginDir::new();
    for name in shipped() {
        dir.install(&name);
    }
    let (host, _) = dir.open();
    (dir, host)
}

#[test]
fn every_heuristic_family_and_the_policy_validator_load() {
    let (_dir, host) = all_shipped();
    let heuristics = host.active(PluginKind::Heuristic);
    let families = std::fs::read_dir(repo_root().join("plugins/heuristics"))
        .unwrap()
        .filter(|d| d.as_ref().is_ok_and(|d| d.path().join("plugin.toml").exists()))
        .count();
    assert_eq!(families, 13, "the heuristic families shipped (README, docs/plugins.md)");
    assert_eq!(heuristics.len(), families, "{:?}", host.list());
    assert_eq!(host.active(PluginKind::Validator).len(), 1);
    assert!(host.list().iter().all(|p| p.state == PluginState::Active && p.load_error.is_none()), "{:?}", host.list());
}

#[test]
fn clear_examples_get_their_category_and_benign_ones_stay_low() {
    let (_dir, host) = all_shipped();
    let cases = [
        ("WINNER!! You have won a £1000 cash prize, claim your prize at bit.ly/xyz", "SPAM"),
        ("I will kill you and everyone you love", "VIOLENCE"),
        ("you are a pathetic worthless loser", "TARGETED_HARASSMENT"),
        ("this is fucking bullshit", "TOXIC"),
        ("send nudes, horny and waiting", "SEXUAL"),
        ("those people are subhuman vermin", "HATE_SPEECH"),
        ("@a @b @c @d @e @f @g join now", "SPAM"),
    ];
    let events: Vec<Event> = cases.iter().map(|(t, _)| Event::sample(t)).collect();
    for (result, (text, want)) in rules::score(&host, &events).iter().zip(cases) {
        assert_eq!(result.category, want, "{text}: {result:?}");
        assert!(result.score >= 0.5, "{text}: {result:?}");
        assert!(result.failed.is_empty());
    }
    let benign = ["see you at lunch tomorrow!", "Thanks for the help with the report", "The meeting moved to 3pm"];
    let events: Vec<Event> = benign.iter().map(|t| Event::sample(t)).collect();
    for (result, text) in rules::score(&host, &events).iter().zip(benign) {
        assert!(result.score < 0.3, "{text}: {result:?}");
    }
}

#[test]
fn the_policy_validator_reports_field_and_code() {
    let (_dir, host) = all_shipped();
    let policy = host.get("policy").unwrap();
    let mut bad = Event::sample("");
    bad.platform = "myspace".into();
    let out = policy.validate(&to_wit(&[Event::sample("fine"), bad])).unwrap();
    assert!(out[0].is_empty());
    let codes: Vec<(String, String)> = out[1].iter().map(|v| (v.field.clone(), v.code.clone())).collect();
    assert!(codes.contains(&("content".into(), "required".into())), "{codes:?}");
    assert!(codes.contains(&("platform".into(), "not_allowed".into())), "{codes:?}");
}
