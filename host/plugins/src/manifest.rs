//! Plugin manifests: the `NAME.toml` beside each `NAME.wasm` in the plugin
//! directory. Parsing and validation only; loading is `registry.rs`'s job.
//!
//! ```toml
//! sha256 = "…"             # of NAME.wasm; required in a plugin directory
//! name = "caps-shouting"    # must match the file names
//! version = "0.1.0"
//! kind = "heuristic"        # heuristic | validator | platform-adapter
//! description = "…"         # optional
//! weight = 1.0              # a heuristic's weight in the combined rule score
//! mode = "enforce"          # enforce | shadow (scored and reported, not counted)
//! enabled = true
//! capabilities = ["log", "config", "clock"]  # host functions it may import (this is
//!                           # the default; also "similar", "classify", "labels")
//! language = "rust"         # rust (any compiled guest) | python | javascript: a guest
//!                           # that carries its interpreter gets larger default limits
//! [limits]                  # each key defaults per language (`Limits::for_language`)
//! fuel = 200000000          # wasm instructions (wasmtime fuel) per call of up to
//!                           # deadline_bytes of events: the budget a plugin earns its
//!                           # quarantine against, whatever else the machine is doing
//! deadline_ms = 1000        # wall-clock backstop per call of up to deadline_bytes
//!                           # (epoch interruption; generous: fuel is the real budget)
//! deadline_bytes = 32768    # a larger call gets fuel and deadline_ms per started deadline_bytes
//! memory_mib = 64           # linear memory cap per instance
//! max_faults = 5            # faults within fault_window_ms that quarantine the plugin
//! fault_window_ms = 60000
//! retry_after_ms = 30000    # a quarantined plugin is tried again after this (doubling
//!                           # each time it is quarantined again, up to 16×; 0: never)
//! recycle_after_calls = 100000
//! [settings]                # the plugin's own; lists arrive newline-joined
//! secret = "${SLACK_SIGNING_SECRET}"  # a whole value `${NAME}` is read from the
//!                           # environment at load; unset → the setting is left out
//! ```
//!
//! Settings may hold secrets: they reach only the plugin (never the admin listing,
//! logs or metrics).

use super::capabilities::{ALL, Capability, DEFAULT};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PluginKind {
    Heuristic,
    Validator,
    PlatformAdapter,
}

impl PluginKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::Heuristic => "heuristic",
            PluginKind::Validator => "validator",
            PluginKind::PlatformAdapter => "platform-adapter",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Enforce,
    Shadow,
}

/// The language a component was written in. It only sets default limits: a guest
/// that carries its interpreter (componentize-py, componentize-js) has a larger
/// memory image and is slower per event than a compiled one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// Rust, or any language compiled to Wasm.
    #[default]
    Rust,
    Python,
    Javascript,
}

impl Language {
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::Python => "python",
            Language::Javascript => "javascript",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Limits {
    pub fuel: u64,
    pub deadline_ms: u64,
    pub deadline_bytes: u64,
    pub memory_mib: u64,
    pub max_faults: u32,
    pub fault_window_ms: u64,
    pub retry_after_ms: u64,
    pub recycle_after_calls: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits::for_language(Language::Rust)
    }
}

/// `[limits]` as written: each key left out takes the language's default.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    fuel: Option<u64>,
    deadline_ms: Option<u64>,
    deadline_bytes: Option<u64>,
    memory_mib: Option<u64>,
    max_faults: Option<u32>,
    fault_window_ms: Option<u64>,
    retry_after_ms: Option<u64>,
    recycle_after_calls: Option<u64>,
}

