//! The plugin directory as the services see it: every plugin by name, its current
//! and previous version, its state (enabled, quarantined, load error), and the
//! operations ops perform live — reload, rollback, enable, disable. Calls go
//! through [`Plugin`], which counts faults and quarantines a plugin after
//! `limits.max_faults` of them within `limits.fault_window_ms` (a success does
//! not wipe the count). A quarantined plugin is tried again by itself after
//! `limits.retry_after_ms`, doubling each time it is quarantined again (up to
//! 16×), or at once by an operator's reload. Deadlines scale with the bytes a
//! call is handed (`Limits::deadline_for`), so long valid input is not a fault.
//! Swaps are atomic: a call clones the
//! current version's `Arc` when it starts and finishes on it, whatever happens
//! to the directory meanwhile. Every change (install, reload, refused load,
//! removal, rollback, enable/disable, quarantine) goes to the audit sink, when
//! the process set one, with who did it (`*_by`) and both versions.
//!
//! An operator's changes are written to the directory, so a restart keeps them:
//! a rollback swaps the files with those an install kept in `.previous/`, and a
//! disable leaves a marker `.disabled/NAME` (an enable removes it).

use super::bindings::{Verdict, Violation, WitEvent};
use super::install::{previous_dir, write_files};
use super::manifest::{Manifest, Mode, PluginKind};
use super::metrics::PluginMetrics;
use super::runtime::{CompileSource, Runtime, sha256_hex};
use super::signing::Trust;
use super::version::{Fault, PluginVersion};
use palisade_core::audit::{AuditEntry, AuditSink, VersionRef};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Instant, UNIX_EPOCH};

/// Why a plugin could not be called at all.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    #[error("plugin `{0}` is {1}")]
    Unavailable(String, PluginState),
    #[error("plugin `{0}` {1}")]
    Fault(String, Fault),
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("no plugin named `{0}`")]
    NotFound(String),
    #[error("plugin `{0}` has no previous version to roll back to")]
    NoPrevious(String),
    #[error("plugin `{0}`: {1}")]
    Files(String, String),
}

/// Whether a plugin serves calls, and if not why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PluginState {
    Active,
    Disabled,
    Quarantined,
    /// Nothing loaded (the only version failed to load).
    Failed,
}

impl PluginState {
    pub fn as_str(self) -> &'static str {
        match self {
            PluginState::Active => "active",
            PluginState::Disabled => "disabled",
            PluginState::Quarantined => "quarantined",
            PluginState::Failed => "failed",
        }
    }
}

impl std::fmt::Display for PluginState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Default)]
struct Status {
    enabled: bool,
    quarantined: Option<Quarantine>,
    /// When recent faults happened (those within the fault window are kept).
    faults: std::collections::VecDeque<Instant>,
    /// Quarantines since the last success after a retry (the backoff's exponent).
    strikes: u32,
    load_error: Option<String>,
    /// SHA-256 of the manifest and Wasm bytes last tried, so unchanged files are skipped.
    fingerprint: String,
}

struct Quarantine {
    reason: String,
    /// When it is tried again (`None`: only an operator's reload lifts it).
    retry_at: Option<Instant>,
}

/// One plugin name in the directory and the versions loaded under it.
pub struct Plugin {
    pub name: String,
    /// Never quarantined (an offline run: train, eval, backtest).
    offline: bool,
    current: RwLock<Option<Arc<PluginVersion>>>,
    previous: Mutex<Option<Arc<PluginVersion>>>,
    state: Mutex<Status>,
    metrics: PluginMetrics,
    audit: Audit,
}

/// The host's audit sink, once the process has one (shared by every plugin).
type Audit = Arc<OnceLock<Arc<dyn AuditSink>>>;

fn record(audit: &Audit, entry: AuditEntry) {
    if let Some(sink) = audit.get() {
        sink.record(entry);
    }
}

