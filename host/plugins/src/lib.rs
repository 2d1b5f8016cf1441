//! `palisade-plugins`: the plugin platform: validators, heuristic rules and platform adapters as
//! WebAssembly components behind `wit/palisade.wit`, run by wasmtime.
//!
//! - `bindings`: the WIT worlds and the only conversions to/from generated types.
//! - `manifest`: the `NAME.toml` beside each `NAME.wasm`.
//! - `capabilities`: which host functions a manifest grants; ungranted imports refused at load.
//! - `lending`: what the host lends plugins (`similar`, `classify`, `labels`) and where from.
//! - `install`: verify, precompile and atomically write a plugin into a directory.
//! - `runtime`: the engine, epoch deadlines, compile cache, linker, sandbox limits.
//! - `version`: one loaded version and its pool of reusable instances.
//! - `registry`: plugins by name; reload, rollback, enable/disable, quarantine.
//! - `signing`: Ed25519 signatures over a component and its manifest (`NAME.sig`), trusted keys.
//! - `rules`: the rule stage — every heuristic plugin over a batch, verdicts combined.
//! - `validators`: the validator stage — every validator plugin over a batch.
//! - `watcher`: hot reload on file changes.
//! - `metrics`: per-plugin Prometheus metrics.
//!
//! Plugin logic (rules, platform formats) lives in `plugins/`, never here. This
//! crate depends on `palisade-core` only: no Redis (stores are lent through the
//! traits in `lending`), no HTTP server, no model.

pub mod bindings;
pub mod capabilities;
pub mod install;
pub mod lending;
pub mod manifest;
pub mod metrics;
pub mod registry;
pub mod rules;
pub mod runtime;
pub mod signing;
pub mod validators;
pub mod version;
pub mod watcher;

pub use bindings::{Category, Verdict, Violation, WitEvent, to_wit};
pub use manifest::{Manifest, Mode, PluginKind};
pub use metrics::PluginMetrics;
pub use registry::{CallError, Plugin, PluginHost, PluginInfo, PluginState, ReloadOutcome};
pub use runtime::Runtime;
pub use version::{Fault, PluginVersion};
