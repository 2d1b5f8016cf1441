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
    ("PLUGIN_DIR", "var/plugins", "directory of NAME.wasm + NAME.toml plugins"),
    ("PLUGIN_CACHE_DIR", "", "compiled-component cache (default: PLUGIN_DIR/.cache)"),
    ("PLUGIN_WATCH", "true", "hot-reload plugins when their files change"),
    ("PLUGIN_WATCH_DEBOUNCE_MS", "20", "quiet time after a file change before reloading"),
    ("API_KEYS", "", "comma-separated keys for the event APIs (header `api-key`)"),
    ("ADMIN_API_KEYS", "", "comma-separated keys for /v1/admin (header `api-key`)"),
    ("INGEST_ADDR", "127.0.0.1:8001", "ingestion listen address"),
    ("SCREENING_ADDR", "127.0.0.1:8002", "screening listen address"),
    ("REDIS_URL", "redis://127.0.0.1:6379", "Redis for streams, dedup and caches"),
    ("REDIS_KEY_PREFIX", "", "prefix for every Redis key (streams, dedup), to share one Redis"),
    ("LOG_FORMAT", "json", "json or text"),
    ("SWAGGER_UI_DIR", "var/swagger-ui", "Swagger UI's swagger-ui-bundle.js and swagger-ui.css, served at /docs"),
    (
        "BATCH_SIZE",
        "100",
        "most events per Redis round trip (ingest produce, screening read); the seed's 500 also works — 100 keeps \
         a screening batch's latency low on two cores",
    ),
    ("WORKERS", "0", "HTTP worker threads per process (the seed's uvicorn WORKERS); 0: one per CPU core"),
    ("BATCH_TIMEOUT_MS", "1", "longest wait for a produce batch to fill"),
    ("MAX_QUEUE_DEPTH", "100000", "events:raw backlog (group lag + pending) at 100 % load"),
    ("BACKPRESSURE_ENABLED", "true", "answer 503 + Retry-After when the backlog is too deep"),
    ("BACKPRESSURE_THRESHOLD", "0.9", "share of MAX_QUEUE_DEPTH at which backpressure starts"),
    ("MIN_CONTENT_LENGTH", "1", "fewest characters of content"),
    ("MAX_CONTENT_LENGTH", "10000", "most characters of content"),
    (
        "REQUIRE_AUTHOR",
        "false",
        "reject events without author_id (the seed says true; false here because webhook events from Slack and \
         web forms often carry only user_id — set true to follow the seed)",
    ),
    ("DEDUP_WINDOW_SECONDS", "3600", "how long a duplicate is remembered"),
    ("MAX_BATCH_EVENTS", "1000", "most events in one ingest-batch request"),
    ("MAX_BODY_BYTES", "16777216", "largest request body"),
    ("SCREENING_THRESHOLD", "0.7", "risk above which an event goes to events:reasoning_queue"),
    ("RULE_WEIGHT", "0.6", "weight of the rule score in the combined risk"),
    ("EMBEDDING_WEIGHT", "0.4", "weight of the embedding score in the combined risk"),
    ("SCREENING_FAST_PATH", "off", "a rule score (0–1] from which the rules alone decide and the embedding is skipped"),
    ("CONSUMER_NAME", "", "this screening consumer's name in the group (default: host-pid)"),
    ("MAX_DELIVERIES", "5", "deliveries after which an entry goes to events:dead_letter"),
    ("CLAIM_IDLE_MS", "30000", "idle time after which another consumer's pending entry is taken over"),
    (
        "SCREENING_MODEL",
        "var/models/all-MiniLM-L6-v2",
        "sentence-encoder folder (model.onnx + tokenizer.json), or none",
    ),
    ("ORT_DYLIB_PATH", "var/onnxruntime/libonnxruntime.so.1.32.0", "the ONNX Runtime shared library"),
    ("DEVICE", "cpu", "cpu or cuda (cuda needs a build with --features cuda)"),
    ("MODEL_BATCH_SIZE", "32", "texts per model call"),
    ("MODEL_QUERY_PREFIX", "", "text put before every input (e5-style models: `query: `)"),
    ("VECTOR_DIR", "var/vectors", "where the example bank (exemplars.vec) is kept"),
    (
        "QDRANT_URL",
        "",
        "a Qdrant server (gRPC, e.g. http://127.0.0.1:6334) as the vector store (build with --features qdrant)",
    ),
    ("QDRANT_API_KEY", "", "Qdrant API key, when the server wants one"),
    ("QDRANT_COLLECTION_PREFIX", "palisade_", "Qdrant collections are {prefix}exemplars and {prefix}events"),
    ("SIMILAR_K", "10", "nearest labelled examples per event"),
    (
        "SIMILAR_EVENTS_K",
        "5",
        "most similar past events per event (0: past events are not kept, the fastest setting at high rates)",
    ),
    (
        "SIMILAR_EVENTS_MAX",
        "100000",
        "past events kept for SIMILAR_EVENTS_K (embedded store; the oldest half is dropped at once when full)",
    ),
    ("EMBEDDING_CACHE_TTL", "604800", "seconds an embedding stays cached in Redis (0: no cache)"),
    ("ANN_MIN_ROWS", "2000", "vector collections this large are searched through an IVF index (0: always exact)"),
    ("ANN_PROBES", "12", "IVF lists scored per query (more: closer to exact, slower)"),
    (
        "DISCORD_API_BASE",
        "https://discord.com/api/v10",
        "where Discord adapter requests go (any {PLATFORM}_API_BASE works)",
    ),
    ("SLACK_API_BASE", "https://slack.com/api", "where Slack adapter requests go"),
    ("WEB_API_BASE", "", "where web adapter posts and actions go"),
    ("DISCORD_BOT_TOKEN", "", "bot token put in place of {token} in Discord requests (any {PLATFORM}_BOT_TOKEN works)"),
    ("SLACK_BOT_TOKEN", "", "bot token (xoxb-…) for Slack requests"),
    ("WEB_BOT_TOKEN", "", "bearer token for web adapter requests"),
    ("OUTBOUND_TIMEOUT_MS", "10000", "timeout of one request to a platform"),
    ("OUTBOUND_MAX_ATTEMPTS", "4", "tries of one post or action (429s and 5xx are retried)"),
    ("OUTBOUND_BACKOFF_MS", "250", "first wait before retrying a 5xx or network error (doubles each time)"),
    ("OUTBOUND_MAX_WAIT_MS", "30000", "longest 429 Retry-After waited out; longer is answered 429 to the caller"),
    (
        "PREPOST_SCREENING",
        "false",
        "score a bot's post with the heuristic plugins and refuse it above SCREENING_THRESHOLD",
    ),
];

