//! One loaded version of a plugin: its manifest, its prepared component and a
//! pool of reusable instances (one store each). A call borrows an instance, sets
//! the epoch deadline, calls, and returns the instance to the pool — or drops it
//! when the guest faulted (a trapped instance cannot be entered again) or has
//! served `recycle_after_calls`. It does not count faults or quarantine: the
//! registry does, from the [`Fault`]s returned here.

use super::bindings::{
    Delivery, Heuristic, Inbound, Outbound, PlatformAdapter, PlatformResponse, Validator, Verdict, Violation, WitEvent,
};
use super::manifest::{Manifest, PluginKind};
use super::runtime::{CompileSource, GuestState, Prepared, Runtime, RuntimeError, sha256_hex};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};
use wasmtime::Store;

/// Why one call of a plugin produced no result.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Fault {
    #[error("ran past its {0} ms deadline")]
    Timeout(u64),
    #[error("spent its fuel ({0} instructions) without finishing")]
    Fuel(u64),
    #[error("asked for more than its {0} MiB memory cap")]
    Memory(u64),
    #[error("trapped: {0}")]
    Trap(String),
    #[error("could not be instantiated: {0}")]
    Instantiate(String),
    #[error("broke the contract: {0}")]
    Contract(String),
}

impl Fault {
    /// Every [`Fault::label`].
    pub const LABELS: [&'static str; 6] = ["trap", "timeout", "fuel", "memory", "instantiate", "contract"];

    /// The metric label (`palisade_plugin_errors_total{error=…}`).
    pub fn label(&self) -> &'static str {
        match self {
            Fault::Timeout(_) => "timeout",
            Fault::Fuel(_) => "fuel",
            Fault::Memory(_) => "memory",
            Fault::Trap(_) => "trap",
            Fault::Instantiate(_) => "instantiate",
            Fault::Contract(_) => "contract",
        }
    }
}

/// `VERSION@SHA256` of a version (see [`PluginVersion::id`]).
pub fn version_id(version: &str, sha256: &str) -> String {
    format!("{version}@{sha256}")
}

/// Why a version could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("sha256 mismatch: the manifest says {expected}, the file is {actual}")]
    HashMismatch { expected: String, actual: String },
    #[error("manifest has no sha256 (install with `palisade plugins install`)")]
    HashMissing,
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("instantiation failed: {0}")]
    Instantiate(String),
}

/// What a heuristic call returns: a verdict per event, the labels it read, and
/// the host functions that failed it (`labels: …`; the verdicts lack their part).
#[derive(Debug)]
pub struct Scores {
    pub verdicts: Vec<Verdict>,
    pub labels: Vec<super::lending::LentLabel>,
    pub unavailable: Vec<String>,
}

enum Bound {
    Heuristic(Heuristic),
    Validator(Validator),
    Adapter(PlatformAdapter),
}

struct Instance {
    store: Store<GuestState>,
    bound: Bound,
    calls: u64,
}

pub struct PluginVersion {
    pub manifest: Manifest,
    pub sha256: String,
    pub loaded_at: SystemTime,
    pub compile: CompileSource,
    pub load_time: Duration,
    runtime: Arc<Runtime>,
    prepared: Prepared,
    idle: Mutex<Vec<Instance>>,
    /// An adapter's platform name, asked once per version (it is fixed per component).
    platform: OnceLock<String>,
    /// The trusted key that signed it (`ed25519:…`), when it was checked and signed.
    pub signer: OnceLock<String>,
    /// The largest linear memory any of its instances has grown to, in bytes
    /// (beside `limits.memory_mib`, it tells how close the cap is).
    pub peak_memory: AtomicUsize,
    /// The most fuel one call has spent per started `deadline_bytes` of input
    /// (beside `limits.fuel`, it tells how close the budget is).
    pub peak_fuel: AtomicU64,
}

impl PluginVersion {
    /// `VERSION@SHA256`: what tells two versions apart (the same component may ship
    /// under two manifests).
    pub fn id(&self) -> String {
        version_id(&self.manifest.version, &self.sha256)
    }

    /// Its version and content hash, as the audit trail names it.
    pub fn reference(&self) -> palisade_core::audit::VersionRef {
        palisade_core::audit::VersionRef { version: self.manifest.version.clone(), sha256: self.sha256.clone() }
    }

