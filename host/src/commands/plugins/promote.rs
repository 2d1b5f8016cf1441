//! `palisade plugins promote`: a shadow candidate made the active version.

use crate::commands::{audit_now, gate_check, open};
use crate::config::Config;
use anyhow::bail;
use palisade_plugins::runtime::sha256_hex;
use palisade_plugins::{Manifest, install};
use std::path::PathBuf;

pub fn run(config: &Config, name: &str, dir: Option<PathBuf>, gate: Option<(PathBuf, f64)>) -> anyhow::Result<()> {
    let dir = dir.unwrap_or_else(|| config.plugins.dir.clone());
    let Some(candidate) = install::Candidate::read(&dir, name)? else {
        let shadow = install::shadow_dir(&dir);
        bail!("no shadow candidate `{name}` in {} (install one with `plugins install --shadow`)", shadow.display());
    };
    let (wasm, text) = (&candidate.wasm, &candidate.manifest);
    let detail = match gate {
        Some((gate_file, max_drop)) => gate_check(config, &dir, wasm, text, &gate_file, max_drop)?,
        None => serde_json::Value::Null,
    };
    let before = open(config, Some(dir.clone())).ok().and_then(|h| h.get(name)?.current().map(|v| v.reference()));
    candidate.promote(&dir)?;
    let version = Manifest::parse(text)?.version;
    println!("promoted {name} {version} into {} (the version it replaces stays for rollback)", dir.display());
    let new = palisade_core::audit::VersionRef { version, sha256: sha256_hex(wasm) };
    let entry =
        palisade_core::audit::AuditEntry::new("promote", "cli", name).versions(before, Some(new)).detail(detail);
    audit_now(config, &entry);
    Ok(())
}