/// Suffixes of the per-platform keys: `{PLATFORM}_API_BASE`, `{PLATFORM}_BOT_TOKEN`.
const API_BASE: &str = "_API_BASE";
const BOT_TOKEN: &str = "_BOT_TOKEN";

fn is_platform_key(key: &str) -> bool {
    key.len() > BOT_TOKEN.len() && (key.ends_with(API_BASE) || key.ends_with(BOT_TOKEN))
}

/// A value never shown in logs, errors or `Debug` output.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// Where one platform's adapter requests go, and with which bot token.
#[derive(Debug, Clone, Default)]
pub struct PlatformApi {
    pub base: String,
    pub token: Option<Secret>,
}

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
    pub redis_key_prefix: String,
    pub log_format: String,
    pub swagger_ui_dir: PathBuf,
    pub batch_size: usize,
    pub workers: usize,
    pub batch_timeout_ms: u64,
    pub max_queue_depth: u64,
    pub backpressure_enabled: bool,
    pub backpressure_threshold: f64,
    pub min_content_length: usize,
    pub max_content_length: usize,
    pub require_author: bool,
    pub dedup_window_seconds: u64,
    pub max_batch_events: usize,
    pub max_body_bytes: usize,
    pub screening_threshold: f32,
    pub rule_weight: f32,
    pub embedding_weight: f32,
    /// `None` when SCREENING_FAST_PATH is `off`.
    pub screening_fast_path: Option<f32>,
    pub consumer_name: String,
    pub max_deliveries: u64,
    pub claim_idle_ms: u64,
    /// `None` when SCREENING_MODEL is `none`.
    pub screening_model: Option<PathBuf>,
    pub ort_dylib_path: PathBuf,
    pub device: crate::embed::Device,
    pub model_batch_size: usize,
    pub model_query_prefix: String,
    pub vector_dir: PathBuf,
    /// `None`: the embedded store in `vector_dir`.
    pub qdrant_url: Option<String>,
    pub qdrant_api_key: Option<crate::config::Secret>,
    pub qdrant_collection_prefix: String,
    pub similar_k: usize,
    pub similar_events_k: usize,
    /// `SIMILAR_EVENTS_MAX`: past events kept (embedded store).
    pub similar_events_max: usize,
    pub embedding_cache_ttl: u64,
    pub ann_min_rows: usize,
    pub ann_probes: usize,
    /// By lower-case platform name (`discord`), from `{PLATFORM}_API_BASE` / `_BOT_TOKEN`.
    pub platform_apis: BTreeMap<String, PlatformApi>,
    pub outbound_timeout_ms: u64,
    pub outbound_max_attempts: u32,
    pub outbound_max_wait_ms: u64,
    pub outbound_backoff_ms: u64,
    pub prepost_screening: bool,
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
        raw.extend(std::env::vars().filter(|(k, _)| is_platform_key(k)));
        Self::from_map(&raw)
    }

    /// From explicit values (missing keys take their defaults).
    pub fn from_map(raw: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let get = |key: &'static str| -> String {
            raw.get(key)
                .cloned()
                .unwrap_or_else(|| KEYS.iter().find(|k| k.0 == key).map(|k| k.1.to_string()).unwrap_or_default())
        };
        fn parse<T: std::str::FromStr>(key: &'static str, v: String, what: &str) -> Result<T, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            v.trim().parse().map_err(|e| ConfigError::Value { key, message: format!("`{v}` is not {what}: {e}") })
        }
        let list =
            |key| get(key).split([',', '\n']).map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
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
            plugin_cache_dir: if cache.is_empty() { plugin_dir.join(".cache") } else { PathBuf::from(cache) },
            plugin_dir,
            plugin_watch: parse("PLUGIN_WATCH", get("PLUGIN_WATCH"), "true or false")?,
            plugin_watch_debounce_ms: parse(
                "PLUGIN_WATCH_DEBOUNCE_MS",
                get("PLUGIN_WATCH_DEBOUNCE_MS"),
                "a whole number",
            )?,
            api_keys: list("API_KEYS"),
            admin_api_keys: list("ADMIN_API_KEYS"),
            ingest_addr: parse("INGEST_ADDR", get("INGEST_ADDR"), "an address like 127.0.0.1:8001")?,
            screening_addr: parse("SCREENING_ADDR", get("SCREENING_ADDR"), "an address like 127.0.0.1:8002")?,
            redis_url: get("REDIS_URL"),
            redis_key_prefix: get("REDIS_KEY_PREFIX"),
            log_format,
            swagger_ui_dir: PathBuf::from(get("SWAGGER_UI_DIR")),
            batch_size: positive("BATCH_SIZE", parse("BATCH_SIZE", get("BATCH_SIZE"), "a whole number")?)?,
            workers: parse("WORKERS", get("WORKERS"), "a whole number")?,
            batch_timeout_ms: parse("BATCH_TIMEOUT_MS", get("BATCH_TIMEOUT_MS"), "a whole number")?,
            max_queue_depth: positive(
                "MAX_QUEUE_DEPTH",
                parse("MAX_QUEUE_DEPTH", get("MAX_QUEUE_DEPTH"), "a whole number")?,
            )?,
            backpressure_enabled: parse("BACKPRESSURE_ENABLED", get("BACKPRESSURE_ENABLED"), "true or false")?,
            backpressure_threshold: {
                let t: f64 = parse("BACKPRESSURE_THRESHOLD", get("BACKPRESSURE_THRESHOLD"), "a number")?;
                if !(t > 0.0 && t <= 1.0) {
                    return Err(ConfigError::Value {
                        key: "BACKPRESSURE_THRESHOLD",
                        message: format!("{t} is not in (0, 1]"),
                    });
                }
                t
            },
            min_content_length: parse("MIN_CONTENT_LENGTH", get("MIN_CONTENT_LENGTH"), "a whole number")?,
            max_content_length: positive(
                "MAX_CONTENT_LENGTH",
                parse("MAX_CONTENT_LENGTH", get("MAX_CONTENT_LENGTH"), "a whole number")?,
            )?,
            require_author: parse("REQUIRE_AUTHOR", get("REQUIRE_AUTHOR"), "true or false")?,
            dedup_window_seconds: positive(
                "DEDUP_WINDOW_SECONDS",
                parse("DEDUP_WINDOW_SECONDS", get("DEDUP_WINDOW_SECONDS"), "a whole number")?,
            )?,
            max_batch_events: positive(
                "MAX_BATCH_EVENTS",
                parse("MAX_BATCH_EVENTS", get("MAX_BATCH_EVENTS"), "a whole number")?,
            )?,
            max_body_bytes: positive(
                "MAX_BODY_BYTES",
                parse("MAX_BODY_BYTES", get("MAX_BODY_BYTES"), "a whole number")?,
            )?,
            screening_threshold: unit(
                "SCREENING_THRESHOLD",
                parse("SCREENING_THRESHOLD", get("SCREENING_THRESHOLD"), "a number")?,
            )?,
            rule_weight: unit("RULE_WEIGHT", parse("RULE_WEIGHT", get("RULE_WEIGHT"), "a number")?)?,
            embedding_weight: unit(
                "EMBEDDING_WEIGHT",
                parse("EMBEDDING_WEIGHT", get("EMBEDDING_WEIGHT"), "a number")?,
            )?,
            screening_fast_path: match get("SCREENING_FAST_PATH").trim() {
                "off" | "" => None,
                v => {
                    let bar: f32 = parse("SCREENING_FAST_PATH", v.to_string(), "off or a number")?;
                    if !(bar > 0.0 && bar <= 1.0) {
                        return Err(ConfigError::Value {
                            key: "SCREENING_FAST_PATH",
                            message: format!("{bar} is not in (0, 1]"),
                        });
                    }
                    Some(bar)
                }
            },
            consumer_name: {
                let n = get("CONSUMER_NAME");
                if n.is_empty() {
                    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_else(|_| "palisade".into());
                    format!("{}-{}", host.trim(), std::process::id())
                } else {
                    n
                }
            },
            max_deliveries: positive(
                "MAX_DELIVERIES",
                parse("MAX_DELIVERIES", get("MAX_DELIVERIES"), "a whole number")?,
            )?,
            claim_idle_ms: positive("CLAIM_IDLE_MS", parse("CLAIM_IDLE_MS", get("CLAIM_IDLE_MS"), "a whole number")?)?,
            screening_model: Some(get("SCREENING_MODEL")).filter(|m| m != "none" && !m.is_empty()).map(PathBuf::from),
            ort_dylib_path: PathBuf::from(get("ORT_DYLIB_PATH")),
            device: parse("DEVICE", get("DEVICE"), "cpu or cuda")?,
            model_batch_size: positive(
                "MODEL_BATCH_SIZE",
                parse("MODEL_BATCH_SIZE", get("MODEL_BATCH_SIZE"), "a whole number")?,
            )?,
            model_query_prefix: get("MODEL_QUERY_PREFIX"),
            vector_dir: PathBuf::from(get("VECTOR_DIR")),
            qdrant_url: Some(get("QDRANT_URL")).filter(|u| !u.trim().is_empty()),
            qdrant_api_key: Some(get("QDRANT_API_KEY")).filter(|k| !k.is_empty()).map(Secret),
            qdrant_collection_prefix: get("QDRANT_COLLECTION_PREFIX"),
            similar_k: positive("SIMILAR_K", parse("SIMILAR_K", get("SIMILAR_K"), "a whole number")?)?,
            similar_events_k: parse("SIMILAR_EVENTS_K", get("SIMILAR_EVENTS_K"), "a whole number")?,
            similar_events_max: positive(
                "SIMILAR_EVENTS_MAX",
                parse("SIMILAR_EVENTS_MAX", get("SIMILAR_EVENTS_MAX"), "a whole number")?,
            )?,
            embedding_cache_ttl: parse("EMBEDDING_CACHE_TTL", get("EMBEDDING_CACHE_TTL"), "a whole number")?,
            ann_min_rows: parse("ANN_MIN_ROWS", get("ANN_MIN_ROWS"), "a whole number")?,
            ann_probes: positive("ANN_PROBES", parse("ANN_PROBES", get("ANN_PROBES"), "a whole number")?)?,
            platform_apis: platform_apis(raw),
            outbound_timeout_ms: positive(
                "OUTBOUND_TIMEOUT_MS",
                parse("OUTBOUND_TIMEOUT_MS", get("OUTBOUND_TIMEOUT_MS"), "a whole number")?,
            )?,
            outbound_max_attempts: positive(
                "OUTBOUND_MAX_ATTEMPTS",
                parse("OUTBOUND_MAX_ATTEMPTS", get("OUTBOUND_MAX_ATTEMPTS"), "a whole number")?,
            )?,
            outbound_max_wait_ms: parse("OUTBOUND_MAX_WAIT_MS", get("OUTBOUND_MAX_WAIT_MS"), "a whole number")?,
            outbound_backoff_ms: parse("OUTBOUND_BACKOFF_MS", get("OUTBOUND_BACKOFF_MS"), "a whole number")?,
            prepost_screening: parse("PREPOST_SCREENING", get("PREPOST_SCREENING"), "true or false")?,
        })
    }
}