impl Plugin {
    fn new(name: &str, metrics: PluginMetrics, audit: Audit, offline: bool) -> Self {
        Plugin {
            name: name.into(),
            offline,
            current: RwLock::new(None),
            previous: Mutex::new(None),
            state: Mutex::new(Status::default()),
            metrics,
            audit,
        }
    }

    fn current_ref(&self) -> Option<VersionRef> {
        self.current().map(|v| v.reference())
    }

    /// The version serving now.
    pub fn current(&self) -> Option<Arc<PluginVersion>> {
        self.current.read().expect("plugin lock").clone()
    }

    /// Lift a quarantine and its fault count, and say so in the gauge. `forgive`
    /// (a reload or a new version) also resets the backoff; its retry time does not.
    fn lift(&self, state: &mut Status, forgive: bool) {
        state.quarantined = None;
        state.faults.clear();
        if forgive {
            state.strikes = 0;
        }
        self.metrics.quarantined.with_label_values(&[self.name.as_str()]).set(0);
    }

    pub fn state(&self) -> PluginState {
        let mut state = self.state.lock().expect("plugin lock");
        if state.quarantined.as_ref().is_some_and(|q| q.retry_at.is_some_and(|at| Instant::now() >= at)) {
            tracing::info!(plugin = %self.name, "retrying a quarantined plugin");
            self.lift(&mut state, false);
        }
        if self.current().is_none() {
            PluginState::Failed
        } else if state.quarantined.is_some() {
            PluginState::Quarantined
        } else if !state.enabled {
            PluginState::Disabled
        } else {
            PluginState::Active
        }
    }

    /// Serve `version` (the current one becomes previous); `disabled`: an
    /// operator's disable (`.disabled/NAME`) holds over the manifest's `enabled`.
    fn swap_in(&self, version: Arc<PluginVersion>, disabled: bool) {
        let old = self.current.write().expect("plugin lock").replace(version.clone());
        if old.is_some() {
            *self.previous.lock().expect("plugin lock") = old;
        }
        let mut state = self.state.lock().expect("plugin lock");
        state.enabled = version.manifest.enabled && !disabled;
        self.lift(&mut state, true);
        state.load_error = None;
    }

    /// Run one call on the current version, with metrics and fault accounting.
    fn run<R>(&self, events: usize, f: impl FnOnce(&PluginVersion) -> Result<R, Fault>) -> Result<R, CallError> {
        let version = match self.state() {
            PluginState::Active => self.current().expect("active has a version"),
            other => return Err(CallError::Unavailable(self.name.clone(), other)),
        };
        let started = Instant::now();
        let result = f(&version);
        let name = [self.name.as_str()];
        self.metrics.latency.with_label_values(&name).observe(started.elapsed().as_secs_f64());
        self.metrics.calls.with_label_values(&name).inc();
        self.metrics.events.with_label_values(&name).inc_by(events as u64);
        let mut state = self.state.lock().expect("plugin lock");
        match result {
            Ok(r) => {
                if state.faults.is_empty() {
                    state.strikes = 0;
                }
                Ok(r)
            }
            Err(fault) => {
                self.metrics.errors.with_label_values(&[self.name.as_str(), fault.label()]).inc();
                let limits = &version.manifest.limits;
                let now = Instant::now();
                let window = std::time::Duration::from_millis(limits.fault_window_ms);
                state.faults.push_back(now);
                while state.faults.front().is_some_and(|t| now.duration_since(*t) > window) {
                    state.faults.pop_front();
                }
                let recent = state.faults.len();
                tracing::warn!(plugin = %self.name, error = %fault, faults_in_window = recent, "plugin call failed");
                if recent >= limits.max_faults as usize && state.quarantined.is_none() && !self.offline {
                    let backoff = (limits.retry_after_ms > 0)
                        .then(|| std::time::Duration::from_millis(limits.retry_after_ms << state.strikes.min(4)));
                    state.strikes += 1;
                    let reason = format!("{recent} faults in {} ms, last: {fault}", limits.fault_window_ms);
                    match backoff {
                        Some(b) => {
                            tracing::error!(plugin = %self.name, %reason, retry_in_ms = b.as_millis() as u64, "plugin quarantined")
                        }
                        None => tracing::error!(plugin = %self.name, %reason, "plugin quarantined until reloaded"),
                    }
                    self.metrics.quarantines.with_label_values(&name).inc();
                    self.metrics.quarantined.with_label_values(&name).set(1);
                    let at = Some(version.reference());
                    let detail =
                        serde_json::json!({ "reason": reason, "retry_in_ms": backoff.map(|b| b.as_millis() as u64) });
                    record(
                        &self.audit,
                        AuditEntry::new("quarantine", "host", &self.name).versions(at.clone(), at).detail(detail),
                    );
                    state.quarantined = Some(Quarantine { reason, retry_at: backoff.map(|b| now + b) });
                }
                Err(CallError::Fault(self.name.clone(), fault))
            }
        }
    }

