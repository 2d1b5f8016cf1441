//! Installing a plugin into a directory the way a running service wants it:
//! verified and compiled first (into the directory's compile cache, so the
//! service's reload only deserializes), then the `.wasm` and its manifest — with
//! the file's sha256 recorded — written by rename, so a watcher never sees half a file.
//! The files of the version an install replaces are kept in `.previous/`, so a
//! rollback (`PluginHost::rollback_by`) survives a restart.

use super::manifest::Manifest;
use super::runtime::{Runtime, sha256_hex};
use super::version::PluginVersion;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("cannot read or write {0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("manifest: {0}")]
    Manifest(#[from] super::manifest::ManifestError),
    #[error("{0} is not a loadable plugin: {1}")]
    Load(PathBuf, super::version::LoadError),
}

/// The compile cache of a plugin directory.
pub fn cache_dir(plugin_dir: &Path) -> PathBuf {
    plugin_dir.join(".cache")
}

/// The manifest text with `sha256` set to the hash of `wasm` (any older value dropped).
pub fn stamp_manifest(manifest: &str, wasm: &[u8]) -> String {
    let body: Vec<&str> = manifest.lines().filter(|l| !l.trim_start().starts_with("sha256")).collect();
    format!("sha256 = \"{}\"\n{}\n", sha256_hex(wasm), body.join("\n"))
}

/// Install `wasm` with `manifest` (TOML text) into `dir`. Returns the verified version.
pub fn install(
    runtime: &Arc<Runtime>,
    dir: &Path,
    wasm: &[u8],
    manifest: &str,
) -> Result<Arc<PluginVersion>, InstallError> {
    install_signed(runtime, dir, wasm, manifest, None)
}

/// [`install`] with its signature (`palisade plugins sign`) as `NAME.sig`; an
/// install without one removes a stale `NAME.sig`. The signature is written first,
/// so the component and manifest that complete the install meet it.
pub fn install_signed(
    runtime: &Arc<Runtime>,
    dir: &Path,
    wasm: &[u8],
    manifest: &str,
    signature: Option<&[u8]>,
) -> Result<Arc<PluginVersion>, InstallError> {
    std::fs::create_dir_all(dir).map_err(|e| InstallError::Io(dir.into(), e))?;
    let text = stamp_manifest(manifest, wasm);
    let parsed = Manifest::parse(&text)?;
    let name = parsed.name.clone();
    let version = PluginVersion::load(runtime, parsed, wasm, true)
        .map_err(|e| InstallError::Load(dir.join(format!("{name}.wasm")), e))?;
    replace(dir, &name, wasm, text.as_bytes(), signature)?;
    Ok(version)
}

/// Where the files of each plugin's previous version are kept.
pub fn previous_dir(plugin_dir: &Path) -> PathBuf {
    plugin_dir.join(".previous")
}

/// Put a version's files in place of `name`'s in `dir` (an install or a
/// promotion), keeping the replaced files in `.previous/` for a rollback (unless
/// they are the same files).
pub fn replace(dir: &Path, name: &str, wasm: &[u8], toml: &[u8], signature: Option<&[u8]>) -> Result<(), InstallError> {
    let read = |ext: &str| std::fs::read(dir.join(format!("{name}.{ext}"))).ok();
    if let (Some(old_wasm), Some(old_toml)) = (read("wasm"), read("toml"))
        && (old_wasm.as_slice(), old_toml.as_slice()) != (wasm, toml)
    {
        write_files(&previous_dir(dir), name, &old_wasm, &old_toml, read("sig").as_deref())?;
    }
    write_files(dir, name, wasm, toml, signature)
}

/// A plugin's files in `dir`: the signature first, the manifest last (what a
/// watcher keys on), each by rename.
pub fn write_files(
    dir: &Path,
    name: &str,
    wasm: &[u8],
    toml: &[u8],
    signature: Option<&[u8]>,
) -> Result<(), InstallError> {
    std::fs::create_dir_all(dir).map_err(|e| InstallError::Io(dir.into(), e))?;
    write_signature(dir, name, signature)?;
    write_atomically(&dir.join(format!("{name}.wasm")), wasm)?;
    write_atomically(&dir.join(format!("{name}.toml")), toml)
}

/// `NAME.sig` in `dir`: written atomically, or removed when there is none.
pub fn write_signature(dir: &Path, name: &str, signature: Option<&[u8]>) -> Result<(), InstallError> {
    let path = dir.join(format!("{name}.sig"));
    match signature {
        Some(bytes) => write_atomically(&path, bytes),
        None => match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(InstallError::Io(path, e)),
            _ => Ok(()),
        },
    }
}

/// Write to a hidden temporary beside `target`, then rename over it.
pub fn write_atomically(target: &Path, bytes: &[u8]) -> Result<(), InstallError> {
    let name = target.file_name().and_then(|n| n.to_str()).unwrap_or("plugin");
    let tmp = target.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes)
        .and_then(|_| std::fs::rename(&tmp, target))
        .map_err(|e| InstallError::Io(target.into(), e))
}

/// The shadow folder of a plugin directory: candidates scored beside the active
/// versions (`plugins install --shadow`), never routing.
pub fn shadow_dir(dir: &Path) -> PathBuf {
    dir.join("shadow")
}

/// A shadow candidate's files (`DIR/shadow/NAME.wasm`, `.toml`, and `.sig` when
/// signed), read; what a promotion (from the CLI or the admin API) moves.
pub struct Candidate {
    pub name: String,
    pub wasm: Vec<u8>,
    pub manifest: String,
    pub signature: Option<Vec<u8>>,
    shadow: PathBuf,
}

impl Candidate {
    /// The candidate `name` of plugin directory `dir`; `Ok(None)` when there is none.
    pub fn read(dir: &Path, name: &str) -> Result<Option<Self>, InstallError> {
        let shadow = shadow_dir(dir);
        let (wasm, toml) = (shadow.join(format!("{name}.wasm")), shadow.join(format!("{name}.toml")));
        if !crate::manifest::valid_name(name) || !wasm.is_file() || !toml.is_file() {
            return Ok(None);
        }
        let wasm_bytes = std::fs::read(&wasm).map_err(|e| InstallError::Io(wasm.clone(), e))?;
        let manifest = std::fs::read_to_string(&toml).map_err(|e| InstallError::Io(toml.clone(), e))?;
        let signature = std::fs::read(wasm.with_extension("sig")).ok();
        Ok(Some(Candidate { name: name.into(), wasm: wasm_bytes, manifest, signature, shadow }))
    }

    /// Make it the active version in `dir` (by rename, as an install writes; the
    /// version it replaces stays in `.previous/` for a rollback), then remove its
    /// shadow files. A watcher on `dir` loads it.
    pub fn promote(&self, dir: &Path) -> Result<(), InstallError> {
        replace(dir, &self.name, &self.wasm, self.manifest.as_bytes(), self.signature.as_deref())?;
        self.remove()
    }

    /// Remove its shadow files (a promotion or a discard).
    pub fn remove(&self) -> Result<(), InstallError> {
        for ext in ["toml", "wasm", "sig"] {
            let path = self.shadow.join(format!("{}.{ext}", self.name));
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(InstallError::Io(path, e)),
                _ => {}
            }
        }
        Ok(())
    }
}
