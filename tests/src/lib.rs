//! Helpers for the integration tests in `tests/`: the real plugins that
//! `build.rs` built, installed into throw-away plugin directories.

use palisade::plugins::install::{cache_dir, install};
use palisade::plugins::{PluginHost, PluginMetrics, PluginVersion, Runtime};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The built component of a plugin crate (`hate-terms` → `hate_terms.wasm`).
pub fn wasm(crate_name: &str) -> Vec<u8> {
    let path = Path::new(env!("PALISADE_PLUGIN_WASM_DIR"))
        .join(format!("{}.wasm", crate_name.replace('-', "_")));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The source manifest of a plugin crate, found under plugins/*/NAME/plugin.toml.
pub fn manifest(crate_name: &str) -> String {
    let src = Path::new(env!("PALISADE_PLUGIN_SRC_DIR"));
    for family in ["heuristics", "validators", "platform-adapters", "testing"] {
        let path = src.join(family).join(crate_name).join("plugin.toml");
        if let Ok(text) = std::fs::read_to_string(&path) {
            return text;
        }
    }
    panic!("no plugin.toml for {crate_name}")
}

/// Every shipped plugin crate (not the test-only ones).
pub fn shipped() -> Vec<String> {
    let src = Path::new(env!("PALISADE_PLUGIN_SRC_DIR"));
    let mut names = Vec::new();
    for family in ["heuristics", "validators", "platform-adapters"] {
        if let Ok(entries) = std::fs::read_dir(src.join(family)) {
            names.extend(
                entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned()),
            );
        }
    }
    names.sort();
    names
}

/// A temporary plugin directory with its own runtime.
pub struct PluginDir {
    pub dir: tempfile::TempDir,
    pub runtime: Arc<Runtime>,
}

impl PluginDir {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let runtime = Runtime::new(Some(cache_dir(dir.path()))).expect("runtime");
        PluginDir { dir, runtime }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// Install a built plugin with its manifest passed through `edit`.
    pub fn install_with(
        &self,
        crate_name: &str,
        edit: impl FnOnce(String) -> String,
    ) -> Arc<PluginVersion> {
        install(
            &self.runtime,
            self.dir.path(),
            &wasm(crate_name),
            &edit(manifest(crate_name)),
        )
        .unwrap_or_else(|e| panic!("install {crate_name}: {e}"))
    }

    pub fn install(&self, crate_name: &str) -> Arc<PluginVersion> {
        self.install_with(crate_name, |m| m)
    }

    /// Open the directory as a service would (metrics into a fresh registry).
    pub fn open(&self) -> (Arc<PluginHost>, prometheus::Registry) {
        let registry = prometheus::Registry::new();
        let metrics = PluginMetrics::register(&registry).expect("metrics");
        (
            PluginHost::open(self.runtime.clone(), self.dir.path(), metrics),
            registry,
        )
    }
}

impl Default for PluginDir {
    fn default() -> Self {
        Self::new()
    }
}

/// Replace `key = …` (first occurrence) in a manifest.
pub fn set_key(manifest: &str, key: &str, value: &str) -> String {
    let mut done = false;
    manifest
        .lines()
        .map(|l| {
            if !done && l.trim_start().starts_with(&format!("{key} ")) {
                done = true;
                format!("{key} = {value}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}