// Fuel (wasm instructions) per 32 KiB of events, measured on 10,000-character
// messages of keywords, capitals, URLs, look-alike Unicode and random bytes
// (docs/BENCHMARKS.md, "Fuel"): the hungriest first-party Rust rule (spam-links)
// peaks at 16.6 M, the example ports of caps-shouting at 43 M (Python) and 105 M
// (JavaScript): Rust gets 12×, the interpreted guests about 20× the JS port, as
// their rules may be heavier than that port (`fuel_peak` in `GET /v1/admin/plugins`).
// Memory: about ten times what the example port of caps-shouting peaks at
// (13.6 / 17.1 MiB). The wall-clock deadlines are backstops, a hundred times
// what a call takes on an idle machine, so a busy machine never trips them.
const RUST_FUEL: u64 = 200_000_000;
const PY_FUEL: u64 = 2_000_000_000;
const JS_FUEL: u64 = 2_000_000_000;
const RUST_DEADLINE_MS: u64 = 1_000;
const PY_DEADLINE_MS: u64 = 5_000;
const PY_MEMORY_MIB: u64 = 128;
const JS_DEADLINE_MS: u64 = 5_000;
const JS_MEMORY_MIB: u64 = 128;

/// The longest deadline any call gets, however large its batch.
pub const MAX_DEADLINE_MS: u64 = 60_000;
/// The most fuel any call gets, however large its batch.
pub const MAX_FUEL: u64 = 1 << 40;

impl Limits {
    /// The defaults for a guest written in `language` (measured by the `languages`
    /// group of benches/benches/plugins.rs): an interpreted guest's memory image
    /// starts at tens of MiB and it spends ten to fifty times longer per event.
    pub fn for_language(language: Language) -> Self {
        let rust = Limits {
            fuel: RUST_FUEL,
            deadline_ms: RUST_DEADLINE_MS,
            deadline_bytes: 32 * 1024,
            memory_mib: 64,
            max_faults: 5,
            fault_window_ms: 60_000,
            retry_after_ms: 30_000,
            recycle_after_calls: 100_000,
        };
        match language {
            Language::Rust => rust,
            Language::Python => {
                Limits { fuel: PY_FUEL, deadline_ms: PY_DEADLINE_MS, memory_mib: PY_MEMORY_MIB, ..rust }
            }
            Language::Javascript => {
                Limits { fuel: JS_FUEL, deadline_ms: JS_DEADLINE_MS, memory_mib: JS_MEMORY_MIB, ..rust }
            }
        }
    }

    fn overlay(self, raw: RawLimits) -> Self {
        Limits {
            fuel: raw.fuel.unwrap_or(self.fuel),
            deadline_ms: raw.deadline_ms.unwrap_or(self.deadline_ms),
            deadline_bytes: raw.deadline_bytes.unwrap_or(self.deadline_bytes),
            memory_mib: raw.memory_mib.unwrap_or(self.memory_mib),
            max_faults: raw.max_faults.unwrap_or(self.max_faults),
            fault_window_ms: raw.fault_window_ms.unwrap_or(self.fault_window_ms),
            retry_after_ms: raw.retry_after_ms.unwrap_or(self.retry_after_ms),
            recycle_after_calls: raw.recycle_after_calls.unwrap_or(self.recycle_after_calls),
        }
    }

    /// The deadline of a call handed `bytes` of events: `deadline_ms` for each
    /// started `deadline_bytes`, so a batch of long (valid) texts gets the time its
    /// size needs and a timeout means the plugin, not the input, was slow.
    pub fn deadline_for(&self, bytes: usize) -> u64 {
        self.deadline_ms.saturating_mul(self.units(bytes)).min(MAX_DEADLINE_MS)
    }

    /// The fuel of a call handed `bytes` of events: `fuel` for each started
    /// `deadline_bytes`. It counts instructions, not time, so whether a call runs
    /// out depends on the plugin and its input alone, never on the machine's load.
    pub fn fuel_for(&self, bytes: usize) -> u64 {
        self.fuel.saturating_mul(self.units(bytes)).min(MAX_FUEL)
    }

