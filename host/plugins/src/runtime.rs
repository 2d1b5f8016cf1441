//! The wasmtime side of the plugin platform: the one `Engine` of the process, its
//! epoch ticker (per-call deadlines), the on-disk cache of compiled components, the
//! linker (the `host` interface; every other import — WASI included — is a trap, so
//! plugins get no filesystem, network or entropy; wall-clock time comes from
//! `host.now-ms`), the capability check at link time (`capabilities`), and the
//! per-instance store state with its memory cap and what the host lends it
//! (`lending`). Time spent in host functions does not count against a call's
//! deadline. It knows nothing of plugin directories or reloads.

use super::bindings::{
    CategoryScore, HeuristicPre, Level, PlatformAdapterPre, ValidatorPre, WitEntityLabel, WitNeighbour,
    category_scores, host_iface, host_iface_0_1_0,
};
use super::capabilities::{self, Capability};
use super::lending::{Lending, LentLabel};
use super::manifest::PluginKind;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, ResourceLimiter};

/// One epoch tick: the unit of per-call deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot start the Wasm engine: {0}")]
    Engine(String),
    #[error("not a valid WebAssembly component: {0}")]
    Compile(String),
    #[error("does not implement the `{kind}` world: {reason}")]
    World { kind: &'static str, reason: String },
    #[error("{0}")]
    Ungranted(String),
}

/// How a component was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CompileSource {
    /// Compiled now (and written to the cache when there is one).
    Compiled,
    /// Loaded from the cache: no compilation.
    Cached,
}

/// A component ready to instantiate as one world.
#[derive(Clone)]
pub enum Prepared {
    Heuristic(HeuristicPre<GuestState>),
    Validator(ValidatorPre<GuestState>),
    Adapter(PlatformAdapterPre<GuestState>),
}

/// The engine, linker and compile cache shared by every plugin of the process.
pub struct Runtime {
    engine: Engine,
    linker: Linker<GuestState>,
    cache_dir: Option<PathBuf>,
    cache_key: String,
    /// What the host lends plugins (`similar`, `classify`, `labels`).
    pub lending: Arc<Lending>,
}

