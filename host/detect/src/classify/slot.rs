//! The classifier a running service scores with, swappable while it runs:
//! `reload` reads `CLASSIFIER_DIR` again (a refused artifact — corrupt, wrong
//! format, trained for another embedding model — leaves the serving one in place
//! and is remembered as `last_error`), `rollback` returns to the one before —
//! on disk too, where `CLASSIFIER_DIR.previous` keeps it (a promotion keeps it
//! there), so a restart keeps the rollback. Readers take an `Arc` per batch, so
//! a swap never disturbs a batch in flight.

use super::{Artifact, ArtifactError, Classifier};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

/// `dir` with `.suffix` added to its name (`var/classifier` → `var/classifier.previous`).
pub fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let mut name = dir.file_name().map(|n| n.to_os_string()).unwrap_or_else(|| "classifier".into());
    name.push(format!(".{suffix}"));
    dir.with_file_name(name)
}

pub struct Slot {
    dir: PathBuf,
    embedding_model: Option<String>,
    current: RwLock<Arc<Classifier>>,
    previous: Mutex<Option<Arc<Classifier>>>,
    last_error: Mutex<Option<String>>,
}

/// What a reload or rollback did.
#[derive(Debug, Clone, serde::Serialize, PartialEq)]
pub struct Swap {
    /// `reloaded`, `unchanged` or `rolled_back`.
    pub outcome: &'static str,
    pub from: String,
    pub to: String,
}

impl Slot {
    /// Load the artifact in `dir`; `embedding_model`: the configured model's id.
    pub fn open(dir: &Path, embedding_model: Option<String>) -> Result<Self, ArtifactError> {
        let first = Classifier::new(Artifact::load(dir, embedding_model.as_deref())?);
        Ok(Slot {
            dir: dir.to_path_buf(),
            embedding_model,
            current: RwLock::new(Arc::new(first)),
            previous: Mutex::new(None),
            last_error: Mutex::new(None),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn get(&self) -> Arc<Classifier> {
        self.current.read().expect("classifier lock").clone()
    }

    /// Read the folder again and swap when its version differs.
    pub fn reload(&self) -> Result<Swap, ArtifactError> {
        let loaded = Artifact::load(&self.dir, self.embedding_model.as_deref()).inspect_err(|e| {
            *self.last_error.lock().expect("error lock") = Some(e.to_string());
        })?;
        *self.last_error.lock().expect("error lock") = None;
        let current = self.get();
        let from = current.meta.version.clone();
        // The description counts too: an edited threshold is a change.
        if loaded.meta == current.meta {
            return Ok(Swap { outcome: "unchanged", to: from.clone(), from });
        }
        let to = loaded.meta.version.clone();
        let old =
            std::mem::replace(&mut *self.current.write().expect("classifier lock"), Arc::new(Classifier::new(loaded)));
        *self.previous.lock().expect("previous lock") = Some(old);
        Ok(Swap { outcome: "reloaded", from, to })
    }

    /// Reload whenever the folder is replaced (as `palisade train --out` does, by
    /// rename) or a file in its parent named like it changes; `report` hears each outcome.
    pub fn watch(
        self: &Arc<Self>,
        debounce: std::time::Duration,
        report: impl Fn(&Result<Swap, ArtifactError>) + Send + 'static,
    ) -> notify::Result<palisade_plugins::watcher::DirWatcher> {
        let parent = self.dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
        let name = self.dir.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        let weak = Arc::downgrade(self);
        palisade_plugins::watcher::watch_dir(
            &parent,
            "classifier-watch",
            move |p| p.file_name() == Some(name.as_os_str()),
            debounce,
            move || {
                if let Some(slot) = weak.upgrade() {
                    let outcome = slot.reload();
                    match &outcome {
                        Ok(swap) => {
                            tracing::info!(outcome = swap.outcome, from = %swap.from, to = %swap.to, "classifier reload")
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "classifier reload refused; the loaded one keeps serving")
                        }
                    }
                    report(&outcome);
                }
            },
        )
    }

    /// Swap back to the version before the current one. Where
    /// `CLASSIFIER_DIR.previous` holds it, the two folders trade places first and
    /// it is loaded from disk (a restart then keeps the rollback, and a second
    /// rollback rolls forward); else the one loaded before serves again, in memory
    /// only. `Ok(None)`: there is neither.
    pub fn rollback(&self) -> Result<Option<Swap>, String> {
        let kept = sibling(&self.dir, "previous");
        if kept.join("classifier.json").is_file() {
            let aside = sibling(&self.dir, "rolling-back");
            let io = |what: &str, e: std::io::Error| format!("{what}: {e}");
            std::fs::rename(&self.dir, &aside).map_err(|e| io("moving the active classifier aside", e))?;
            if let Err(e) = std::fs::rename(&kept, &self.dir) {
                let _ = std::fs::rename(&aside, &self.dir);
                return Err(io("moving the previous classifier in", e));
            }
            std::fs::rename(&aside, &kept).map_err(|e| io("keeping the rolled-back classifier", e))?;
            return match self.reload() {
                Ok(swap) => Ok(Some(Swap { outcome: "rolled_back", ..swap })),
                Err(e) => {
                    // Put both back: the serving one stays.
                    let _ = std::fs::rename(&self.dir, &aside);
                    let _ = std::fs::rename(&kept, &self.dir);
                    let _ = std::fs::rename(&aside, &kept);
                    Err(format!("the previous classifier was refused: {e}"))
                }
            };
        }
        let Some(previous) = self.previous.lock().expect("previous lock").take() else { return Ok(None) };
        let to = previous.meta.version.clone();
        let old = std::mem::replace(&mut *self.current.write().expect("classifier lock"), previous);
        let from = old.meta.version.clone();
        *self.previous.lock().expect("previous lock") = Some(old);
        Ok(Some(Swap { outcome: "rolled_back", from, to }))
    }

    /// What the admin listing shows: version, when trained, on what, CV figures.
    pub fn status(&self) -> Value {
        let c = self.get();
        let m = &c.meta;
        json!({
            "dir": self.dir,
            "version": m.version,
            "created": m.created,
            "columns": m.columns,
            "rule_features": m.rule_features,
            "embedding_model": m.embedding_model,
            "embedding_head": m.embedding_head,
            "toxicity": m.toxicity,
            "any_flag": m.any_flag,
            "thresholds": m.thresholds,
            "threshold_rule": m.threshold_rule,
            "training": m.training,
            "rows_by_label": m.rows_by_label,
            "cv": m.cv,
            "previous_version": self.previous.lock().expect("previous lock").as_ref().map(|p| p.meta.version.clone()),
            "last_error": *self.last_error.lock().expect("error lock"),
        })
    }
}
