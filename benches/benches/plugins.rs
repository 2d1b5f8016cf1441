//! The plugin call path and hot-reload latency, with real components.
//!
//! - `heuristic_batch/<plugin>`: one batched `score` call of 100 events (≈200 B
//!   each) on a pooled instance; divide by 100 for the per-event cost.
//! - `rule_stage/all_heuristics`: the whole rule stage (every shipped heuristic,
//!   one call each, verdicts combined) on the same 100 events.
//! - `reload/rename_to_serving`: from the rename of a new manifest into a watched
//!   plugin directory to the first call answered by the new version (install has
//!   precompiled it, so the reload deserializes), while 2 threads keep calling; any
//!   failed call aborts the benchmark.
//!
//! - `host_functions/<case>`: one batched `score` call of 100 events by 100
//!   different authors, with the host lending a real classifier, example bank and
//!   label store (Redis on 127.0.0.1:6379): `threats` (no host function, the
//!   baseline), `repeat-offender/unlabelled` (one `labels` call: 100 entities
//!   in one pipelined round trip), `repeat-offender/all_labelled` (`labels`, then
//!   `classify` on all 100 texts), `lend-echo` (`similar` k=2 + `classify` +
//!   `labels` on all 100; the 5 distinct texts' embeddings come from the cache
//!   after the first call, so `similar` here is cache + kNN, not the model).
//!
//! - `languages/<plugin>`: the same rule in Rust (`caps-shouting`), Python
//!   (`caps-shouting-py`, componentize-py) and JavaScript (`caps-shouting-js`,
//!   componentize-js): one batched `score` call of 100 events on a pooled
//!   instance. Before it, one line per plugin on stdout: component size, compile
//!   time, load time from the compile cache (deserialize + link + instantiate),
//!   the first call on a new instance, p50/p99 of 300 calls, and the peak
//!   linear memory.
//!
//! Run: `cargo bench -p palisade-benches --bench plugins`

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use palisade_core::Event;
use palisade_plugins::install::{stamp_manifest, write_atomically};
use palisade_plugins::rules;
use palisade_plugins::watcher::watch;
use palisade_plugins::{PluginKind, to_wit};
use palisade_tests::{PluginDir, set_key, shipped};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const TEXTS: [&str; 5] = [
    "Hey team, the deploy finished and the dashboards look healthy. Thanks everyone for staying late to get this out, see you all tomorrow at standup!",
    "WINNER!! You have been selected for a £1000 cash prize. Claim your prize now at bit.ly/claim-now before it expires, reply STOP to opt out",
    "you are such a pathetic loser, nobody wants you here, go away and never come back or I will find you and make you regret it",
    "Does anyone know a good recipe for banana bread? Mine always comes out too dry and I have tried three different ovens already",
    "@alice @bob @carol @dave @erin check out my new server 🔥🔥🔥🔥🔥🔥🔥🔥🔥🔥 free nitro for the first hundred people who join",
];

fn events(n: usize) -> Vec<Event> {
    (0..n).map(|i| Event::sample(TEXTS[i % TEXTS.len()])).collect()
}

fn call_path(c: &mut Criterion) {
    let dir = PluginDir::new();
    for name in shipped() {
        dir.install(&name);
    }
    let (host, _) = dir.open();
    let batch = events(100);
    let wit = to_wit(&batch);
    let mut group = c.benchmark_group("heuristic_batch");
    group.throughput(Throughput::Elements(batch.len() as u64));
    for (plugin, _) in host.active(PluginKind::Heuristic) {
        group.bench_with_input(BenchmarkId::from_parameter(&plugin.name), &wit, |b, wit| {
            b.iter(|| plugin.score(wit).expect("call ok"))
        });
    }
    group.finish();
    let mut group = c.benchmark_group("rule_stage");
    group.throughput(Throughput::Elements(batch.len() as u64));
    group.bench_function("all_heuristics", |b| b.iter(|| rules::score(&host, &batch)));
    group.finish();
}

fn reload(c: &mut Criterion) {
    let dir = PluginDir::new();
    let manifest = palisade_tests::manifest("probe");
    let wasm = palisade_tests::wasm("probe");
    dir.install("probe");
    let (host, _) = dir.open();
    let _watcher = watch(host.clone(), Duration::from_millis(20)).unwrap();
    let tag = |host: &palisade_plugins::PluginHost| -> String {
        let v = host.get("probe").unwrap().score(&to_wit(&[Event::sample("x")])).expect("no call fails during reload");
        v[0].hits[0].detail.clone().unwrap()
    };
    // Background load: calls that must never fail while versions swap.
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicU64::new(0));
    let load: Vec<_> = (0..2)
        .map(|_| {
            let (host, stop, calls) = (host.clone(), stop.clone(), calls.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    tag(&host);
                    calls.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let mut n = 0u64;
    c.bench_function("reload/rename_to_serving", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                n += 1;
                let want = format!("t{n}");
                let text = stamp_manifest(&set_key(&manifest, "tag", &format!("\"{want}\"")), &wasm);
                let started = Instant::now();
                write_atomically(&dir.path().join("probe.toml"), text.as_bytes()).unwrap();
                while tag(&host) != want {
                    assert!(started.elapsed() < Duration::from_secs(5), "reload never served {want}");
                }
                total += started.elapsed();
            }
            total
        })
    });
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.join().expect("a call failed during reload");
    }
    println!("reload: {} background calls, 0 failed, across {n} reloads", calls.load(Ordering::Relaxed));
}

