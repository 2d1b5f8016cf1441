//! Hot reload from the filesystem: an inotify watcher on the plugin directory
//! that, after a short quiet period (debounce; one rename is reported twice and an
//! install renames two files), asks the registry to load what changed. Reload
//! itself — comparing content hashes, swapping — is the registry's.

use super::registry::PluginHost;
use notify::{EventKind, RecursiveMode, Watcher as _};
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// Keeps the watch alive; dropping it stops watching.
pub struct DirWatcher {
    _watcher: notify::RecommendedWatcher,
}

fn relevant(path: &Path) -> bool {
    let hidden = path.file_name().and_then(|n| n.to_str()).is_none_or(|n| n.starts_with('.'));
    let ext = path.extension().and_then(|e| e.to_str());
    !hidden && matches!(ext, Some("toml" | "wasm" | "sig"))
}

/// Watch `host.dir()`; reload `debounce` after the last change (at most 10× that
/// after the first, so a steady stream of writes cannot starve reloads).
pub fn watch(host: Arc<PluginHost>, debounce: Duration) -> notify::Result<DirWatcher> {
    let dir = host.dir().to_path_buf();
    watch_dir(&dir, "plugin-watch", relevant, debounce, move || {
        for outcome in host.reload_by(false, "watcher") {
            tracing::info!(plugin = %outcome.plugin, outcome = outcome.outcome, version = ?outcome.version,
                error = ?outcome.error, "hot reload");
        }
    })
}

/// Call `changed` on a thread named `name`, `debounce` after the last change to a
/// file of `dir` that `relevant` picks (at most 10× `debounce` after the first).
pub fn watch_dir(
    dir: &Path,
    name: &str,
    relevant: impl Fn(&Path) -> bool + Send + 'static,
    debounce: Duration,
    changed: impl Fn() + Send + 'static,
) -> notify::Result<DirWatcher> {
    let (tx, rx) = channel::<()>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if matches!(event.kind, EventKind::Access(_)) || !event.paths.iter().any(|p| relevant(p)) {
            return;
        }
        let _ = tx.send(());
    })?;
    watcher.watch(dir, RecursiveMode::NonRecursive)?;
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            while rx.recv().is_ok() {
                let first = Instant::now();
                loop {
                    match rx.recv_timeout(debounce) {
                        Ok(()) if first.elapsed() < debounce * 10 => continue,
                        Err(RecvTimeoutError::Disconnected) => return,
                        _ => break,
                    }
                }
                changed();
            }
        })
        .map_err(|e| notify::Error::generic(&e.to_string()))?;
    Ok(DirWatcher { _watcher: watcher })
}
