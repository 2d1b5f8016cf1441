//! Hostile guests are contained: a plugin that loops, traps, panics or asks for
//! 1 GiB fails only its own call; the next event is served, other plugins keep
//! scoring, faults are counted by kind, and repeated faults quarantine the plugin
//! until an operator reloads it.

use palisade::core::Event;
use palisade::plugins::rules;
use palisade::plugins::{CallError, Fault, PluginState, to_wit};
use palisade_tests::{PluginDir, set_key};
use std::time::{Duration, Instant};

fn event(content: &str) -> Vec<palisade::plugins::WitEvent> {
    to_wit(&[Event::sample(content)])
}

#[test]
fn each_hostile_behaviour_fails_only_its_call_and_the_next_event_is_served() {
    let dir = PluginDir::new();
    dir.install("hostile");
    dir.install("offensive-language");
    let (host, registry) = dir.open();
    let hostile = host.get("hostile").unwrap();

    for (content, want) in [("loop", "timeout"), ("trap", "trap"), ("panic", "trap"), ("alloc", "memory")] {
        let started = Instant::now();
        let err = hostile.score(&event(content)).expect_err(content);
        let CallError::Fault(_, fault) = &err else { panic!("{content}: {err}") };
        assert_eq!(fault.label(), want, "{content}: {fault}");
        // Stopped by the sandbox, not by the test harness.
        assert!(started.elapsed() < Duration::from_secs(5), "{content} took {:?}", started.elapsed());
        let ok = hostile.score(&event("hello")).expect("the next event is served");
        assert_eq!(ok[0].hits[0].rule, "hostile/ok");
    }

    // A panic's message reaches the error, a memory fault names the cap.
    let Err(CallError::Fault(_, Fault::Memory(cap))) = hostile.score(&event("alloc")) else { panic!() };
    assert_eq!(cap, 64);

    // In a screening batch, the faulting plugin costs only its own verdict.
    let batch = [Event::sample("trap"), Event::sample("you stupid idiot")];
    let results = rules::score(&host, &batch);
    assert!(results[1].verdicts.iter().any(|v| v.plugin == "offensive-language"), "{:?}", results[1]);
    assert!(results[1].failed.iter().any(|(p, _)| p == "hostile"));
    assert!(results[1].score > 0.5);

    let info = host.get("hostile").unwrap().info();
    assert_eq!(info.errors.get("timeout"), Some(&1));
    assert_eq!(info.errors.get("memory"), Some(&2));
    assert_eq!(info.errors.get("trap"), Some(&3));
    assert_eq!(info.state, PluginState::Active, "max_faults is 100 in the hostile manifest");
    let text = palisade::telemetry::render(&registry);
    assert!(text.contains(r#"palisade_plugin_errors_total{error="timeout",plugin="hostile"} 1"#), "{text}");
}

#[test]
fn repeated_faults_quarantine_until_an_explicit_reload() {
    let dir = PluginDir::new();
    dir.install_with("hostile", |m| set_key(&m, "max_faults", "2"));
    let (host, registry) = dir.open();
    let hostile = host.get("hostile").unwrap();
    hostile.score(&event("trap")).unwrap_err();
    assert_eq!(hostile.state(), PluginState::Active, "one fault is not enough");
    hostile.score(&event("panic")).unwrap_err();
    assert_eq!(hostile.state(), PluginState::Quarantined);
    let err = hostile.score(&event("hello")).unwrap_err();
    assert!(matches!(err, CallError::Unavailable(_, PluginState::Quarantined)), "{err}");
    assert!(hostile.info().quarantine_reason.unwrap().contains("2 consecutive faults"));
    assert!(
        palisade::telemetry::render(&registry).contains(r#"palisade_plugin_quarantines_total{plugin="hostile"} 1"#)
    );

    // A watcher-style reload of unchanged files does not lift it; an operator's does.
    host.reload(false);
    assert_eq!(hostile.state(), PluginState::Quarantined);
    let outcomes = host.reload(true);
    assert!(outcomes.iter().any(|o| o.plugin == "hostile" && o.outcome == "unchanged"), "{outcomes:?}");
    assert_eq!(hostile.state(), PluginState::Active);
    assert!(hostile.score(&event("hello")).is_ok());
}

#[test]
fn a_success_resets_the_fault_count() {
    let dir = PluginDir::new();
    dir.install_with("hostile", |m| set_key(&m, "max_faults", "2"));
    let (host, _) = dir.open();
    let hostile = host.get("hostile").unwrap();
    for _ in 0..5 {
        hostile.score(&event("trap")).unwrap_err();
        hostile.score(&event("fine")).unwrap();
    }
    assert_eq!(hostile.state(), PluginState::Active);
}