    /// Verify, compile (or take from cache), link and instantiate once. `require_hash`:
    /// the manifest must carry the file's sha256 (always, in a plugin directory).
    pub fn load(
        runtime: &Arc<Runtime>,
        manifest: Manifest,
        wasm: &[u8],
        require_hash: bool,
    ) -> Result<Arc<Self>, LoadError> {
        let started = Instant::now();
        let actual = sha256_hex(wasm);
        match &manifest.sha256 {
            Some(expected) if *expected != actual => {
                return Err(LoadError::HashMismatch { expected: expected.clone(), actual });
            }
            None if require_hash => return Err(LoadError::HashMissing),
            _ => {}
        }
        let (component, compile) = runtime.component(wasm, &actual)?;
        let prepared = runtime.prepare(&component, manifest.kind, &manifest.capabilities)?;
        let version = PluginVersion {
            manifest,
            sha256: actual,
            loaded_at: SystemTime::now(),
            compile,
            load_time: Duration::ZERO,
            runtime: runtime.clone(),
            prepared,
            idle: Mutex::new(Vec::new()),
            platform: OnceLock::new(),
            signer: OnceLock::new(),
            peak_memory: AtomicUsize::new(0),
            peak_fuel: AtomicU64::new(0),
        };
        // Instantiate once now: a version that cannot start never replaces a working one.
        let first = version.instantiate().map_err(|f| LoadError::Instantiate(f.to_string()))?;
        version.peak_memory.store(first.store.data().memory_bytes, Ordering::Relaxed);
        version.idle.lock().expect("pool lock").push(first);
        Ok(Arc::new(PluginVersion { load_time: started.elapsed(), ..version }))
    }

    pub fn kind(&self) -> PluginKind {
        self.manifest.kind
    }

    fn instantiate(&self) -> Result<Instance, Fault> {
        let limits = &self.manifest.limits;
        let state = GuestState {
            plugin: self.manifest.name.as_str().into(),
            settings: self.manifest.settings.clone(),
            memory_cap: (limits.memory_mib as usize) << 20,
            memory_denied: false,
            memory_bytes: 0,
            lending: self.runtime.lending.clone(),
            host_ticks: 0,
            labels_lent: Vec::new(),
            unavailable: Vec::new(),
            last_warning: None,
        };
        let mut store = Store::new(self.runtime.engine(), state);
        store.limiter(|s| s as &mut dyn wasmtime::ResourceLimiter);
        store.epoch_deadline_callback(|mut cx| Ok(super::runtime::on_deadline(cx.data_mut())));
        // Instantiation runs guest start-up code: give it a deadline and fuel too.
        store.set_epoch_deadline(limits.deadline_ms.max(1) * 10);
        store.set_fuel(limits.fuel.saturating_mul(10)).map_err(|e| Fault::Instantiate(root_message(&e)))?;
        let bound = match &self.prepared {
            Prepared::Heuristic(p) => p.instantiate(&mut store).map(Bound::Heuristic),
            Prepared::Validator(p) => p.instantiate(&mut store).map(Bound::Validator),
            Prepared::Adapter(p) => p.instantiate(&mut store).map(Bound::Adapter),
        }
        .map_err(|e| Fault::Instantiate(root_message(&e)))?;
        Ok(Instance { store, bound, calls: 0 })
    }

    /// Run `f` on a pooled instance under this version's memory cap and the
    /// deadline for a call handed `bytes` of input ([`super::manifest::Limits::deadline_for`]).
    fn call<R>(
        &self,
        bytes: usize,
        f: impl FnOnce(&mut Store<GuestState>, &Bound) -> wasmtime::Result<R>,
    ) -> Result<R, Fault> {
        let pooled = self.idle.lock().expect("pool lock").pop();
        let mut instance = match pooled {
            Some(i) => i,
            None => self.instantiate()?,
        };
        let limits = &self.manifest.limits;
        let (deadline_ms, fuel) = (limits.deadline_for(bytes), limits.fuel_for(bytes));
        instance.store.set_epoch_deadline(deadline_ms);
        instance.store.set_fuel(fuel).map_err(|e| Fault::Trap(root_message(&e)))?;
        let state = instance.store.data_mut();
        (state.memory_denied, state.host_ticks, state.last_warning) = (false, 0, None);
        state.labels_lent.clear();
        state.unavailable.clear();
        let outcome = f(&mut instance.store, &instance.bound);
        self.peak_memory.fetch_max(instance.store.data().memory_bytes, Ordering::Relaxed);
        let spent = fuel.saturating_sub(instance.store.get_fuel().unwrap_or(fuel));
        self.peak_fuel.fetch_max(spent / (fuel / limits.fuel).max(1), Ordering::Relaxed);
        match outcome {
            Ok(result) => {
                instance.calls += 1;
                if instance.calls < limits.recycle_after_calls {
                    self.idle.lock().expect("pool lock").push(instance);
                }
                Ok(result)
            }
            // The instance is dropped here: a faulted instance is never entered again.
            Err(e) => Err(if instance.store.data().memory_denied {
                Fault::Memory(limits.memory_mib)
            } else if matches!(e.downcast_ref::<wasmtime::Trap>(), Some(wasmtime::Trap::Interrupt)) {
                Fault::Timeout(deadline_ms)
            } else if matches!(e.downcast_ref::<wasmtime::Trap>(), Some(wasmtime::Trap::OutOfFuel)) {
                Fault::Fuel(fuel)
            } else {
                match &instance.store.data().last_warning {
                    Some(logged) => Fault::Trap(format!("{} (it last logged: {logged})", root_message(&e))),
                    None => Fault::Trap(root_message(&e)),
                }
            }),
        }
    }