    /// Heuristic call: one verdict per event.
    pub fn score(&self, events: &[WitEvent]) -> Result<Vec<Verdict>, CallError> {
        self.scores(events).map(|s| s.verdicts)
    }

    /// Heuristic call: one verdict per event, and the entity labels it read.
    pub fn scores(&self, events: &[WitEvent]) -> Result<super::version::Scores, CallError> {
        self.run(events.len(), |v| v.score(events))
    }

    /// Validator call: the violations of each event.
    pub fn validate(&self, events: &[WitEvent]) -> Result<Vec<Vec<Violation>>, CallError> {
        self.run(events.len(), |v| v.validate(events))
    }

    /// Adapter calls go through here too (one fault accounting for every kind).
    pub fn with_adapter<R>(&self, f: impl FnOnce(&PluginVersion) -> Result<R, Fault>) -> Result<R, CallError> {
        self.run(1, f)
    }

    /// What the admin listing shows.
    pub fn info(&self) -> PluginInfo {
        let current = self.current();
        let previous = self.previous.lock().expect("plugin lock").clone();
        let st = self.state();
        let state = self.state.lock().expect("plugin lock");
        let name = [self.name.as_str()];
        let hist = self.metrics.latency.with_label_values(&name);
        let count = hist.get_sample_count();
        PluginInfo {
            name: self.name.clone(),
            state: st,
            kind: current.as_ref().map(|v| v.manifest.kind),
            version: current.as_ref().map(|v| v.manifest.version.clone()),
            sha256: current.as_ref().map(|v| v.sha256.clone()),
            signer: current.as_ref().and_then(|v| v.signer.get().cloned()),
            capabilities: current.as_ref().map(|v| v.manifest.capabilities.clone()).unwrap_or_default(),
            language: current.as_ref().map(|v| v.manifest.language),
            mode: current.as_ref().map(|v| v.manifest.mode),
            weight: current.as_ref().map(|v| v.manifest.weight),
            enabled: state.enabled,
            load_error: state.load_error.clone(),
            quarantine_reason: state.quarantined.as_ref().map(|q| q.reason.clone()),
            retry_in_ms: state
                .quarantined
                .as_ref()
                .and_then(|q| q.retry_at)
                .map(|at| at.saturating_duration_since(Instant::now()).as_millis() as u64),
            loaded_at: current.as_ref().and_then(|v| v.loaded_at.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_secs()),
            load_ms: current.as_ref().map(|v| v.load_time.as_secs_f64() * 1e3),
            memory_peak_mib: current
                .as_ref()
                .map(|v| v.peak_memory.load(std::sync::atomic::Ordering::Relaxed) as f64 / (1 << 20) as f64),
            fuel_peak: current.as_ref().map(|v| v.peak_fuel.load(std::sync::atomic::Ordering::Relaxed)),
            compile: current.as_ref().map(|v| v.compile),
            previous_version: previous.map(|v| v.manifest.version.clone()),
            calls: count,
            events: self.metrics.events.with_label_values(&name).get(),
            errors: Fault::LABELS
                .into_iter()
                .map(|e| (e, self.metrics.errors.with_label_values(&[self.name.as_str(), e]).get()))
                .filter(|(_, n)| *n > 0)
                .collect(),
            mean_latency_us: if count == 0 { 0.0 } else { hist.get_sample_sum() / count as f64 * 1e6 },
            quarantines: self.metrics.quarantines.with_label_values(&name).get(),
        }
    }
}