impl Runtime {
    /// One per process. `cache_dir`: where compiled components are kept, keyed by
    /// content hash and engine; `None` compiles in memory every time.
    pub fn new(cache_dir: Option<PathBuf>) -> Result<Arc<Self>, RuntimeError> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        // Fuel: each call's instruction budget (`limits.fuel`), the same on a busy machine as on an idle one.
        config.consume_fuel(true);
        // Plugins are synchronous: no async/concurrency machinery on the call path.
        config.concurrency_support(false);
        let engine = Engine::new(&config).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .map_err(|e| RuntimeError::Engine(e.to_string()))?;
        let mut linker = Linker::new(&engine);
        host_iface::add_to_linker::<GuestState, HasSelf<GuestState>>(&mut linker, |s| s)
            .map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        host_iface_0_1_0::add_to_linker::<GuestState, HasSelf<GuestState>>(&mut linker, |s| s)
            .map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        let cache_key = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            engine.precompile_compatibility_hash().hash(&mut h);
            format!("wasmtime{}-{:016x}", wasmtime_version(), h.finish())
        };
        if let Some(dir) = &cache_dir {
            std::fs::create_dir_all(dir)
                .map_err(|e| RuntimeError::Engine(format!("cannot create cache dir {}: {e}", dir.display())))?;
        }
        Ok(Arc::new(Runtime { engine, linker, cache_dir, cache_key, lending: Arc::default() }))
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The component for these bytes (whose SHA-256 is `sha256`), from the cache when
    /// this engine compiled it before.
    pub fn component(&self, wasm: &[u8], sha256: &str) -> Result<(Component, CompileSource), RuntimeError> {
        let Some(dir) = &self.cache_dir else {
            let c = Component::new(&self.engine, wasm).map_err(|e| RuntimeError::Compile(format!("{e:#}")))?;
            return Ok((c, CompileSource::Compiled));
        };
        let path = dir.join(format!("{sha256}-{}.cwasm", self.cache_key));
        if path.exists() {
            match self.deserialize_own(&path) {
                Ok(c) => return Ok((c, CompileSource::Cached)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "compile cache entry unusable; recompiling")
                }
            }
        }
        let bytes = self.engine.precompile_component(wasm).map_err(|e| RuntimeError::Compile(format!("{e:#}")))?;
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        if let Err(e) = std::fs::write(&tmp, &bytes).and_then(|_| std::fs::rename(&tmp, &path)) {
            tracing::warn!(path = %path.display(), error = %e, "cannot write compile cache entry");
        }
        #[allow(unsafe_code)]
        // SAFETY: `bytes` was produced just now by this engine's `precompile_component`.
        let component = unsafe { Component::deserialize(&self.engine, &bytes) }
            .map_err(|e| RuntimeError::Compile(format!("{e:#}")))?;
        Ok((component, CompileSource::Compiled))
    }

    /// Load a cache entry. Only files this host wrote into its own cache directory
    /// are ever deserialized (the cache directory must not be writable by others).
    fn deserialize_own(&self, path: &Path) -> wasmtime::Result<Component> {
        #[allow(unsafe_code)]
        // SAFETY: entries in the cache dir are written only by `component` above,
        // by an engine with the same compatibility hash (it is in the file name).
        unsafe {
            Component::deserialize_file(&self.engine, path)
        }
    }

    /// Link the component as the world of `kind`: the `host` functions `granted`
    /// covers are provided (a component importing another is refused, naming it),
    /// any other import becomes a trap; the exports must match the world.
    pub fn prepare(
        &self,
        component: &Component,
        kind: PluginKind,
        granted: &[Capability],
    ) -> Result<Prepared, RuntimeError> {
        capabilities::check(&self.engine, component, granted).map_err(RuntimeError::Ungranted)?;
        let world = |e: wasmtime::Error| RuntimeError::World { kind: kind.as_str(), reason: format!("{e:#}") };
        let mut linker = self.linker.clone();
        linker.define_unknown_imports_as_traps(component).map_err(world)?;
        let pre = linker.instantiate_pre(component).map_err(world)?;
        Ok(match kind {
            PluginKind::Heuristic => Prepared::Heuristic(HeuristicPre::new(pre).map_err(world)?),
            PluginKind::Validator => Prepared::Validator(ValidatorPre::new(pre).map_err(world)?),
            PluginKind::PlatformAdapter => Prepared::Adapter(PlatformAdapterPre::new(pre).map_err(world)?),
        })
    }

    /// Which world a component implements, trying each (for `plugins check`).
    pub fn detect_kind(&self, component: &Component) -> Option<PluginKind> {
        [PluginKind::Heuristic, PluginKind::Validator, PluginKind::PlatformAdapter]
            .into_iter()
            .find(|k| self.prepare(component, *k, &capabilities::ALL).is_ok())
    }

    /// Compile time of these bytes from scratch (for `plugins check`).
    pub fn time_compile(&self, wasm: &[u8]) -> Result<(Component, Duration), RuntimeError> {
        let t = Instant::now();
        let c = Component::new(&self.engine, wasm).map_err(|e| RuntimeError::Compile(format!("{e:#}")))?;
        Ok((c, t.elapsed()))
    }
}

fn wasmtime_version() -> &'static str {
    // Bumped with the dependency; part of the cache key beside the engine hash.
    "48"
}