impl Config {
    /// The approximate-search setting of vector collections (`None`: always exact).
    pub fn ann(&self) -> Option<crate::vectors::ivf::Ann> {
        (self.ann_min_rows > 0)
            .then_some(crate::vectors::ivf::Ann { min_rows: self.ann_min_rows, probes: self.ann_probes })
    }

    /// What the vector stores need to know.
    pub fn vectors(&self) -> crate::vectors::StoreConfig {
        crate::vectors::StoreConfig {
            dir: self.vector_dir.clone(),
            qdrant_url: self.qdrant_url.clone(),
            qdrant_api_key: self.qdrant_api_key.as_ref().map(|k| k.expose().to_string()),
            qdrant_collection_prefix: self.qdrant_collection_prefix.clone(),
            ann: self.ann(),
        }
    }
}

/// Every `{PLATFORM}_API_BASE` / `{PLATFORM}_BOT_TOKEN` among the defaults and `raw`.
fn platform_apis(raw: &BTreeMap<String, String>) -> BTreeMap<String, PlatformApi> {
    let defaults = KEYS.iter().filter(|k| is_platform_key(k.0)).map(|k| (k.0, k.1));
    let mut out: BTreeMap<String, PlatformApi> = BTreeMap::new();
    for (key, value) in defaults.chain(raw.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
        let (platform, is_base) = match (key.strip_suffix(API_BASE), key.strip_suffix(BOT_TOKEN)) {
            (Some(p), _) if is_platform_key(key) => (p, true),
            (_, Some(p)) if is_platform_key(key) => (p, false),
            _ => continue,
        };
        let api = out.entry(platform.to_ascii_lowercase()).or_default();
        let value = value.trim();
        if is_base {
            api.base = value.trim_end_matches('/').to_string();
        } else {
            api.token = (!value.is_empty()).then(|| Secret(value.to_string()));
        }
    }
    out
}

