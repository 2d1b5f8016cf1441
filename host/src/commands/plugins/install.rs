//! `palisade plugins install`: verify, precompile and write a plugin into a
//! directory (optionally through the gate, or as a shadow candidate).

use crate::commands::{audit_now, gate_check, open};
use crate::config::Config;
use anyhow::Context;
use palisade_plugins::Runtime;
use palisade_plugins::install;
use palisade_plugins::runtime::CompileSource;
use std::path::{Path, PathBuf};

pub fn run(
    config: &Config,
    file: &Path,
    manifest: &Path,
    dir: Option<PathBuf>,
    gate: Option<(PathBuf, f64)>,
    shadow: bool,
) -> anyhow::Result<()> {
    let dir = dir.unwrap_or_else(|| config.plugins.dir.clone());
    let target = if shadow { install::shadow_dir(&dir) } else { dir.clone() };
    let wasm = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let text = std::fs::read_to_string(manifest).with_context(|| format!("cannot read {}", manifest.display()))?;
    let detail = match gate {
        Some((gate_file, max_drop)) => gate_check(config, &dir, &wasm, &text, &gate_file, max_drop)?,
        None => serde_json::Value::Null,
    };
    let runtime = Runtime::new(Some(install::cache_dir(&dir)))?;
    let before = open(config, Some(target.clone()))
        .ok()
        .and_then(|h| h.get(&palisade_plugins::Manifest::parse(&text).ok()?.name)?.current().map(|v| v.reference()));
    // A signature beside the component (`plugins sign`) goes with it.
    let signature = std::fs::read(file.with_extension("sig")).ok();
    let version = install::install_signed(&runtime, &target, &wasm, &text, signature.as_deref())
        .with_context(|| format!("installing {}", file.display()))?;
    println!(
        "installed {} {} ({}) into {} [{}, {:.1} ms]",
        version.manifest.name,
        version.manifest.version,
        version.kind().as_str(),
        target.display(),
        if version.compile == CompileSource::Cached { "already compiled" } else { "compiled" },
        version.load_time.as_secs_f64() * 1e3
    );
    // The trail: what was installed on what evidence (a running service then records its reload).
    let action = if shadow { "shadow_install" } else { "install" };
    let entry = palisade_core::audit::AuditEntry::new(action, "cli", &version.manifest.name)
        .versions(before, Some(version.reference()))
        .detail(detail);
    audit_now(config, &entry);
    Ok(())
}