fn host_functions(c: &mut Criterion) {
    let dir = PluginDir::new();
    for name in ["threats", "repeat-offender", "lend-echo"] {
        dir.install(name);
    }
    let (model, lib) = palisade_tests::model_files();
    let bank = palisade_tests::bank(&[
        ("ex-threat", "VIOLENCE", "I will find you and make you regret it"),
        ("ex-spam", "SPAM", "claim your cash prize now"),
        ("ex-hello", "LOW_RISK", "see you all tomorrow at standup"),
    ]);
    let prefix = palisade_tests::unique_prefix();
    let raw = std::collections::BTreeMap::from([
        ("PLUGIN_DIR".to_string(), dir.path().display().to_string()),
        ("SCREENING_MODEL".into(), model.display().to_string()),
        ("ORT_DYLIB_PATH".into(), lib.display().to_string()),
        ("VECTOR_DIR".into(), bank.path().display().to_string()),
        ("CLASSIFIER_DIR".into(), palisade_tests::default_classifier().display().to_string()),
        ("CLASSIFIER_WATCH".into(), "false".into()),
        ("PLUGIN_WATCH".into(), "false".into()),
        ("REDIS_KEY_PREFIX".into(), prefix),
    ]);
    let core = palisade::app::Process::start(palisade::config::Config::from_map(&raw).unwrap()).unwrap();
    let screener = Arc::new(core.screener().unwrap());
    screener.lend_to_plugins();
    let batch: Vec<Event> = (0..100)
        .map(|i| Event { user_id: format!("u{i}"), author_id: None, ..Event::sample(TEXTS[i % TEXTS.len()]) })
        .collect();
    let wit = &to_wit(&batch);
    let mut group = c.benchmark_group("host_functions");
    group.throughput(Throughput::Elements(batch.len() as u64));
    let call = |name: &str| {
        let plugin = core.plugins.get(name).unwrap();
        move || plugin.score(wit).expect("call ok")
    };
    group.bench_function("threats", |b| b.iter(call("threats")));
    group.bench_function("repeat-offender/unlabelled", |b| b.iter(call("repeat-offender")));
    for e in &batch {
        let label = palisade::entity_labels::EntityLabel {
            entity: format!("user:{}", e.user_id),
            label: "repeat-offender".into(),
            source: "bulk".into(),
            reason: "benchmark".into(),
            expires_at_ms: Some(palisade_core::now_ms() + 600_000),
            set_at_ms: 0,
            set_by: "bench".into(),
        };
        core.entity_labels.set(&label).unwrap();
    }
    group.bench_function("repeat-offender/all_labelled", |b| b.iter(call("repeat-offender")));
    group.bench_function("lend-echo", |b| b.iter(call("lend-echo")));
    group.finish();
}

fn languages(c: &mut Criterion) {
    let ports = ["caps-shouting", "caps-shouting-py", "caps-shouting-js"];
    let dir = PluginDir::new();
    let batch = to_wit(&events(100));
    for name in ports {
        let wasm = palisade_tests::wasm(name);
        let (_, compile) = dir.runtime.time_compile(&wasm).expect("compiles");
        dir.install(name); // compiles into the directory's cache
        let (host, _) = dir.open(); // loads from the cache: deserialize, link, one instance
        let plugin = host.get(name).expect("loaded");
        let info = plugin.info();
        let limits = palisade_plugins::manifest::Manifest::parse(&palisade_tests::manifest(name)).unwrap().limits;
        // The first call on a fresh instance (a Python or JS rule is built in it).
        let reloaded = dir.open().0;
        let fresh = reloaded.get(name).unwrap();
        let first = Instant::now();
        fresh.score(&batch[..1]).expect("call ok");
        let first_call = first.elapsed();
        let mut times: Vec<f64> = (0..300)
            .map(|_| {
                let t = Instant::now();
                plugin.score(&batch).expect("call ok");
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        times.sort_by(f64::total_cmp);
        println!(
            "languages/{name}: component {:.1} MB, compile {:.0} ms, cached load {:.1} ms, \
             first call {:.2} ms, 300 calls p50 {:.2} / p99 {:.2} ms, peak memory {:.1} MiB \
             (cap {} MiB, deadline {} ms)",
            wasm.len() as f64 / 1e6,
            compile.as_secs_f64() * 1e3,
            info.load_ms.unwrap_or(0.0),
            first_call.as_secs_f64() * 1e3,
            times[150],
            times[297],
            plugin.info().memory_peak_mib.unwrap_or(0.0),
            limits.memory_mib,
            limits.deadline_ms,
        );
    }
    let (host, _) = dir.open();
    let mut group = c.benchmark_group("languages");
    group.throughput(Throughput::Elements(batch.len() as u64));
    for name in ports {
        let plugin = host.get(name).unwrap();
        group.bench_function(name, |b| b.iter(|| plugin.score(&batch).expect("call ok")));
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = call_path, reload, host_functions, languages
}
criterion_main!(benches);
