//! Configuration: environment variables (the seed's names plus Palisade's),
//! optionally a TOML file named by `PALISADE_CONFIG` with the same keys; the
//! environment wins. Unknown keys in the file and values that do not parse stop
//! start-up with a message naming the key. Every key has a default that works on
//! one machine after `scripts/setup`.
//!
//! Each subsystem has its own struct ([`ServerConfig`], [`IngestConfig`], …),
//! declared once with the `section!` macro: a key's field, type, environment
//! name, default, meaning and check stand on one line, and the listing
//! (`palisade config`), the defaults and the parsing all come from that line.
//! Keys stay flat (the seed's environment names), so a section is a grouping in
//! code, not a level in the file. This module knows types of `embed` only (the
//! device); it builds nothing.

#[macro_use]
mod values;
mod sections;

pub use sections::*;
use sections::{API_BASE, BOT_TOKEN, is_platform_key};
use std::collections::BTreeMap;
use values::Raw;
pub use values::{Band, ConfigError, DegradedEvents, Key, LogFormat, Scoring, Secret, Switch};

/// Every key this release understands, by section (what `palisade config` lists).
pub const SECTIONS: &[(&str, &[Key])] = &[
    ("server", ServerConfig::KEYS),
    ("plugins", PluginsConfig::KEYS),
    ("redis", RedisConfig::KEYS),
    ("events", EventsConfig::KEYS),
    ("ingest", IngestConfig::KEYS),
    ("screening", ScreeningConfig::KEYS),
    ("classifier", ClassifierConfig::KEYS),
    ("model", ModelConfig::KEYS),
    ("vectors", VectorsConfig::KEYS),
    ("outbound", OutboundConfig::KEYS),
    ("tracing", TracingConfig::KEYS),
];

/// Every key, in listing order.
pub fn keys() -> impl Iterator<Item = &'static Key> {
    SECTIONS.iter().flat_map(|(_, keys)| keys.iter())
}

#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub plugins: PluginsConfig,
    pub redis: RedisConfig,
    pub events: EventsConfig,
    pub ingest: IngestConfig,
    pub screening: ScreeningConfig,
    pub classifier: ClassifierConfig,
    pub model: ModelConfig,
    pub vectors: VectorsConfig,
    pub outbound: OutboundConfig,
    pub tracing: TracingConfig,
    /// By lower-case platform name (`discord`), from `{PLATFORM}_API_BASE` / `_BOT_TOKEN`.
    pub platform_apis: BTreeMap<String, PlatformApi>,
}

impl Config {
    /// From `PALISADE_CONFIG` (if set) and the environment.
    pub fn load() -> Result<Self, ConfigError> {
        let file = match std::env::var("PALISADE_CONFIG") {
            Ok(path) => read_file(&path)?,
            Err(_) => Raw::new(),
        };
        Self::from_map(&over(file, |key| std::env::var(key).ok()))
    }

    /// From explicit values (missing keys take their defaults).
    pub fn from_map(raw: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let config = Config {
            server: ServerConfig::from_raw(raw)?,
            plugins: PluginsConfig::from_raw(raw)?,
            redis: RedisConfig::from_raw(raw)?,
            events: EventsConfig::from_raw(raw)?,
            ingest: IngestConfig::from_raw(raw)?,
            screening: ScreeningConfig::from_raw(raw)?,
            classifier: ClassifierConfig::from_raw(raw)?,
            model: ModelConfig::from_raw(raw)?,
            vectors: VectorsConfig::from_raw(raw)?,
            outbound: OutboundConfig::from_raw(raw)?,
            tracing: TracingConfig::from_raw(raw)?,
            platform_apis: platform_apis(raw)?,
        };
        if let Some(shard) = config.screening.shards.iter().find(|&&s| s >= config.redis.stream_shards) {
            return Err(ConfigError::Value {
                key: "SCREENING_SHARDS",
                message: format!("shard {shard} does not exist: STREAM_SHARDS is {}", config.redis.stream_shards),
            });
        }
        Ok(config)
    }
}

impl Config {
    /// The decision policy screening and eval route by.
    pub fn decision_policy(&self) -> palisade_detect::predict::DecisionPolicy {
        palisade_detect::predict::DecisionPolicy {
            rules: self.screening.rule_weight,
            embedding: self.screening.embedding_weight,
            threshold: self.screening.threshold,
            override_min_risk: self.classifier.rule_override_min_risk,
        }
    }
}