fn positive<T: PartialOrd + Default + std::fmt::Display>(key: &'static str, v: T) -> Result<T, ConfigError> {
    if v > T::default() {
        Ok(v)
    } else {
        Err(ConfigError::Value { key, message: format!("{v} must be greater than 0") })
    }
}

fn unit(key: &'static str, v: f32) -> Result<f32, ConfigError> {
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(ConfigError::Value { key, message: format!("{v} is not between 0 and 1") })
    }
}

fn read_file(path: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    let err = |message: String| ConfigError::File { path: path.into(), message };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| err(e.to_string()))?;
    let mut out = BTreeMap::new();
    for (key, value) in table {
        if !KEYS.iter().any(|k| k.0 == key) && !is_platform_key(&key) {
            return Err(err(format!(
                "unknown key `{key}` (known: {})",
                KEYS.iter().map(|k| k.0).collect::<Vec<_>>().join(", ")
            )));
        }
        let text = palisade_sdk::manifest::setting_text(&key, &value).map_err(err)?;
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
        assert!(Config::from_map(&bad).unwrap_err().to_string().starts_with("config key INGEST_ADDR"));
    }

    #[test]
    fn platform_keys_for_any_platform_and_tokens_stay_hidden() {
        let raw = BTreeMap::from([
            ("MASTODON_API_BASE".to_string(), "https://social.example/api/".to_string()),
            ("SLACK_BOT_TOKEN".to_string(), "xoxb-secret".to_string()),
        ]);
        let c = Config::from_map(&raw).unwrap();
        assert_eq!(c.platform_apis["mastodon"].base, "https://social.example/api");
        assert_eq!(c.platform_apis["discord"].base, "https://discord.com/api/v10");
        assert_eq!(c.platform_apis["slack"].token.as_ref().unwrap().expose(), "xoxb-secret");
        assert!(!format!("{c:?}").contains("xoxb-secret"));
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
