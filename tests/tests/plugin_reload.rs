//! Hot reload, rollback and refusal of bad versions, with real components:
//! calls in flight finish on the version they started with, later calls run the
//! new one, no call fails during a swap, and a broken file never replaces a
//! working version.

use palisade_core::Event;
use palisade_plugins::install::{stamp_manifest, write_atomically};
use palisade_plugins::watcher::watch;
use palisade_plugins::{PluginHost, PluginState, to_wit};
use palisade_tests::{PluginDir, set_key, wasm};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn probe_manifest(m: String, version: &str, tag: &str, spin: u64) -> String {
    let m = set_key(&m, "version", &format!("\"{version}\""));
    let m = set_key(&m, "tag", &format!("\"{tag}\""));
    set_key(&m, "spin", &spin.to_string())
}

/// The tag the probe plugin answers with now.
fn tag(host: &PluginHost) -> String {
    let verdicts = host.get("probe").expect("probe loaded").score(&to_wit(&[Event::sample("x")])).expect("call ok");
    verdicts[0].hits[0].detail.clone().unwrap()
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ok() {
        assert!(started.elapsed() < Duration::from_secs(10), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn watcher_reload_under_concurrent_calls_loses_no_call_and_never_goes_back() {
    let dir = PluginDir::new();
    dir.install_with("probe", |m| probe_manifest(m, "1.0.0", "v1", 20_000));
    let (host, _) = dir.open();
    let _watcher = watch(host.clone(), Duration::from_millis(20)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (host, stop, calls) = (host.clone(), stop.clone(), calls.clone());
            std::thread::spawn(move || {
                let mut seen: Vec<String> = Vec::new();
                // Run until stopped, and at least until this caller has been served by v2
                // (a starved thread must not pass for one that never saw the swap).
                while !(stop.load(Ordering::Relaxed) && seen.last().is_some_and(|t| t == "v2")) {
                    let t = tag(&host); // panics on any failed call
                    calls.fetch_add(1, Ordering::Relaxed);
                    if seen.last() != Some(&t) {
                        seen.push(t);
                    }
                }
                seen
            })
        })
        .collect();
    wait_for("calls on v1", || calls.load(Ordering::Relaxed) > 100);
    dir.install_with("probe", |m| probe_manifest(m, "2.0.0", "v2", 20_000));
    wait_for("v2 to serve", || tag(&host) == "v2");
    let at_swap = calls.load(Ordering::Relaxed);
    wait_for("calls on v2", || calls.load(Ordering::Relaxed) > at_swap + 100);
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let seen = w.join().expect("no call failed");
        assert_eq!(seen, ["v1", "v2"], "each caller saw v1 then v2, never back");
    }
    let info = host.get("probe").unwrap().info();
    assert_eq!((info.version.as_deref(), info.previous_version.as_deref()), (Some("2.0.0"), Some("1.0.0")));
    assert!(info.errors.is_empty(), "{:?}", info.errors);
}

#[test]
fn a_call_in_flight_finishes_on_v1_while_a_later_call_runs_v2() {
    let dir = PluginDir::new();
    // v1 spins long enough to still be running when v2 is swapped in.
    dir.install_with("probe", |m| probe_manifest(set_key(&m, "deadline_ms", "20000"), "1.0.0", "v1", 600_000_000));
    let (host, _) = dir.open();
    let slow = {
        let host = host.clone();
        std::thread::spawn(move || {
            let t = tag(&host);
            (t, Instant::now())
        })
    };
    std::thread::sleep(Duration::from_millis(50));
    dir.install_with("probe", |m| probe_manifest(m, "2.0.0", "v2", 0));
    let outcomes = host.reload(false);
    assert_eq!(outcomes[0].outcome, "loaded", "{outcomes:?}");
    assert_eq!(tag(&host), "v2");
    let fast_done = Instant::now();
    let (slow_tag, slow_done) = slow.join().unwrap();
    assert_eq!(slow_tag, "v1", "the in-flight call finished on the version it started with");
    assert!(slow_done > fast_done, "the v1 call was still in flight when v2 answered");
}

#[test]
fn rollback_returns_the_previous_version_and_back() {
    let dir = PluginDir::new();
    dir.install_with("probe", |m| probe_manifest(m, "1.0.0", "v1", 0));
    let (host, _) = dir.open();
    assert!(host.rollback("probe").unwrap_err().to_string().contains("no previous version"));
    dir.install_with("probe", |m| probe_manifest(m, "2.0.0", "v2", 0));
    host.reload(false);
    assert_eq!(tag(&host), "v2");
    let outcome = host.rollback("probe").unwrap();
    assert_eq!((outcome.outcome, outcome.version.as_deref()), ("rolled_back", Some("1.0.0")));
    assert_eq!(tag(&host), "v1");
    assert_eq!(host.get("probe").unwrap().info().previous_version.as_deref(), Some("2.0.0"));
    host.rollback("probe").unwrap();
    assert_eq!(tag(&host), "v2");
}

#[test]
fn corrupt_files_and_hash_mismatches_are_refused_while_the_old_version_serves() {
    let dir = PluginDir::new();
    let manifest = palisade_tests::manifest("probe");
    dir.install_with("probe", |m| probe_manifest(m, "1.0.0", "v1", 0));
    let (host, _) = dir.open();
    let wasm_path = dir.path().join("probe.wasm");
    let toml_path = dir.path().join("probe.toml");

    // Not WebAssembly at all, with a manifest that matches its hash.
    let garbage = b"\0asm definitely not a component".to_vec();
    write_atomically(&wasm_path, &garbage).unwrap();
    write_atomically(
        &toml_path,
        stamp_manifest(&probe_manifest(manifest.clone(), "2.0.0", "v2", 0), &garbage).as_bytes(),
    )
    .unwrap();
    let out = host.reload(false);
    assert_eq!(out[0].outcome, "failed");
    assert!(out[0].error.as_deref().unwrap().contains("not a valid WebAssembly component"), "{out:?}");
    assert_eq!(tag(&host), "v1");
    let info = host.get("probe").unwrap().info();
    assert_eq!((info.state, info.version.as_deref()), (PluginState::Active, Some("1.0.0")));
    assert!(info.load_error.unwrap().contains("not a valid WebAssembly component"));

    // A real component whose hash is not the one the manifest records.
    write_atomically(&wasm_path, &wasm("hostile")).unwrap();
    let out = host.reload(false);
    assert!(out[0].error.as_deref().unwrap().contains("sha256 mismatch"), "{out:?}");
    assert_eq!(tag(&host), "v1");

    // A component of another world than the manifest declares.
    let hostile = wasm("hostile");
    write_atomically(&wasm_path, &hostile).unwrap();
    let as_validator = set_key(&probe_manifest(manifest.clone(), "3.0.0", "v3", 0), "kind", "\"validator\"");
    write_atomically(&toml_path, stamp_manifest(&as_validator, &hostile).as_bytes()).unwrap();
    let out = host.reload(false);
    assert!(out[0].error.as_deref().unwrap().contains("does not implement the `validator` world"), "{out:?}");

    // A manifest with an unknown key.
    let typo = format!("colour = \"red\"\n{}", probe_manifest(manifest, "4.0.0", "v4", 0));
    write_atomically(&toml_path, stamp_manifest(&typo, &hostile).as_bytes()).unwrap();
    let out = host.reload(false);
    assert!(out[0].error.as_deref().unwrap().contains("colour"), "{out:?}");
    assert_eq!(tag(&host), "v1", "v1 served through every refusal");

    // Fixing the files loads the fix.
    dir.install_with("probe", |m| probe_manifest(m, "5.0.0", "v5", 0));
    assert_eq!(host.reload(false)[0].outcome, "loaded");
    assert_eq!(tag(&host), "v5");
    assert!(host.get("probe").unwrap().info().load_error.is_none());
}

#[test]
fn install_refuses_a_component_of_the_wrong_world() {
    let dir = PluginDir::new();
    let Err(err) = palisade_plugins::install::install(
        &dir.runtime,
        &dir.path(),
        &wasm("policy"),
        &set_key(&palisade_tests::manifest("policy"), "kind", "\"heuristic\""),
    ) else {
        panic!("a validator installed as a heuristic");
    };
    let err = err.to_string();
    assert!(err.contains("does not implement the `heuristic` world"), "{err}");
    assert!(!dir.path().join("policy.wasm").exists(), "nothing written for a refused plugin");
}

#[test]
fn removing_a_plugin_unloads_it_and_restarts_reuse_the_compile_cache() {
    let dir = PluginDir::new();
    dir.install("probe");
    dir.install("caps-shouting");
    let (host, _) = dir.open();
    let info = host.get("caps-shouting").unwrap().info();
    assert_eq!(info.compile, Some(palisade_plugins::runtime::CompileSource::Cached), "install precompiled it");
    std::fs::remove_file(dir.path().join("caps-shouting.toml")).unwrap();
    let out = host.reload(false);
    assert!(out.iter().any(|o| o.plugin == "caps-shouting" && o.outcome == "removed"), "{out:?}");
    assert!(host.get("caps-shouting").is_none());
}