impl ScreeningConfig {
    /// The shards this process screens (`SCREENING_SHARDS`, default all).
    pub fn shards_of(&self, redis: &RedisConfig) -> Vec<usize> {
        if self.shards.is_empty() { (0..redis.stream_shards).collect() } else { self.shards.clone() }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::from_map(&Raw::new()).expect("every default parses")
    }
}

/// `file` with every known key the environment (`env`) sets over it, and the
/// platform keys of the platforms in `OUTBOUND_PLATFORMS` (as set there, else in
/// the file, else the default): never a variable of some other tool that happens
/// to end in `_API_BASE` or `_BOT_TOKEN`.
fn over(mut raw: Raw, env: impl Fn(&str) -> Option<String>) -> Raw {
    for key in keys() {
        if let Some(v) = env(key.name) {
            raw.insert(key.name.to_string(), v);
        }
    }
    for platform in outbound_platforms(&raw) {
        for suffix in [API_BASE, BOT_TOKEN] {
            let key = format!("{}{suffix}", platform.to_ascii_uppercase());
            if let Some(v) = env(&key) {
                raw.insert(key, v);
            }
        }
    }
    raw
}

/// `OUTBOUND_PLATFORMS` in `raw` (or its default), lower-case.
fn outbound_platforms(raw: &Raw) -> Vec<String> {
    let key = keys().find(|k| k.name == "OUTBOUND_PLATFORMS").expect("a key of OutboundConfig");
    let list = raw.get(key.name).map_or(key.default, String::as_str);
    list.split(',').map(|p| p.trim().to_ascii_lowercase()).filter(|p| !p.is_empty()).collect()
}

/// Every `{PLATFORM}_API_BASE` / `{PLATFORM}_BOT_TOKEN` among the defaults and
/// `raw`; one of a platform not in `OUTBOUND_PLATFORMS` is an error (it would be
/// ignored).
fn platform_apis(raw: &Raw) -> Result<BTreeMap<String, PlatformApi>, ConfigError> {
    let platforms = outbound_platforms(raw);
    let defaults = OutboundConfig::KEYS.iter().filter(|k| is_platform_key(k.name)).map(|k| (k.name, k.default));
    let mut out: BTreeMap<String, PlatformApi> = BTreeMap::new();
    for (key, value) in defaults.chain(raw.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
        let (platform, is_base) = match (key.strip_suffix(API_BASE), key.strip_suffix(BOT_TOKEN)) {
            (Some(p), _) if is_platform_key(key) => (p, true),
            (_, Some(p)) if is_platform_key(key) => (p, false),
            _ => continue,
        };
        let platform = platform.to_ascii_lowercase();
        if !platforms.contains(&platform) {
            return Err(ConfigError::Value {
                key: "OUTBOUND_PLATFORMS",
                message: format!("{key} is set but `{platform}` is not listed: add it to read its settings"),
            });
        }
        let api = out.entry(platform).or_default();
        let value = value.trim();
        if is_base {
            api.base = value.trim_end_matches('/').to_string();
        } else {
            api.token = (!value.is_empty()).then(|| Secret(value.to_string()));
        }
    }
    Ok(out)
}