/// One row of `GET /v1/admin/plugins`.
#[derive(Debug, Clone, Serialize)]
pub struct PluginInfo {
    pub name: String,
    pub state: PluginState,
    pub kind: Option<PluginKind>,
    pub version: Option<String>,
    pub sha256: Option<String>,
    /// The trusted key that signed the serving version (`ed25519:…`), if any.
    pub signer: Option<String>,
    /// The host functions the serving version's manifest grants.
    pub capabilities: Vec<super::capabilities::Capability>,
    /// The language the serving version was written in (it set the default limits).
    pub language: Option<super::manifest::Language>,
    pub mode: Option<Mode>,
    pub weight: Option<f32>,
    pub enabled: bool,
    pub load_error: Option<String>,
    pub quarantine_reason: Option<String>,
    /// When a quarantined plugin is tried again by itself.
    pub retry_in_ms: Option<u64>,
    pub loaded_at: Option<u64>,
    pub load_ms: Option<f64>,
    /// The largest linear memory any instance of the serving version has used
    /// (its cap is the manifest's `limits.memory_mib`).
    pub memory_peak_mib: Option<f64>,
    /// The most fuel one call of the serving version has spent per started
    /// `limits.deadline_bytes` of input (its budget is the manifest's `limits.fuel`).
    pub fuel_peak: Option<u64>,
    pub compile: Option<CompileSource>,
    pub previous_version: Option<String>,
    pub calls: u64,
    pub events: u64,
    pub errors: BTreeMap<&'static str, u64>,
    pub mean_latency_us: f64,
    pub quarantines: u64,
}

/// What a reload did to one plugin.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReloadOutcome {
    pub plugin: String,
    /// `loaded`, `unchanged`, `failed`, `removed` or `rolled_back`.
    pub outcome: &'static str,
    pub version: Option<String>,
    pub error: Option<String>,
}

/// Every plugin of one directory, loaded into one runtime.
pub struct PluginHost {
    runtime: Arc<Runtime>,
    dir: PathBuf,
    plugins: RwLock<BTreeMap<String, Arc<Plugin>>>,
    reload_lock: Mutex<()>,
    metrics: PluginMetrics,
    audit: Audit,
    /// Whose signatures count, and whether one is required.
    trust: Trust,
    /// Plugins are never quarantined ([`PluginHost::open_offline`]).
    offline: bool,
}

impl PluginHost {
    /// Open a plugin directory and load what is in it (failures are reported per
    /// plugin in the listing, not fatal); signatures are optional.
    pub fn open(runtime: Arc<Runtime>, dir: impl Into<PathBuf>, metrics: PluginMetrics) -> Arc<Self> {
        Self::open_trusting(runtime, dir, metrics, Trust::default())
    }

    /// [`PluginHost::open`], checking each component's signature against `trust` before it loads.
    pub fn open_trusting(
        runtime: Arc<Runtime>,
        dir: impl Into<PathBuf>,
        metrics: PluginMetrics,
        trust: Trust,
    ) -> Arc<Self> {
        Self::open_with(runtime, dir.into(), metrics, trust, false)
    }

    /// [`PluginHost::open_trusting`] for an offline run (`palisade train`, `eval`,
    /// `backtest`): a plugin is never quarantined, so what it scores does not depend
    /// on when it faulted; each fault still counts ([`PluginHost::fault_summary`]).
    pub fn open_offline(
        runtime: Arc<Runtime>,
        dir: impl Into<PathBuf>,
        metrics: PluginMetrics,
        trust: Trust,
    ) -> Arc<Self> {
        Self::open_with(runtime, dir.into(), metrics, trust, true)
    }