    fn units(&self, bytes: usize) -> u64 {
        (bytes as u64).div_ceil(self.deadline_bytes).max(1)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    sha256: Option<String>,
    name: String,
    version: String,
    kind: PluginKind,
    #[serde(default)]
    description: Option<String>,
    #[serde(default = "one")]
    weight: f32,
    #[serde(default)]
    mode: Mode,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    capabilities: Option<Vec<String>>,
    #[serde(default)]
    language: Language,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    settings: toml::Table,
}

fn one() -> f32 {
    1.0
}
fn yes() -> bool {
    true
}

/// A validated manifest.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    pub sha256: Option<String>,
    pub name: String,
    pub version: String,
    pub kind: PluginKind,
    pub description: Option<String>,
    pub weight: f32,
    pub mode: Mode,
    pub enabled: bool,
    /// The host functions it may import (sorted, no repeats).
    pub capabilities: Vec<Capability>,
    pub language: Language,
    pub limits: Limits,
    /// Settings as the plugin reads them through `host.config`.
    #[serde(skip)]
    pub settings: Arc<BTreeMap<String, String>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is not valid TOML or has unknown/mistyped keys: {0}")]
    Syntax(String),
    #[error("manifest key `{key}`: {problem}")]
    Invalid { key: &'static str, problem: String },
    #[error("{0}")]
    Settings(String),
}

/// What a plugin name may be (it names its files, so nothing else gets near a path).
pub const NAME_RULE: &str = "must be 1–64 lowercase letters, digits, `-` or `_`";

/// Whether `name` is a plugin name: the manifest's grammar, which every route and
/// command that turns a name into a file path checks first.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

impl Manifest {
    pub fn parse(text: &str) -> Result<Self, ManifestError> {
        let raw: RawManifest = toml::from_str(text).map_err(|e| ManifestError::Syntax(e.to_string().trim().into()))?;
        let invalid = |key, problem: &str| Err(ManifestError::Invalid { key, problem: problem.into() });
        if !valid_name(&raw.name) {
            return invalid("name", NAME_RULE);
        }
        if raw.version.trim().is_empty() {
            return invalid("version", "must not be empty");
        }
        if let Some(sum) = &raw.sha256
            && (sum.len() != 64 || !sum.chars().all(|c| c.is_ascii_hexdigit()))
        {
            return invalid("sha256", "must be 64 hex digits");
        }
        if !(0.0..=10.0).contains(&raw.weight) || raw.weight.is_nan() {
            return invalid("weight", "must be between 0 and 10");
        }
        let limits = Limits::for_language(raw.language).overlay(raw.limits);
        let l = &limits;
        if !(1..=60_000).contains(&l.deadline_ms) {
            return invalid("limits.deadline_ms", "must be between 1 and 60000");
        }
        if !(1_000_000..=MAX_FUEL).contains(&l.fuel) {
            return invalid("limits.fuel", "must be between 1000000 and 2^40");
        }
        if !(1..=4096).contains(&l.memory_mib) {
            return invalid("limits.memory_mib", "must be between 1 and 4096");
        }
        if l.max_faults == 0 {
            return invalid("limits.max_faults", "must be at least 1");
        }
        if l.deadline_bytes < 1024 {
            return invalid("limits.deadline_bytes", "must be at least 1024");
        }
        if l.fault_window_ms == 0 {
            return invalid("limits.fault_window_ms", "must be at least 1");
        }
        if l.recycle_after_calls == 0 {
            return invalid("limits.recycle_after_calls", "must be at least 1");
        }
        let mut capabilities = match &raw.capabilities {
            None => DEFAULT.to_vec(),
            Some(names) => names
                .iter()
                .map(|n| {
                    Capability::parse(n).ok_or_else(|| ManifestError::Invalid {
                        key: "capabilities",
                        problem: format!(
                            "unknown capability `{n}` (known: {})",
                            ALL.map(Capability::as_str).join(", ")
                        ),
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
        };
        capabilities.sort();
        capabilities.dedup();
        let settings = raw
            .settings
            .iter()
            .map(|(k, v)| Ok((k.clone(), palisade_vocab::manifest::setting_text(k, v)?)))
            .collect::<Result<BTreeMap<_, _>, String>>()
            .map_err(ManifestError::Settings)?
            .into_iter()
            .filter_map(|(k, v)| from_env(&raw.name, k, v))
            .collect();
        Ok(Manifest {
            sha256: raw.sha256.map(|s| s.to_ascii_lowercase()),
            name: raw.name,
            version: raw.version,
            kind: raw.kind,
            description: raw.description,
            weight: raw.weight,
            mode: raw.mode,
            enabled: raw.enabled,
            capabilities,
            language: raw.language,
            limits,
            settings: Arc::new(settings),
        })
    }
}

/// A setting whose whole value is `${NAME}` takes the variable's value; when the
/// variable is unset the setting is left out (the plugin then sees no value).
fn from_env(plugin: &str, key: String, value: String) -> Option<(String, String)> {
    let Some(var) = value.strip_prefix("${").and_then(|v| v.strip_suffix('}')) else {
        return Some((key, value));
    };
    match std::env::var(var) {
        Ok(v) => Some((key, v)),
        Err(_) => {
            tracing::info!(plugin, setting = %key, variable = var, "setting left out: its variable is not set");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_settings_as_text() {
        let m = Manifest::parse(
            "name = \"r\"\nversion = \"1\"\nkind = \"heuristic\"\n[settings]\nwords = [\"a\", \"b\"]\nn = 3\n",
        )
        .unwrap();
        assert_eq!(m.limits, Limits::default());
        assert_eq!(m.settings["words"], "a\nb");
        assert_eq!(m.settings["n"], "3");
        let m = Manifest::parse(
            "name = \"r\"\nversion = \"1\"\nkind = \"heuristic\"\n[settings]\nhome = \"${HOME}\"\nnone = \"${PALISADE_TEST_UNSET_VAR}\"\n",
        )
        .unwrap();
        assert_eq!(m.settings["home"], std::env::var("HOME").unwrap());
        assert!(!m.settings.contains_key("none"));
        assert!(m.enabled && m.mode == Mode::Enforce);
        assert_eq!(m.capabilities, DEFAULT, "log, config and clock unless the manifest says otherwise");
        let m = Manifest::parse(
            "name = \"r\"\nversion = \"1\"\nkind = \"heuristic\"\ncapabilities = [\"labels\", \"log\", \"labels\"]\n",
        )
        .unwrap();
        assert_eq!(m.capabilities, [Capability::Log, Capability::Labels]);
    }

    #[test]
    fn a_language_sets_default_limits_and_a_written_limit_wins() {
        let head = "name = \"r\"\nversion = \"1\"\nkind = \"heuristic\"\n";
        let rust = Manifest::parse(head).unwrap();
        assert_eq!((rust.language, rust.limits.clone()), (Language::Rust, Limits::default()));
        let py = Manifest::parse(&format!("{head}language = \"python\"\n")).unwrap();
        assert_eq!((py.limits.deadline_ms, py.limits.memory_mib), (PY_DEADLINE_MS, PY_MEMORY_MIB));
        assert_eq!(py.limits.max_faults, rust.limits.max_faults, "only time and memory differ");
        let js = Manifest::parse(&format!("{head}language = \"javascript\"\n[limits]\nmemory_mib = 32\n")).unwrap();
        assert_eq!((js.limits.deadline_ms, js.limits.memory_mib), (JS_DEADLINE_MS, 32));
        let err = Manifest::parse(&format!("{head}language = \"cobol\"\n")).unwrap_err().to_string();
        assert!(err.contains("language") || err.contains("cobol"), "{err}");
    }

    #[test]
    fn unknown_and_bad_keys_say_which() {
        let err = Manifest::parse("name = \"r\"\nversion = \"1\"\nkind = \"heuristic\"\nwieght = 2\n").unwrap_err();
        assert!(err.to_string().contains("wieght"), "{err}");
        let err = Manifest::parse("name = \"r\"\nversion = \"1\"\nkind = \"rule\"\n").unwrap_err();
        assert!(err.to_string().contains("rule"), "{err}");
        let err = Manifest::parse("name = \"r\"\nversion = \"1\"\nkind = \"heuristic\"\n[limits]\nmemory_mib = 0\n")
            .unwrap_err();
        assert!(err.to_string().contains("limits.memory_mib"), "{err}");
        let err =
            Manifest::parse("name = \"r\"\nversion = \"1\"\nkind = \"heuristic\"\ncapabilities = [\"network\"]\n")
                .unwrap_err();
        assert!(err.to_string().contains("unknown capability `network`"), "{err}");
    }
}