fn read_file(path: &str) -> Result<Raw, ConfigError> {
    let err = |message: String| ConfigError::File { path: path.into(), message };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| err(e.to_string()))?;
    let mut out = Raw::new();
    for (key, value) in table {
        if !keys().any(|k| k.name == key) && !is_platform_key(&key) {
            let known: Vec<&str> = keys().map(|k| k.name).collect();
            return Err(err(format!("unknown key `{key}` (known: {})", known.join(", "))));
        }
        let text = palisade_vocab::manifest::setting_text(&key, &value).map_err(err)?;
        out.insert(key, text);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn defaults_work_and_bad_values_name_the_key() {
        let c = Config::default();
        assert_eq!(c.plugins.cache_dir(), PathBuf::from("var/plugins/.cache"));
        assert_eq!(c.server.ingest_addr.port(), 8001);
        assert_eq!(c.model.dir, Some(PathBuf::from("var/models/all-MiniLM-L6-v2")));
        assert_eq!(c.screening.fast_path, None);
        let bad = |key: &str, value: &str| {
            Config::from_map(&BTreeMap::from([(key.to_string(), value.to_string())])).unwrap_err().to_string()
        };
        assert!(bad("INGEST_ADDR", "nowhere").starts_with("config key INGEST_ADDR: `nowhere` is not an address"));
        assert!(bad("BATCH_SIZE", "0").contains("must be greater than 0"));
        assert!(bad("SCREENING_FAST_PATH", "1.5").starts_with("config key SCREENING_FAST_PATH"));
        assert!(bad("LOG_FORMAT", "xml").contains("json or text"));
    }

    #[test]
    fn every_key_is_listed_once_and_its_default_parses() {
        let mut names: Vec<&str> = keys().map(|k| k.name).collect();
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n, "a key is declared twice");
        // A default that did not parse would panic here.
        let c = Config::default();
        assert_eq!(c.redis.batch_size, 100);
        assert!(!keys().any(|k| k.help.is_empty()));
    }

    #[test]
    fn values_override_defaults_and_options_turn_off() {
        let raw = BTreeMap::from([
            ("SCREENING_MODEL".to_string(), "none".to_string()),
            ("PLUGIN_CACHE_DIR".to_string(), "/tmp/cache".to_string()),
            ("API_KEYS".to_string(), "a, b,,c".to_string()),
            ("CONSUMER_NAME".to_string(), "worker-1".to_string()),
        ]);
        let c = Config::from_map(&raw).unwrap();
        assert_eq!(c.model.dir, None);
        assert_eq!(c.plugins.cache_dir(), PathBuf::from("/tmp/cache"));
        assert_eq!(c.server.api_keys, ["a", "b", "c"]);
        assert_eq!(c.screening.consumer_name(), "worker-1");
        assert!(Config::default().screening.consumer_name().ends_with(&format!("-{}", std::process::id())));
    }

    #[test]
    fn platform_keys_for_any_platform_and_tokens_stay_hidden() {
        let raw = BTreeMap::from([
            ("OUTBOUND_PLATFORMS".to_string(), "discord,slack,web,mastodon".to_string()),
            ("MASTODON_API_BASE".to_string(), "https://social.example/api/".to_string()),
            ("SLACK_BOT_TOKEN".to_string(), "xoxb-secret".to_string()),
        ]);
        let c = Config::from_map(&raw).unwrap();
        assert_eq!(c.platform_apis["mastodon"].base, "https://social.example/api");
        assert_eq!(c.platform_apis["discord"].base, "https://discord.com/api/v10");
        assert_eq!(c.platform_apis["slack"].token.as_ref().unwrap().expose(), "xoxb-secret");
        assert!(!format!("{c:?}").contains("xoxb-secret"));
    }

    /// Only the platforms in OUTBOUND_PLATFORMS read their keys from the
    /// environment: another tool's `OPENAI_API_BASE` or `GITHUB_BOT_TOKEN` is
    /// never taken for a platform (its token never reaches an adapter).
    #[test]
    fn platform_keys_come_only_for_listed_platforms() {
        let env = BTreeMap::from([
            ("OPENAI_API_BASE", "https://api.openai.example/v1"),
            ("GITHUB_BOT_TOKEN", "ghp-not-ours"),
            ("MASTODON_API_BASE", "https://social.example/api"),
            ("SLACK_BOT_TOKEN", "xoxb-ours"),
        ]);
        let read = |extra: &[(&'static str, &'static str)]| {
            let env: BTreeMap<&str, &str> = env.iter().map(|(k, v)| (*k, *v)).chain(extra.iter().copied()).collect();
            Config::from_map(&over(Raw::new(), |k| env.get(k).map(|v| v.to_string()))).unwrap()
        };
        let c = read(&[]);
        assert_eq!(c.platform_apis.keys().collect::<Vec<_>>(), ["discord", "slack", "web"]);
        assert_eq!(c.platform_apis["slack"].token.as_ref().unwrap().expose(), "xoxb-ours");
        let c = read(&[("OUTBOUND_PLATFORMS", "discord,slack,web,mastodon")]);
        assert_eq!(c.platform_apis["mastodon"].base, "https://social.example/api");
        assert!(!c.platform_apis.contains_key("openai") && !c.platform_apis.contains_key("github"));
        // Set on purpose (a file, or from_map) for a platform not listed: said, not ignored.
        let file = BTreeMap::from([("MASTODON_API_BASE".to_string(), "https://social.example".to_string())]);
        let err = Config::from_map(&file).unwrap_err().to_string();
        assert!(err.contains("OUTBOUND_PLATFORMS") && err.contains("mastodon"), "{err}");
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