/// Hex SHA-256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// What one plugin instance's store holds: who it is, its settings, its memory
/// cap, what the host lends it, and what the current call borrowed.
pub struct GuestState {
    pub plugin: Arc<str>,
    pub settings: Arc<BTreeMap<String, String>>,
    pub memory_cap: usize,
    /// Set when the guest asked for memory past its cap (tells memory faults from traps).
    pub memory_denied: bool,
    /// The largest linear memory this instance has grown to, in bytes.
    pub memory_bytes: usize,
    pub lending: Arc<Lending>,
    /// Epoch ticks spent in host functions during the current call: the deadline
    /// is extended by them (the guest is not charged for the host's work).
    pub host_ticks: u64,
    /// Labels handed to the guest during the current call (non-empty answers).
    pub labels_lent: Vec<LentLabel>,
    /// Host functions whose backing store failed during the current call, with
    /// why (`labels: timed out`): the guest got empty answers, so its verdict
    /// lacks what they would have said.
    pub unavailable: Vec<String>,
    /// The last line of the last warn/error message the guest logged during the
    /// current call: a trap's fault quotes it (the Python and JS SDKs log a rule's
    /// exception before the call traps).
    pub last_warning: Option<String>,
}

impl GuestState {
    /// Run a host function, adding its time to `host_ticks`.
    fn lend<R>(&mut self, f: impl FnOnce(&Lending) -> R) -> R {
        let started = Instant::now();
        let out = f(&self.lending);
        self.host_ticks += (started.elapsed().as_nanos() / EPOCH_TICK.as_nanos()) as u64 + 1;
        out
    }

    /// A host function's answer, or (its store failed) `n` empty lists, the
    /// failure recorded in `unavailable` and logged once per call.
    fn or_unavailable<T>(&mut self, function: &str, found: Result<Vec<Vec<T>>, String>, n: usize) -> Vec<Vec<T>> {
        found.unwrap_or_else(|e| {
            if !self.unavailable.iter().any(|u| u.starts_with(function)) {
                tracing::warn!(plugin = &*self.plugin, function, error = %e, "a host function's store failed; the verdict is degraded");
                self.unavailable.push(format!("{function}: {e}"));
            }
            (0..n).map(|_| Vec::new()).collect()
        })
    }
}

/// The epoch-deadline callback: a call past its deadline is extended once by the
/// time its host functions took, and interrupted when none is left.
pub fn on_deadline(state: &mut GuestState) -> wasmtime::UpdateDeadline {
    match std::mem::take(&mut state.host_ticks) {
        0 => wasmtime::UpdateDeadline::Interrupt,
        ticks => wasmtime::UpdateDeadline::Continue(ticks),
    }
}

impl ResourceLimiter for GuestState {
    fn memory_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.memory_cap {
            self.memory_denied = true;
            return Ok(false);
        }
        self.memory_bytes = self.memory_bytes.max(desired);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

impl host_iface::Host for GuestState {
    fn log(&mut self, level: Level, message: String) {
        let mut message = message;
        if message.len() > 2048 {
            let mut cut = 2048;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        let plugin = &*self.plugin;
        if matches!(level, Level::Warn | Level::Error)
            && let Some(last) = message.lines().map(str::trim).rfind(|l| !l.is_empty())
        {
            self.last_warning = Some(last.to_string());
        }
        match level {
            Level::Trace => tracing::trace!(plugin, "{message}"),
            Level::Debug => tracing::debug!(plugin, "{message}"),
            Level::Info => tracing::info!(plugin, "{message}"),
            Level::Warn => tracing::warn!(plugin, "{message}"),
            Level::Error => tracing::error!(plugin, "{message}"),
        }
    }

    fn config(&mut self, key: String) -> Option<String> {
        self.settings.get(&key).cloned()
    }

    fn now_ms(&mut self) -> u64 {
        palisade_core::now_ms()
    }

    fn similar(&mut self, texts: Vec<String>, k: u32) -> Vec<Vec<WitNeighbour>> {
        let found = self.lend(|l| l.similar(&texts, k as usize));
        let found = self.or_unavailable("similar", found, texts.len());
        found.into_iter().map(|ns| ns.into_iter().map(Into::into).collect()).collect()
    }

    fn classify(&mut self, texts: Vec<String>) -> Vec<Vec<CategoryScore>> {
        match self.lend(|l| l.classify(&texts)) {
            Some(all) => all.iter().map(|p| category_scores(p)).collect(),
            None => vec![Vec::new(); texts.len()],
        }
    }

    fn labels(&mut self, entities: Vec<String>) -> Vec<Vec<WitEntityLabel>> {
        let found = self.lend(|l| l.labels(&entities));
        let found = self.or_unavailable("labels", found, entities.len());
        self.labels_lent.extend(found.iter().flatten().cloned());
        found.into_iter().map(|ls| ls.into_iter().map(Into::into).collect()).collect()
    }
}

/// The host as published in 0.1.0 (log, config, clock): the same functions.
impl host_iface_0_1_0::Host for GuestState {
    fn log(&mut self, level: host_iface_0_1_0::Level, message: String) {
        host_iface::Host::log(self, level.into(), message)
    }

