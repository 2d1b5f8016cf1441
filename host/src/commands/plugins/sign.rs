//! `palisade plugins sign`: a component and its manifest signed (`FILE.sig`).

use anyhow::Context;
use palisade_plugins::{Manifest, signing};
use std::path::Path;

pub fn run(file: &Path, manifest: &Path, key: &Path) -> anyhow::Result<()> {
    let wasm = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let text = std::fs::read_to_string(manifest).with_context(|| format!("cannot read {}", manifest.display()))?;
    let parsed = Manifest::parse(&text)?;
    let key = signing::read_signing_key(key).map_err(anyhow::Error::msg)?;
    let signature = signing::sign(&key, &parsed, &wasm);
    let out = file.with_extension("sig");
    std::fs::write(&out, serde_json::to_string_pretty(&signature)? + "\n")?;
    println!(
        "signed {} {} ({}) with {} -> {}",
        parsed.name,
        parsed.version,
        parsed.kind.as_str(),
        signing::key_id(&key.verifying_key()),
        out.display()
    );
    Ok(())
}