    fn open_with(
        runtime: Arc<Runtime>,
        dir: PathBuf,
        metrics: PluginMetrics,
        trust: Trust,
        offline: bool,
    ) -> Arc<Self> {
        let host = Arc::new(PluginHost {
            runtime,
            dir,
            plugins: RwLock::new(BTreeMap::new()),
            reload_lock: Mutex::new(()),
            metrics,
            audit: Default::default(),
            trust,
            offline,
        });
        for outcome in host.reload(true) {
            match &outcome.error {
                Some(error) => {
                    tracing::error!(plugin = %outcome.plugin, %error, "plugin failed to load")
                }
                None => {
                    tracing::info!(plugin = %outcome.plugin, version = ?outcome.version, outcome = outcome.outcome, "plugin")
                }
            }
        }
        host
    }

    /// Record every change from now on (install, reload, rollback, enable/disable,
    /// quarantine) in `sink`. Set once; later calls are ignored.
    pub fn set_audit(&self, sink: Arc<dyn AuditSink>) {
        let _ = self.audit.set(sink);
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    pub fn get(&self, name: &str) -> Option<Arc<Plugin>> {
        self.plugins.read().expect("registry lock").get(name).cloned()
    }

    /// Every plugin, by name.
    pub fn all(&self) -> Vec<Arc<Plugin>> {
        self.plugins.read().expect("registry lock").values().cloned().collect()
    }

    /// The plugins of one kind that are active now.
    pub fn active(&self, kind: PluginKind) -> Vec<(Arc<Plugin>, Arc<PluginVersion>)> {
        self.all()
            .into_iter()
            .filter(|p| p.state() == PluginState::Active)
            .filter_map(|p| p.current().map(|v| (p, v)))
            .filter(|(_, v)| v.kind() == kind)
            .collect()
    }

    /// Plugins of `kind` that should be serving and are not: quarantined, or
    /// loaded with nothing to serve (failed). Disabled ones are left out: an
    /// operator chose that. Screening reports these on every prediction.
    pub fn degraded(&self, kind: PluginKind) -> Vec<String> {
        self.all()
            .into_iter()
            .filter(|p| match p.state() {
                PluginState::Quarantined => p.current().is_some_and(|v| v.kind() == kind),
                PluginState::Failed => true,
                _ => false,
            })
            .map(|p| p.name.clone())
            .collect()
    }

    pub fn list(&self) -> Vec<PluginInfo> {
        self.all().iter().map(|p| p.info()).collect()
    }

    /// An operator's disable of `name`, kept in the directory.
    fn disabled_marker(&self, name: &str) -> PathBuf {
        self.dir.join(".disabled").join(name)
    }

    /// Every plugin that faulted, with its faults by kind (`threats: fuel 2, trap 1`;
    /// `none`): what an offline run reports, since its figures lack those verdicts.
    pub fn fault_summary(&self) -> String {
        let faulted: Vec<String> = self
            .list()
            .into_iter()
            .filter(|p| !p.errors.is_empty())
            .map(|p| {
                let kinds: Vec<String> = p.errors.iter().map(|(kind, n)| format!("{kind} {n}")).collect();
                format!("{}: {}", p.name, kinds.join(", "))
            })
            .collect();
        if faulted.is_empty() { "none".into() } else { faulted.join("; ") }
    }

    /// Load what changed in the directory. `force` also retries files that failed
    /// before and lifts quarantines (an operator's explicit reload).
    pub fn reload(&self, force: bool) -> Vec<ReloadOutcome> {
        self.reload_by(force, "host")
    }

    /// [`PluginHost::reload`], audited as `actor`'s doing.
    pub fn reload_by(&self, force: bool, actor: &str) -> Vec<ReloadOutcome> {
        let _one_at_a_time = self.reload_lock.lock().expect("reload lock");
        let mut outcomes = Vec::new();
        let found = scan(&self.dir);
        for (name, files) in &found {
            let plugin = self.slot(name);
            let outcome = match files {
                Err(error) => self.fail(&plugin, None, error.clone(), actor),
                Ok(files) => {
                    let fingerprint = files.fingerprint();
                    if plugin.state.lock().expect("plugin lock").fingerprint == fingerprint {
                        if !force {
                            continue;
                        }
                        let mut state = plugin.state.lock().expect("plugin lock");
                        if state.load_error.is_none() && plugin.current().is_some() {
                            // Same files, loaded fine: an explicit reload only lifts a quarantine.
                            plugin.lift(&mut state, true);
                            outcomes.push(ReloadOutcome {
                                plugin: name.clone(),
                                outcome: "unchanged",
                                version: plugin.current().map(|v| v.manifest.version.clone()),
                                error: None,
                            });
                            continue;
                        }
                    }
                    self.load(&plugin, files, fingerprint, actor)
                }
            };
            outcomes.push(outcome);
        }
        let gone: Vec<String> =
            self.plugins.read().expect("registry lock").keys().filter(|n| !found.contains_key(*n)).cloned().collect();
        for name in gone {
            let removed = self.plugins.write().expect("registry lock").remove(&name);
            self.metrics.reloads.with_label_values(&[name.as_str(), "removed"]).inc();
            let old = removed.and_then(|p| p.current_ref());
            record(&self.audit, AuditEntry::new("remove", actor, &name).versions(old, None));
            tracing::info!(plugin = %name, "plugin removed");
            outcomes.push(ReloadOutcome { plugin: name, outcome: "removed", version: None, error: None });
        }
        outcomes
    }

    fn slot(&self, name: &str) -> Arc<Plugin> {
        if let Some(p) = self.get(name) {
            return p;
        }
        let mut plugins = self.plugins.write().expect("registry lock");
        plugins
            .entry(name.to_string())
            .or_insert_with(|| Arc::new(Plugin::new(name, self.metrics.clone(), self.audit.clone(), self.offline)))
            .clone()
    }

    fn load(&self, plugin: &Plugin, files: &PluginFiles, fingerprint: String, actor: &str) -> ReloadOutcome {
        let wasm = files.wasm.as_slice();
        let manifest = match std::str::from_utf8(&files.manifest)
            .map_err(|e| format!("manifest is not UTF-8: {e}"))
            .and_then(|t| Manifest::parse(t).map_err(|e| e.to_string()))
        {
            Ok(m) if m.name != plugin.name => {
                Err(format!("manifest name `{}` does not match its file name `{}.toml`", m.name, plugin.name))
            }
            other => other,
        };
        let loaded = manifest.and_then(|m| {
            let signer = self.trust.check(&m, &sha256_hex(wasm), files.signature.as_deref())?;
            let version = PluginVersion::load(&self.runtime, m, wasm, true).map_err(|e| e.to_string())?;
            if let Some(signer) = signer {
                let _ = version.signer.set(signer);
            }
            Ok(version)
        });
        match loaded {
            Ok(version) => {
                let v = version.manifest.version.clone();
                tracing::info!(plugin = %plugin.name, version = %v, compile = ?version.compile,
                    load_ms = version.load_time.as_secs_f64() * 1e3, "plugin version loaded");
                let (old, new) = (plugin.current_ref(), Some(version.reference()));
                plugin.swap_in(version, self.disabled_marker(&plugin.name).exists());
                plugin.state.lock().expect("plugin lock").fingerprint = fingerprint;
                self.metrics.reloads.with_label_values(&[plugin.name.as_str(), "loaded"]).inc();
                let action = if old.is_some() { "reload" } else { "install" };
                record(&self.audit, AuditEntry::new(action, actor, &plugin.name).versions(old, new));
                ReloadOutcome { plugin: plugin.name.clone(), outcome: "loaded", version: Some(v), error: None }
            }
            Err(error) => self.fail(plugin, Some(fingerprint), error, actor),
        }
    }

    fn fail(&self, plugin: &Plugin, fingerprint: Option<String>, error: String, actor: &str) -> ReloadOutcome {
        let serving = plugin.current().map(|v| v.manifest.version.clone());
        tracing::error!(plugin = %plugin.name, %error, still_serving = ?serving, "plugin version refused");
        let mut state = plugin.state.lock().expect("plugin lock");
        state.load_error = Some(error.clone());
        if let Some(f) = fingerprint {
            state.fingerprint = f;
        }
        self.metrics.reloads.with_label_values(&[plugin.name.as_str(), "failed"]).inc();
        let serving_ref = plugin.current_ref();
        let entry = AuditEntry::new("load_failed", actor, &plugin.name).versions(serving_ref.clone(), serving_ref);
        record(&self.audit, entry.detail(serde_json::json!({ "error": error })));
        ReloadOutcome { plugin: plugin.name.clone(), outcome: "failed", version: serving, error: Some(error) }
    }

    /// Serve the previously loaded version again (the current one becomes previous).
    pub fn rollback(&self, name: &str) -> Result<ReloadOutcome, AdminError> {
        self.rollback_by(name, "host")
    }

    /// [`PluginHost::rollback`], audited as `actor`'s doing. Where the directory
    /// keeps the previous version's files (`.previous/`, kept by every install and
    /// promotion), they are swapped with the current ones first, so the rollback
    /// survives a restart; the version is then the one loaded before, or loaded
    /// from those files (after a restart, nothing previous is loaded).
    pub fn rollback_by(&self, name: &str, actor: &str) -> Result<ReloadOutcome, AdminError> {
        let _one_at_a_time = self.reload_lock.lock().expect("reload lock");
        let plugin = self.get(name).ok_or_else(|| AdminError::NotFound(name.into()))?;
        let files = |e: String| AdminError::Files(name.into(), e);
        let kept = previous_dir(&self.dir);
        let on_disk = match read_plugin(&kept, name) {
            Some(Ok(previous)) => {
                let current = read_plugin(&self.dir, name).and_then(Result::ok);
                let write = |dir: &Path, f: &PluginFiles| {
                    write_files(dir, name, &f.wasm, &f.manifest, f.signature.as_deref())
                        .map_err(|e| files(e.to_string()))
                };
                write(&self.dir, &previous)?;
                match &current {
                    Some(current) => write(&kept, current)?,
                    None => remove_files(&kept, name),
                }
                Some(previous)
            }
            Some(Err(e)) => return Err(files(e)),
            None => None,
        };
        let loaded = plugin.previous.lock().expect("plugin lock").take();
        let previous = match (loaded, &on_disk) {
            (Some(v), Some(f)) if Some(v.id()) == f.id() => Some(v),
            (Some(v), None) => Some(v),
            _ => None,
        };
        let Some(previous) = previous else {
            // Nothing loaded matches the kept files (a restart came between): load them.
            let files = on_disk.ok_or_else(|| AdminError::NoPrevious(name.into()))?;
            let outcome = self.load(&plugin, &files, files.fingerprint(), actor);
            return match outcome.error {
                Some(e) => Err(AdminError::Files(name.into(), format!("the previous version does not load: {e}"))),
                None => Ok(ReloadOutcome { outcome: "rolled_back", ..outcome }),
            };
        };
        let version = previous.manifest.version.clone();
        let (old, new) = (plugin.current_ref(), Some(previous.reference()));
        plugin.swap_in(previous, self.disabled_marker(name).exists());
        if let Some(f) = &on_disk {
            plugin.state.lock().expect("plugin lock").fingerprint = f.fingerprint();
        }
        record(&self.audit, AuditEntry::new("rollback", actor, name).versions(old, new));
        self.metrics.reloads.with_label_values(&[name, "rolled_back"]).inc();
        tracing::info!(plugin = %name, %version, "plugin rolled back");
        Ok(ReloadOutcome { plugin: name.into(), outcome: "rolled_back", version: Some(version), error: None })
    }

    /// Turn a plugin on or off without touching its files.
    pub fn set_enabled(&self, name: &str, enabled: bool) -> Result<PluginInfo, AdminError> {
        self.set_enabled_by(name, enabled, "host")
    }

    /// [`PluginHost::set_enabled`], audited as `actor`'s doing. A disable is kept
    /// as `.disabled/NAME` in the directory (an enable removes it), so a restart
    /// keeps it.
    pub fn set_enabled_by(&self, name: &str, enabled: bool, actor: &str) -> Result<PluginInfo, AdminError> {
        let plugin = self.get(name).ok_or_else(|| AdminError::NotFound(name.into()))?;
        let marker = self.disabled_marker(name);
        let written = match enabled {
            true => std::fs::remove_file(&marker)
                .or_else(|e| if e.kind() == std::io::ErrorKind::NotFound { Ok(()) } else { Err(e) }),
            false => marker.parent().map_or(Ok(()), std::fs::create_dir_all).and_then(|_| std::fs::write(&marker, b"")),
        };
        written.map_err(|e| AdminError::Files(name.into(), format!("{}: {e}", marker.display())))?;
        plugin.state.lock().expect("plugin lock").enabled = enabled;
        tracing::info!(plugin = %name, enabled, "plugin toggled");
        let at = plugin.current_ref();
        record(
            &self.audit,
            AuditEntry::new(if enabled { "enable" } else { "disable" }, actor, name).versions(at.clone(), at),
        );
        Ok(plugin.info())
    }
}

fn remove_files(dir: &Path, name: &str) {
    for ext in ["toml", "wasm", "sig"] {
        let _ = std::fs::remove_file(dir.join(format!("{name}.{ext}")));
    }
}

/// A plugin's manifest, Wasm bytes and signature (when there is a `NAME.sig`), as
/// read from the directory.
struct PluginFiles {
    manifest: Vec<u8>,
    wasm: Vec<u8>,
    signature: Option<Vec<u8>>,
}

impl PluginFiles {
    /// `VERSION@SHA256` of the version these files hold (`None`: no valid manifest).
    fn id(&self) -> Option<String> {
        let manifest = Manifest::parse(std::str::from_utf8(&self.manifest).ok()?).ok()?;
        Some(super::version::version_id(&manifest.version, &sha256_hex(&self.wasm)))
    }