    fn config(&mut self, key: String) -> Option<String> {
        host_iface::Host::config(self, key)
    }

    fn now_ms(&mut self) -> u64 {
        host_iface::Host::now_ms(self)
    }
}

/// The host functions and the deadline callback without a guest (the way
/// spin's factor tests exercise a host interface): a `GuestState` as a store
/// holds it, called directly, with stand-in stores behind `Lending`.
#[cfg(test)]
mod host_function_tests {
    use super::*;
    use crate::lending::{LabelSource, LentNeighbour, Semantic};
    use host_iface::Host;

    /// How many answers each text got (the generated WIT types have no `PartialEq`).
    fn sizes<T>(answers: &[Vec<T>]) -> Vec<usize> {
        answers.iter().map(Vec::len).collect()
    }

    fn state(lending: Lending) -> GuestState {
        GuestState {
            plugin: "under-test".into(),
            settings: Arc::new(BTreeMap::from([("keywords".to_string(), "a\nb".to_string())])),
            memory_cap: 1 << 20,
            memory_denied: false,
            memory_bytes: 0,
            lending: Arc::new(lending),
            host_ticks: 0,
            labels_lent: Vec::new(),
            unavailable: Vec::new(),
            last_warning: None,
        }
    }

    struct Bank;
    impl Semantic for Bank {
        fn similar(&self, texts: &[String], k: usize) -> Result<Vec<Vec<LentNeighbour>>, String> {
            let near = |t: &String| LentNeighbour { id: t.clone(), label: "SPAM".into(), similarity: 0.9 };
            Ok(texts.iter().map(|t| vec![near(t); k]).collect())
        }
        fn classify(&self, texts: &[String]) -> Option<Vec<Vec<f32>>> {
            Some(texts.iter().map(|_| vec![0.1, 0.9, 0.0, 0.0, 0.0, 0.0, 0.0]).collect())
        }
    }

    struct Down;
    impl Semantic for Down {
        fn similar(&self, _: &[String], _: usize) -> Result<Vec<Vec<LentNeighbour>>, String> {
            Err("qdrant: connection refused".into())
        }
        fn classify(&self, _: &[String]) -> Option<Vec<Vec<f32>>> {
            None
        }
    }
    impl LabelSource for Down {
        fn labels(&self, _: &[String]) -> Result<Vec<Vec<LentLabel>>, String> {
            Err("redis: timed out".into())
        }
    }

    struct Labels;
    impl LabelSource for Labels {
        fn labels(&self, entities: &[String]) -> Result<Vec<Vec<LentLabel>>, String> {
            let label = |e: &String| LentLabel {
                entity: e.clone(),
                label: "repeat_offender".into(),
                source: "moderator:7".into(),
                reason: "three strikes".into(),
                expires_at_ms: None,
            };
            Ok(entities.iter().map(|e| if e == "user:bad" { vec![label(e)] } else { Vec::new() }).collect())
        }
    }

    #[test]
    fn config_and_clock() {
        let mut s = state(Lending::default());
        assert_eq!(s.config("keywords".into()).as_deref(), Some("a\nb"));
        assert_eq!(s.config("missing".into()), None);
        let now = palisade_core::now_ms();
        assert!(s.now_ms().abs_diff(now) < 5_000);
    }

