//! Configuration: environment variables (the seed's names plus Palisade's),
//! optionally a TOML file named by `PALISADE_CONFIG` with the same keys; the
//! environment wins. Unknown keys in the file and values that do not parse stop
//! start-up with a message naming the key. Every key has a default that works on
//! one machine after `scripts/setup`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Every key this release understands, with its default and meaning.
pub const KEYS: &[(&str, &str, &str)] = &[
    (
        "PLUGIN_DIR",
        "var/plugins",
        "directory of NAME.wasm + NAME.toml plugins",
    ),
    (
        "PLUGIN_CACHE_DIR",
        "",
        "compiled-component cache (default: PLUGIN_DIR/.cache)",
    ),
    (
        "PLUGIN_WATCH",
        "true",
        "hot-reload plugins when their files change",
    ),
    (
        "PLUGIN_WATCH_DEBOUNCE_MS",
        "20",
        "quiet time after a file change before reloading",
    ),
    (
        "API_KEYS",
        "",
        "comma-separated keys for the event APIs (header `api-key`)",
    ),
    (
        "ADMIN_API_KEYS",
        "",
        "comma-separated keys for /v1/admin (header `api-key`)",
    ),
    ("INGEST_ADDR", "127.0.0.1:8001", "ingestion listen address"),
    (
        "SCREENING_ADDR",
        "127.0.0.1:8002",
        "screening listen address",
    ),
    (
        "REDIS_URL",
        "redis://127.0.0.1:6379",
        "Redis for streams, dedup and caches",
    ),
    ("LOG_FORMAT", "json", "json or text"),
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {message}")]
    File { path: String, message: String },
    #[error("config key {key}: {message}")]
    Value { key: &'static str, message: String },
}

#[derive(Debug, Clone)]
pub struct Config {
    pub plugin_dir: PathBuf,
    pub plugin_cache_dir: PathBuf,
    pub plugin_watch: bool,
    pub plugin_watch_debounce_ms: u64,
    pub api_keys: Vec<String>,
    pub admin_api_keys: Vec<String>,
    pub ingest_addr: SocketAddr,
    pub screening_addr: SocketAddr,
    pub redis_url: String,
    pub log_format: String,
}

impl Config {
    /// From `PALISADE_CONFIG` (if set) and the environment.
    pub fn load() -> Result<Self, ConfigError> {
        let mut raw = BTreeMap::new();
        if let Ok(path) = std::env::var("PALISADE_CONFIG") {
            raw = read_file(&path)?;
        }
        for (key, _, _) in KEYS {
            if let Ok(v) = std::env::var(key) {
                raw.insert(key.to_string(), v);
            }
        }
        Self::from_map(&raw)
    }

    /// From explicit values (missing keys take their defaults).
    pub fn from_map(raw: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let get = |key: &'static str| -> String {
            raw.get(key).cloned().unwrap_or_else(|| {
                KEYS.iter()
                    .find(|k| k.0 == key)
                    .map(|k| k.1.to_string())
                    .unwrap_or_default()
            })
        };
        fn parse<T: std::str::FromStr>(
            key: &'static str,
            v: String,
            what: &str,
        ) -> Result<T, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            v.trim().parse().map_err(|e| ConfigError::Value {
                key,
                message: format!("`{v}` is not {what}: {e}"),
            })
        }
        let list = |key| {
            get(key)
                .split([',', '\n'])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        };
        let plugin_dir = PathBuf::from(get("PLUGIN_DIR"));
        let cache = get("PLUGIN_CACHE_DIR");
        let log_format = get("LOG_FORMAT");
        if !matches!(log_format.as_str(), "json" | "text") {
            return Err(ConfigError::Value {
                key: "LOG_FORMAT",
                message: format!("`{log_format}` is not json or text"),
            });
        }
        Ok(Config {
            plugin_cache_dir: if cache.is_empty() {
                plugin_dir.join(".cache")
            } else {
                PathBuf::from(cache)
            },
            plugin_dir,
            plugin_watch: parse("PLUGIN_WATCH", get("PLUGIN_WATCH"), "true or false")?,
            plugin_watch_debounce_ms: parse(
                "PLUGIN_WATCH_DEBOUNCE_MS",
                get("PLUGIN_WATCH_DEBOUNCE_MS"),
                "a whole number",
            )?,
            api_keys: list("API_KEYS"),
            admin_api_keys: list("ADMIN_API_KEYS"),
            ingest_addr: parse(
                "INGEST_ADDR",
                get("INGEST_ADDR"),
                "an address like 127.0.0.1:8001",
            )?,
            screening_addr: parse(
                "SCREENING_ADDR",
                get("SCREENING_ADDR"),
                "an address like 127.0.0.1:8002",
            )?,
            redis_url: get("REDIS_URL"),
            log_format,
        })
    }
}

fn read_file(path: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    let err = |message: String| ConfigError::File {
        path: path.into(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| err(e.to_string()))?;
    let mut out = BTreeMap::new();
    for (key, value) in table {
        if !KEYS.iter().any(|k| k.0 == key) {
            return Err(err(format!(
                "unknown key `{key}` (known: {})",
                KEYS.iter().map(|k| k.0).collect::<Vec<_>>().join(", ")
            )));
        }
        let text = palisade_sdk::testing::setting_text(&key, &value).map_err(err)?;
        out.insert(key, text);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_work_and_bad_values_name_the_key() {
        let c = Config::from_map(&BTreeMap::new()).unwrap();
        assert_eq!(c.plugin_cache_dir, PathBuf::from("var/plugins/.cache"));
        assert_eq!(c.ingest_addr.port(), 8001);
        let bad = BTreeMap::from([("INGEST_ADDR".to_string(), "nowhere".to_string())]);
        assert!(
            Config::from_map(&bad)
                .unwrap_err()
                .to_string()
                .starts_with("config key INGEST_ADDR")
        );
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        let dir = std::env::temp_dir().join(format!("palisade-config-{}", std::process::id()));
        std::fs::write(&dir, "PLUGIN_DRI = \"x\"\n").unwrap();
        let err = read_file(dir.to_str().unwrap()).unwrap_err().to_string();
        std::fs::remove_file(&dir).ok();
        assert!(err.contains("unknown key `PLUGIN_DRI`"), "{err}");
    }
}