    /// What changed since the last load is told by this.
    fn fingerprint(&self) -> String {
        let sig = self.signature.as_deref().unwrap_or_default();
        sha256_hex(&[self.manifest.as_slice(), self.wasm.as_slice(), sig].concat())
    }
}

/// `NAME.toml` + `NAME.wasm` (+ `NAME.sig`) in a directory, by name. Hidden files
/// (such as an installer's temporaries) and other files are ignored.
fn scan(dir: &Path) -> BTreeMap<String, Result<PluginFiles, String>> {
    let mut found = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        tracing::warn!(dir = %dir.display(), "plugin directory not readable");
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let (Some(stem), Some("toml")) =
            (path.file_stem().and_then(|s| s.to_str()), path.extension().and_then(|s| s.to_str()))
        else {
            continue;
        };
        if stem.starts_with('.') {
            continue;
        }
        if let Some(files) = read_plugin(dir, stem) {
            found.insert(stem.to_string(), files);
        }
    }
    found
}

/// `NAME.toml`, `NAME.wasm` and `NAME.sig` in `dir` (`None`: no manifest).
fn read_plugin(dir: &Path, name: &str) -> Option<Result<PluginFiles, String>> {
    let path = dir.join(format!("{name}.toml"));
    let manifest = match std::fs::read(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => return Some(Err(format!("cannot read {}: {e}", path.display()))),
    };
    let wasm_path = path.with_extension("wasm");
    let signature = std::fs::read(path.with_extension("sig")).ok();
    Some(
        std::fs::read(&wasm_path)
            .map_err(|e| format!("cannot read {}: {e}", wasm_path.display()))
            .map(|wasm| PluginFiles { manifest, wasm, signature }),
    )
}