    #[test]
    fn log_is_capped_and_a_warning_is_kept_for_the_fault() {
        let mut s = state(Lending::default());
        s.log(Level::Info, "just saying".into());
        assert_eq!(s.last_warning, None, "info is not a warning");
        s.log(Level::Error, format!("Traceback:\n  boom\nValueError: bad keyword\n\n{}", ""));
        assert_eq!(s.last_warning.as_deref(), Some("ValueError: bad keyword"));
        // 2,048 bytes at most, cut at a character boundary (no panic on 'é').
        s.log(Level::Warn, "é".repeat(2000));
        assert_eq!(s.last_warning.as_ref().map(String::len), Some(2048));
    }

    #[test]
    fn nothing_lent_answers_empty_lists_one_per_text() {
        let mut s = state(Lending::default());
        let texts = vec!["a".to_string(), "b".to_string()];
        assert_eq!(sizes(&s.similar(texts.clone(), 5)), [0, 0]);
        assert_eq!(sizes(&s.classify(texts.clone())), [0, 0]);
        assert_eq!(sizes(&s.labels(texts)), [0, 0]);
        assert!(s.unavailable.is_empty(), "nothing lent is not a failure");
    }

    #[test]
    fn lent_stores_answer_and_their_time_is_not_the_guests() {
        let lending = Lending::default();
        lending.set_semantic(Arc::new(Bank));
        lending.set_labels(Arc::new(Labels));
        let mut s = state(lending);
        let near = s.similar(vec!["win a prize".into()], 100);
        assert_eq!(near[0].len(), crate::lending::MAX_K, "k is capped");
        assert_eq!((near[0][0].label.as_str(), near[0][0].similarity), ("SPAM", 0.9));
        let scores = s.classify(vec!["x".into()]);
        assert_eq!(scores[0].len(), 7);
        let labels = s.labels(vec!["user:ok".into(), "user:bad".into()]);
        assert_eq!((labels[0].len(), labels[1].len()), (0, 1));
        assert_eq!(s.labels_lent.len(), 1, "what affected the verdict is kept for the prediction");
        assert!(s.host_ticks >= 3, "each host call adds at least a tick: {}", s.host_ticks);
    }

    #[test]
    fn a_failed_store_answers_empty_and_is_recorded_once() {
        let lending = Lending::default();
        lending.set_semantic(Arc::new(Down));
        lending.set_labels(Arc::new(Down));
        let mut s = state(lending);
        assert_eq!(sizes(&s.similar(vec!["a".into(), "b".into()], 3)), [0, 0]);
        assert_eq!(sizes(&s.similar(vec!["c".into()], 3)), [0]);
        assert_eq!(sizes(&s.labels(vec!["user:u".into()])), [0]);
        assert_eq!(s.unavailable, ["similar: qdrant: connection refused", "labels: redis: timed out"]);
    }

    #[test]
    fn the_deadline_is_extended_by_host_time_once_then_interrupts() {
        let mut s = state(Lending::default());
        assert!(matches!(on_deadline(&mut s), wasmtime::UpdateDeadline::Interrupt), "no host time: stop");
        s.host_ticks = 7;
        assert!(matches!(on_deadline(&mut s), wasmtime::UpdateDeadline::Continue(7)));
        assert!(matches!(on_deadline(&mut s), wasmtime::UpdateDeadline::Interrupt), "extended once, not forever");
    }

    #[test]
    fn memory_past_the_cap_is_refused_and_remembered() {
        let mut s = state(Lending::default());
        assert!(s.memory_growing(0, 64 << 10, None).unwrap());
        assert_eq!(s.memory_bytes, 64 << 10);
        assert!(!s.memory_growing(64 << 10, 2 << 20, None).unwrap());
        assert!(s.memory_denied, "a memory fault is told from a trap");
        assert!(s.table_growing(0, 1000, None).unwrap() && !s.table_growing(0, 1_000_000, None).unwrap());
    }
}
