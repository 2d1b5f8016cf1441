//! The host interface as a plugin sees it: its own settings and the host log.
//! Inside a component these call the `host` imports; natively (tests) settings come
//! from a map and logs go to a thread-local buffer the harness reads.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

/// Log levels, as in the WIT `host.level` enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

thread_local! {
    static NATIVE_LOG: RefCell<Vec<(Level, String)>> = const { RefCell::new(Vec::new()) };
    static NATIVE_NOW_MS: Cell<Option<u64>> = const { Cell::new(None) };
}

/// Wall-clock time in milliseconds since the Unix epoch: the host's clock inside a
/// component (plugins have no WASI clock), the system clock natively unless a test
/// fixed it with [`crate::testing::set_now_ms`].
pub fn now_ms() -> u64 {
    #[cfg(target_arch = "wasm32")]
    return crate::guest::host_now_ms();
    #[cfg(not(target_arch = "wasm32"))]
    NATIVE_NOW_MS.with(Cell::get).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
    })
}

/// Fix (or with `None` release) the native clock on this thread.
pub(crate) fn set_native_now_ms(ms: Option<u64>) {
    NATIVE_NOW_MS.with(|c| c.set(ms));
}

/// Write to the host log (tagged with the plugin's name by the host).
pub fn log(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    crate::guest::host_log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    NATIVE_LOG.with(|l| l.borrow_mut().push((level, message.to_string())));
}

/// Take the log lines written natively on this thread (used by the test harness).
pub fn take_native_log() -> Vec<(Level, String)> {
    NATIVE_LOG.with(|l| std::mem::take(&mut *l.borrow_mut()))
}

/// Send panic messages to the host log, so a panicking plugin says why.
pub(crate) fn install_panic_logger() {
    #[cfg(target_arch = "wasm32")]
    std::panic::set_hook(Box::new(|info| log(Level::Error, &format!("panic: {info}"))));
}

/// A plugin's settings: the `[settings]` table of its manifest.
/// Lists (TOML arrays) arrive newline-joined; [`Settings::list`] splits them.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    map: Option<BTreeMap<String, String>>,
}

impl Settings {
    /// Settings read from the host (inside a component).
    pub fn from_host() -> Self {
        Settings { map: None }
    }

    /// Settings from pairs (native tests).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        Settings { map: Some(pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect()) }
    }

    /// The raw value of a key.
    pub fn get(&self, key: &str) -> Option<String> {
        match &self.map {
            Some(map) => map.get(key).cloned(),
            None => host_config(key),
        }
    }

    /// A list setting: one item per line (a TOML array) or comma-separated.
    pub fn list(&self, key: &str) -> Vec<String> {
        let Some(raw) = self.get(key) else {
            return Vec::new();
        };
        let sep = if raw.contains('\n') { '\n' } else { ',' };
        raw.split(sep).map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
    }

    /// A list setting, or `default` when the key is absent.
    pub fn list_or(&self, key: &str, default: &[&str]) -> Vec<String> {
        if self.get(key).is_some() { self.list(key) } else { default.iter().map(|s| s.to_string()).collect() }
    }

    /// A number setting, or `default` when absent; a value that does not parse is an error.
    pub fn f32_or(&self, key: &str, default: f32) -> Result<f32, String> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|_| format!("setting `{key}`: `{v}` is not a number")),
        }
    }

    /// A whole-number setting, or `default` when absent.
    pub fn usize_or(&self, key: &str, default: usize) -> Result<usize, String> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|_| format!("setting `{key}`: `{v}` is not a whole number")),
        }
    }

    /// A true/false setting, or `default` when absent.
    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool, String> {
        match self.get(key).as_deref().map(str::trim) {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(v) => Err(format!("setting `{key}`: `{v}` is not true or false")),
        }
    }
}

fn host_config(key: &str) -> Option<String> {
    #[cfg(target_arch = "wasm32")]
    return crate::guest::host_config(key);
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = key;
        None
    }
}