    /// Heuristic: one verdict per event, scores clamped to [0, 1], and the entity
    /// labels the plugin was handed while scoring.
    pub fn score(&self, events: &[WitEvent]) -> Result<Scores, Fault> {
        let (mut verdicts, labels, unavailable) = self.call(event_bytes(events), |store, bound| match bound {
            Bound::Heuristic(h) => {
                let verdicts = h.call_score(&mut *store, events)?;
                let state = store.data_mut();
                Ok((verdicts, std::mem::take(&mut state.labels_lent), std::mem::take(&mut state.unavailable)))
            }
            _ => Err(wrong_kind(PluginKind::Heuristic)),
        })?;
        expect_len(verdicts.len(), events.len())?;
        for v in &mut verdicts {
            if v.score.is_nan() {
                return Err(Fault::Contract("a verdict score is NaN".into()));
            }
            v.score = v.score.clamp(0.0, 1.0);
        }
        Ok(Scores { verdicts, labels, unavailable })
    }

    /// Validator: one list of violations per event.
    pub fn validate(&self, events: &[WitEvent]) -> Result<Vec<Vec<Violation>>, Fault> {
        let out = self.call(event_bytes(events), |store, bound| match bound {
            Bound::Validator(v) => v.call_validate(store, events),
            _ => Err(wrong_kind(PluginKind::Validator)),
        })?;
        expect_len(out.len(), events.len())?;
        Ok(out)
    }

    /// Adapter: the platform it speaks for.
    pub fn platform(&self) -> Result<String, Fault> {
        if let Some(name) = self.platform.get() {
            return Ok(name.clone());
        }
        let name = self.call(0, |store, bound| match bound {
            Bound::Adapter(a) => a.call_platform(store),
            _ => Err(wrong_kind(PluginKind::PlatformAdapter)),
        })?;
        Ok(self.platform.get_or_init(|| name).clone())
    }

    /// Adapter: a raw webhook to events or a direct reply.
    pub fn parse_inbound(
        &self,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<Result<Inbound, super::bindings::AdapterError>, Fault> {
        let bytes = body.len() + headers.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
        self.call(bytes, |store, bound| match bound {
            Bound::Adapter(a) => a.call_parse_inbound(store, headers, body),
            _ => Err(wrong_kind(PluginKind::PlatformAdapter)),
        })
    }

    /// Adapter: a bot's post or action to the platform's HTTP request.
    pub fn format_outbound(
        &self,
        request: &Outbound,
    ) -> Result<Result<super::bindings::HttpRequest, super::bindings::AdapterError>, Fault> {
        self.call(0, |store, bound| match bound {
            Bound::Adapter(a) => a.call_format_outbound(store, request),
            _ => Err(wrong_kind(PluginKind::PlatformAdapter)),
        })
    }

    /// Adapter: the platform's answer to a delivery.
    pub fn parse_response(
        &self,
        response: &PlatformResponse,
    ) -> Result<Result<Delivery, super::bindings::AdapterError>, Fault> {
        self.call(response.body.len(), |store, bound| match bound {
            Bound::Adapter(a) => a.call_parse_response(store, response),
            _ => Err(wrong_kind(PluginKind::PlatformAdapter)),
        })
    }
}

/// The bytes a batch hands a plugin (what its deadline scales with).
fn event_bytes(events: &[WitEvent]) -> usize {
    events
        .iter()
        .map(|e| {
            let meta: usize = e.metadata.iter().map(|(k, v)| k.len() + v.len()).sum();
            e.content.len() + e.event_id.len() + e.user_id.len() + e.platform.len() + e.event_type.len() + meta + 64
        })
        .sum()
}

fn wrong_kind(wanted: PluginKind) -> wasmtime::Error {
    wasmtime::Error::msg(format!("not a {} plugin", wanted.as_str()))
}

fn expect_len(got: usize, want: usize) -> Result<(), Fault> {
    if got == want { Ok(()) } else { Err(Fault::Contract(format!("returned {got} results for {want} events"))) }
}

/// The first line of an error chain's innermost cause, bounded.
fn root_message(e: &wasmtime::Error) -> String {
    let text = e.root_cause().to_string();
    let line = text.lines().next().unwrap_or("").trim();
    line.chars().take(300).collect()
}
