//! Hostile guests are contained: a plugin that loops, traps, panics or asks for
//! 1 GiB fails only its own call; the next event is served, other plugins keep
//! scoring, faults are counted by kind, and repeated faults within a window
//! quarantine the plugin until its retry time or an operator's reload.

use palisade_core::Event;
use palisade_plugins::rules;
use palisade_plugins::{CallError, Fault, PluginState, to_wit};
use palisade_tests::{PluginDir, set_key};
use std::time::{Duration, Instant};

fn event(content: &str) -> Vec<palisade_plugins::WitEvent> {
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
        // A loop is stopped by the 10 ms backstop or, when the epoch ticker runs
        // late on a busy machine, by its fuel: the sandbox either way.
        let by_fuel = content == "loop" && fault.label() == "fuel";
        assert!(fault.label() == want || by_fuel, "{content}: {fault}");
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
    let looped = if info.errors.contains_key("fuel") { "fuel" } else { "timeout" };
    assert_eq!(info.errors.get(looped), Some(&1));
    assert_eq!(info.errors.get("memory"), Some(&2));
    assert_eq!(info.errors.get("trap"), Some(&3));
    assert_eq!(info.state, PluginState::Active, "max_faults is 100 in the hostile manifest");
    let text = palisade_core::telemetry::render(&registry);
    assert!(
        text.contains(&format!(r#"palisade_plugin_errors_total{{error="{looped}",plugin="hostile"}} 1"#)),
        "{text}"
    );
}

#[test]
fn repeated_faults_quarantine_until_an_explicit_reload() {
    let dir = PluginDir::new();
    dir.install_with("hostile", |m| set_key(&m, "max_faults", "2").replace("[limits]", "[limits]\nretry_after_ms = 0"));
    let (host, registry) = dir.open();
    let hostile = host.get("hostile").unwrap();
    hostile.score(&event("trap")).unwrap_err();
    assert_eq!(hostile.state(), PluginState::Active, "one fault is not enough");
    hostile.score(&event("panic")).unwrap_err();
    assert_eq!(hostile.state(), PluginState::Quarantined);
    let err = hostile.score(&event("hello")).unwrap_err();
    assert!(matches!(err, CallError::Unavailable(_, PluginState::Quarantined)), "{err}");
    assert!(hostile.info().quarantine_reason.unwrap().contains("2 faults in 60000 ms"));
    assert!(
        palisade_core::telemetry::render(&registry)
            .contains(r#"palisade_plugin_quarantines_total{plugin="hostile"} 1"#)
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
fn faults_count_within_a_window_and_a_success_does_not_wipe_them() {
    let dir = PluginDir::new();
    dir.install_with("hostile", |m| {
        set_key(&m, "max_faults", "3").replace("[limits]", "[limits]\nfault_window_ms = 400\nretry_after_ms = 0")
    });
    let (host, _) = dir.open();
    let hostile = host.get("hostile").unwrap();
    // Spread out past the window: old faults are forgotten.
    for _ in 0..4 {
        hostile.score(&event("trap")).unwrap_err();
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(hostile.state(), PluginState::Active);
    // Close together, successes between them: quarantined all the same.
    std::thread::sleep(Duration::from_millis(450));
    for i in 0..3 {
        if i > 0 {
            hostile.score(&event("fine")).unwrap();
        }
        hostile.score(&event("trap")).unwrap_err();
    }
    assert_eq!(hostile.state(), PluginState::Quarantined);
}

#[test]
fn a_quarantined_plugin_is_retried_by_itself_with_a_growing_backoff() {
    let dir = PluginDir::new();
    dir.install_with("hostile", |m| {
        set_key(&m, "max_faults", "1").replace("[limits]", "[limits]\nretry_after_ms = 300")
    });
    let (host, registry) = dir.open();
    let hostile = host.get("hostile").unwrap();
    // A guest that really loops: stopped by its fuel or, on a slow machine, the
    // wall-clock backstop, whichever comes first; quarantined.
    let err = hostile.score(&event("loop")).unwrap_err();
    assert!(matches!(err, CallError::Fault(_, Fault::Timeout(_) | Fault::Fuel(_))), "{err}");
    assert_eq!(hostile.state(), PluginState::Quarantined);
    assert!(palisade_core::telemetry::render(&registry).contains(r#"palisade_plugin_quarantined{plugin="hostile"} 1"#));
    assert!(hostile.info().retry_in_ms.is_some_and(|ms| ms <= 300));
    std::thread::sleep(Duration::from_millis(350));
    assert_eq!(hostile.state(), PluginState::Active, "retried after 300 ms");
    assert!(palisade_core::telemetry::render(&registry).contains(r#"palisade_plugin_quarantined{plugin="hostile"} 0"#));
    // It faults again at once: the next wait is twice as long.
    hostile.score(&event("trap")).unwrap_err();
    std::thread::sleep(Duration::from_millis(350));
    assert_eq!(hostile.state(), PluginState::Quarantined, "the second wait is 600 ms");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(hostile.state(), PluginState::Active);
    assert!(hostile.score(&event("hello")).is_ok());
}

/// An offline run (train, eval, backtest) never quarantines: what a rule scores
/// does not depend on when it faulted, and every fault is reported.
#[test]
fn an_offline_host_never_quarantines_and_reports_every_fault() {
    let dir = PluginDir::new();
    dir.install_with("hostile", |m| set_key(&m, "max_faults", "1"));
    let metrics = palisade_plugins::PluginMetrics::register(&prometheus::Registry::new()).unwrap();
    let host = palisade_plugins::PluginHost::open_offline(dir.runtime.clone(), dir.path(), metrics, Default::default());
    let hostile = host.get("hostile").unwrap();
    for _ in 0..3 {
        hostile.score(&event("trap")).unwrap_err();
    }
    assert_eq!(hostile.state(), PluginState::Active, "max_faults 1, yet still scoring");
    assert!(hostile.score(&event("hello")).is_ok());
    assert_eq!(host.fault_summary(), "hostile: trap 3");
    // The same plugin in a service's host is quarantined at once.
    let (live, _) = dir.open();
    live.get("hostile").unwrap().score(&event("trap")).unwrap_err();
    assert_eq!(live.get("hostile").unwrap().state(), PluginState::Quarantined);
}
