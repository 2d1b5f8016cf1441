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

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

/// One configuration key: its environment name, default and meaning.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    pub name: &'static str,
    pub default: &'static str,
    pub help: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {message}")]
    File { path: String, message: String },
    #[error("config key {key}: {message}")]
    Value { key: &'static str, message: String },
}

/// A type a key's text parses into, and how to say what was expected.
pub trait Setting: Sized {
    const EXPECTED: &'static str;
    fn parse_setting(text: &str) -> Result<Self, String>;
}

macro_rules! from_str_setting {
    ($($ty:ty => $what:literal),* $(,)?) => {$(
        impl Setting for $ty {
            const EXPECTED: &'static str = $what;
            fn parse_setting(text: &str) -> Result<Self, String> {
                text.parse().map_err(|e| format!("{e}"))
            }
        }
    )*};
}

from_str_setting! {
    bool => "true or false",
    u32 => "a whole number",
    u64 => "a whole number",
    usize => "a whole number",
    f32 => "a number",
    f64 => "a number",
    SocketAddr => "an address like 127.0.0.1:8001",
    palisade_detect::embed::Device => "cpu or cuda",
    LogFormat => "json or text",
    Scoring => "classifier or weighted",
    DegradedEvents => "rescreen or review",
    Switch => "on or off",
    Band => "two numbers low,high with 0 ≤ low ≤ high ≤ 1",
}

impl Setting for String {
    const EXPECTED: &'static str = "text";
    fn parse_setting(text: &str) -> Result<Self, String> {
        Ok(text.to_string())
    }
}

impl Setting for PathBuf {
    const EXPECTED: &'static str = "a path";
    fn parse_setting(text: &str) -> Result<Self, String> {
        Ok(PathBuf::from(text))
    }
}

/// Comma- (or newline-) separated; blanks dropped.
impl Setting for Vec<String> {
    const EXPECTED: &'static str = "a comma-separated list";
    fn parse_setting(text: &str) -> Result<Self, String> {
        Ok(text.split([',', '\n']).map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect())
    }
}

impl Setting for Vec<usize> {
    const EXPECTED: &'static str = "a comma-separated list of whole numbers";
    fn parse_setting(text: &str) -> Result<Self, String> {
        Vec::<String>::parse_setting(text)?.iter().map(|n| n.parse().map_err(|e| format!("{n}: {e}"))).collect()
    }
}

/// Empty, `none` or `off` is `None`.
impl<T: Setting> Setting for Option<T> {
    const EXPECTED: &'static str = T::EXPECTED;
    fn parse_setting(text: &str) -> Result<Self, String> {
        match text {
            "" | "none" | "off" => Ok(None),
            t => T::parse_setting(t).map(Some),
        }
    }
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

impl Setting for Secret {
    const EXPECTED: &'static str = "text";
    fn parse_setting(text: &str) -> Result<Self, String> {
        Ok(Secret(text.to_string()))
    }
}

/// A key's check beyond parsing (a range, say): `Err` says what is wrong.
type Check<T> = fn(&T) -> Result<(), String>;

/// Raw key → text, as read from the file and the environment.
type Raw = BTreeMap<String, String>;

fn read<T: Setting>(raw: &Raw, key: &'static str, default: &str, checks: &[Check<T>]) -> Result<T, ConfigError> {
    let text = raw.get(key).map_or(default, String::as_str).trim();
    let value = T::parse_setting(text)
        .map_err(|e| ConfigError::Value { key, message: format!("`{text}` is not {}: {e}", T::EXPECTED) })?;
    for check in checks {
        check(&value).map_err(|message| ConfigError::Value { key, message: format!("`{text}`: {message}") })?;
    }
    Ok(value)
}

// Checks a key can name after its meaning.
fn positive<T: PartialOrd + Default>(v: &T) -> Result<(), String> {
    if *v > T::default() { Ok(()) } else { Err("must be greater than 0".into()) }
}

fn unit(v: &f32) -> Result<(), String> {
    if (0.0..=1.0).contains(v) { Ok(()) } else { Err("must be between 0 and 1".into()) }
}

fn open_unit(v: &Option<f32>) -> Result<(), String> {
    match v {
        Some(v) if !(*v > 0.0 && *v <= 1.0) => Err("must be off or in (0, 1]".into()),
        _ => Ok(()),
    }
}

fn share(v: &f64) -> Result<(), String> {
    if *v > 0.0 && *v <= 1.0 { Ok(()) } else { Err("must be in (0, 1]".into()) }
}

/// How log lines are written (`LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

impl LogFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Json => "json",
            LogFormat::Text => "text",
        }
    }
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "json" => Ok(LogFormat::Json),
            "text" => Ok(LogFormat::Text),
            other => Err(format!("`{other}` is neither")),
        }
    }
}

/// How screening turns stage results into a verdict (`SCORING`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scoring {
    /// `category_scores` from the trained classifier (`CLASSIFIER_DIR`).
    Classifier,
    /// The seed's fixed mix: `RULE_WEIGHT` × rules + `EMBEDDING_WEIGHT` × embedding.
    Weighted,
}

impl std::str::FromStr for Scoring {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "classifier" => Ok(Scoring::Classifier),
            "weighted" => Ok(Scoring::Weighted),
            other => Err(format!("`{other}` is neither")),
        }
    }
}

/// What the consumer does with an event screened `degraded` (`DEGRADED_EVENTS`):
/// a heuristic plugin's part is missing from its verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DegradedEvents {
    /// Route the verdict, and screen the event again once the plugins it missed
    /// are back (`screening::rescreen`).
    Rescreen,
    /// Route it to `events:reasoning_queue` whatever its risk, flagged `review`.
    Review,
}

impl std::str::FromStr for DegradedEvents {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "rescreen" => Ok(DegradedEvents::Rescreen),
            "review" => Ok(DegradedEvents::Review),
            other => Err(format!("`{other}` is neither")),
        }
    }
}

/// `on`/`off` (also `true`/`false`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Switch(pub bool);

impl std::str::FromStr for Switch {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "on" | "true" => Ok(Switch(true)),
            "off" | "false" => Ok(Switch(false)),
            other => Err(format!("`{other}` is neither")),
        }
    }
}

/// The cascade band (`CASCADE_BAND`): detection's type, parsed here.
pub use palisade_detect::cascade::Band;

/// Declares one subsystem's struct: each line is
/// `field: Type = ("KEY", "default", "meaning" [, check…])`.
macro_rules! section {
    ($(#[$meta:meta])* pub struct $name:ident {
        $( $(#[$fmeta:meta])* $field:ident : $ty:ty = ($key:literal, $default:literal, $help:expr $(, $check:expr)* $(,)?), )*
    }) => {
        $(#[$meta])*
        #[derive(Debug, Clone)]
        pub struct $name { $( $(#[$fmeta])* pub $field: $ty, )* }

        impl $name {
            pub const KEYS: &'static [Key] = &[$( Key { name: $key, default: $default, help: $help }, )*];

            fn from_raw(raw: &Raw) -> Result<Self, ConfigError> {
                Ok($name { $( $field: read::<$ty>(raw, $key, $default, &[$($check),*])?, )* })
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::from_raw(&Raw::new()).expect("every default parses")
            }
        }
    };
}

section! {
    /// The HTTP listeners, keys and limits both services share.
    pub struct ServerConfig {
        api_keys: Vec<String> = ("API_KEYS", "", "comma-separated keys for the event APIs (header `api-key`)"),
        admin_api_keys: Vec<String> = ("ADMIN_API_KEYS", "", "comma-separated keys for /v1/admin (header `api-key`)"),
        ingest_addr: SocketAddr = ("INGEST_ADDR", "127.0.0.1:8001", "ingestion listen address"),
        screening_addr: SocketAddr = ("SCREENING_ADDR", "127.0.0.1:8002", "screening listen address"),
        workers: usize = ("WORKERS", "0", "HTTP worker threads per process (the seed's uvicorn WORKERS); 0: one per CPU core"),
        max_body_bytes: usize = ("MAX_BODY_BYTES", "16777216", "largest request body", positive),
        webhook_max_body_bytes: usize = ("WEBHOOK_MAX_BODY_BYTES", "1048576",
            "largest platform webhook body (refused with 413 before an adapter sees it)", positive),
        rate_limit_per_key: u32 = ("RATE_LIMIT_PER_KEY", "0", "requests per second per API or admin key (0: no limit); past it 429"),
        rate_limit_per_ip: u32 = ("RATE_LIMIT_PER_IP", "0",
            "requests per second per client address (0: no limit; clients behind one proxy share an address)"),
        auth_failures_per_ip: u32 = ("AUTH_FAILURES_PER_IP", "20",
            "refused keys per second per client address before it gets 429 (0: no limit)"),
        header_timeout_ms: u64 = ("HEADER_TIMEOUT_MS", "10000",
            "a client must send a whole request head within this time, and an idle kept-alive connection is closed \
             after it", positive),
        body_timeout_ms: u64 = ("BODY_TIMEOUT_MS", "30000", "a request body must arrive within this time (else 408)", positive),
        max_connections: usize = ("MAX_CONNECTIONS", "4096",
            "open connections per listener; past it only /health, /ready and /metrics are served (keep the process's \
             file limit above twice this)", positive),
        log_format: LogFormat = ("LOG_FORMAT", "json", "json or text"),
        swagger_ui_dir: PathBuf = ("SWAGGER_UI_DIR", "var/swagger-ui", "Swagger UI's swagger-ui-bundle.js and swagger-ui.css, served at /docs"),
    }
}

impl ServerConfig {
    pub fn rate_limits(&self) -> crate::api::limits::RateLimits {
        crate::api::limits::RateLimits {
            per_key: self.rate_limit_per_key,
            per_ip: self.rate_limit_per_ip,
            auth_failures_per_ip: self.auth_failures_per_ip,
        }
    }

    pub fn body_limits(&self) -> palisade_core::BodyLimits {
        palisade_core::BodyLimits {
            max_bytes: self.max_body_bytes,
            timeout: std::time::Duration::from_millis(self.body_timeout_ms),
        }
    }

    pub fn listener_limits(&self) -> crate::api::server::Limits {
        crate::api::server::Limits {
            header_timeout: std::time::Duration::from_millis(self.header_timeout_ms),
            max_connections: self.max_connections,
        }
    }
}

section! {
    /// The plugin directory and its watcher.
    pub struct PluginsConfig {
        dir: PathBuf = ("PLUGIN_DIR", "var/plugins", "directory of NAME.wasm + NAME.toml plugins"),
        /// `None`: `PLUGIN_DIR/.cache` ([`PluginsConfig::cache_dir`]).
        cache_dir_override: Option<PathBuf> = ("PLUGIN_CACHE_DIR", "", "compiled-component cache (default: PLUGIN_DIR/.cache)"),
        watch: bool = ("PLUGIN_WATCH", "true", "hot-reload plugins when their files change"),
        watch_debounce_ms: u64 = ("PLUGIN_WATCH_DEBOUNCE_MS", "20", "quiet time after a file change before reloading"),
        trusted_keys: Vec<String> = ("PLUGIN_TRUSTED_KEYS", "",
            "comma-separated Ed25519 public keys (hex) or .pub files whose signatures (NAME.sig) are trusted"),
        require_signature: bool = ("PLUGIN_REQUIRE_SIGNATURE", "false",
            "refuse a component that is unsigned, signed by an untrusted key, or changed after signing"),
    }
}

impl PluginsConfig {
    pub fn cache_dir(&self) -> PathBuf {
        self.cache_dir_override.clone().unwrap_or_else(|| self.dir.join(".cache"))
    }
}

section! {
    /// Redis: where, under which prefix, and how many entries per round trip.
    pub struct RedisConfig {
        url: String = ("REDIS_URL", "redis://127.0.0.1:6379", "Redis for streams, dedup and caches"),
        key_prefix: String = ("REDIS_KEY_PREFIX", "", "prefix for every Redis key (streams, dedup), to share one Redis"),
        batch_size: usize = ("BATCH_SIZE", "100",
            "most events per Redis round trip (ingest produce, screening read); the seed's 500 also works — 100 keeps \
             a screening batch's latency low on two cores", positive),
        timeout_ms: u64 = ("REDIS_TIMEOUT_MS", "500",
            "longest wait for Redis to answer one call; past it ingest answers 503 `outcome_unknown`", positive),
        cluster_nodes: Vec<String> = ("REDIS_CLUSTER_NODES", "",
            "comma-separated host:port of Redis Cluster nodes (any few; the rest are discovered): cluster mode, \
             REDIS_URL unused for the event path"),
        stream_shards: usize = ("STREAM_SHARDS", "1",
            "events:raw shards (hash-tagged streams, each with its dedup keys and outputs in one slot); every \
             process of a deployment must agree", positive),
        wait_replicas: u32 = ("REDIS_WAIT_REPLICAS", "0",
            "replicas that must confirm an accepted event's write (WAIT) before ingest answers 202; 0: the master's \
             answer suffices"),
        audit_max_entries: usize = ("AUDIT_MAX_ENTRIES", "100000",
            "entries events:audit keeps (approximately: Redis trims whole nodes; GET /v1/admin/audit reports it)", positive),
    }
}

impl RedisConfig {
    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.timeout_ms)
    }

    /// Where the event path's Redis is: `REDIS_CLUSTER_NODES` when set, else `REDIS_URL`.
    pub fn target(&self) -> palisade_streams::Target {
        palisade_streams::Target::new(&self.url, &self.cluster_nodes)
    }

    /// The key layout: `STREAM_SHARDS` shards, hash-tagged in a cluster.
    pub fn keys(&self) -> palisade_streams::Keys {
        palisade_streams::Keys::layout(&self.key_prefix, self.stream_shards, !self.cluster_nodes.is_empty())
    }
}

section! {
    /// What makes an event valid, for every route that takes events.
    pub struct EventsConfig {
        min_content_length: usize = ("MIN_CONTENT_LENGTH", "1", "fewest characters of content"),
        max_content_length: usize = ("MAX_CONTENT_LENGTH", "10000", "most characters of content", positive),
        require_author: bool = ("REQUIRE_AUTHOR", "false",
            "reject events without author_id (the seed says true; false here because webhook events from Slack and \
             web forms often carry only user_id — set true to follow the seed)"),
        max_batch_events: usize = ("MAX_BATCH_EVENTS", "1000", "most events in one batch request", positive),
    }
}

impl EventsConfig {
    pub fn limits(&self) -> palisade_core::schema::Limits {
        palisade_core::schema::Limits {
            min_content_length: self.min_content_length,
            max_content_length: self.max_content_length,
            require_author: self.require_author,
        }
    }
}

section! {
    /// Ingestion: produce batching, dedup window, backpressure.
    pub struct IngestConfig {
        batch_timeout_ms: u64 = ("BATCH_TIMEOUT_MS", "1", "longest wait for a produce batch to fill"),
        dedup_window_seconds: u64 = ("DEDUP_WINDOW_SECONDS", "3600", "how long a duplicate is remembered", positive),
        max_queue_depth: u64 = ("MAX_QUEUE_DEPTH", "100000", "events:raw backlog (group lag + pending) at 100 % load", positive),
        backpressure_enabled: bool = ("BACKPRESSURE_ENABLED", "true", "answer 503 + Retry-After when the backlog is too deep"),
        backpressure_threshold: f64 = ("BACKPRESSURE_THRESHOLD", "0.9", "share of MAX_QUEUE_DEPTH at which backpressure starts", share),
    }
}

impl IngestConfig {
    /// The backlog at which ingest answers 503 (`None`: never).
    pub fn backpressure_at(&self) -> Option<u64> {
        self.backpressure_enabled.then(|| ((self.max_queue_depth as f64) * self.backpressure_threshold).ceil() as u64)
    }
}

section! {
    /// Screening: scoring, routing and the consumer group.
    pub struct ScreeningConfig {
        threshold: f32 = ("SCREENING_THRESHOLD", "0.7", "risk above which an event goes to events:reasoning_queue", unit),
        rule_weight: f32 = ("RULE_WEIGHT", "0.6", "weight of the rule score in the combined risk", unit),
        embedding_weight: f32 = ("EMBEDDING_WEIGHT", "0.4", "weight of the embedding score in the combined risk", unit),
        fast_path: Option<f32> = ("SCREENING_FAST_PATH", "off",
            "SCORING=weighted: a rule score (0–1] from which the rules alone decide and the embedding is skipped", open_unit),
        /// `None`: host-pid ([`ScreeningConfig::consumer_name`]).
        consumer_name_override: Option<String> = ("CONSUMER_NAME", "", "this screening consumer's name in the group (default: host-pid)"),
        max_deliveries: u64 = ("MAX_DELIVERIES", "5", "deliveries after which an entry goes to events:dead_letter", positive),
        claim_idle_ms: u64 = ("CLAIM_IDLE_MS", "15000",
            "idle time after which another consumer's pending entry is taken over (a batch takes well under 1 s)", positive),
        claim_interval_ms: u64 = ("CLAIM_INTERVAL_MS", "2000", "how often a consumer looks for idle entries to take over", positive),
        degraded_events: DegradedEvents = ("DEGRADED_EVENTS", "rescreen",
            "an event screened degraded (a rule plugin quarantined, failed or faulted): rescreen (routed, then screened \
             again once those plugins are back; the new verdict is routed flagged rescreened) or review (routed to \
             events:reasoning_queue whatever its risk, flagged review)"),
        campaign_min_accounts: u64 = ("CAMPAIGN_MIN_ACCOUNTS", "3",
            "distinct accounts posting one message (lower case, words only, 20+ characters) on one platform within \
             CAMPAIGN_WINDOW_SECONDS from which a prediction is flagged campaign (each carries campaign_accounts from 2; \
             0: not counted)"),
        campaign_window_seconds: u64 = ("CAMPAIGN_WINDOW_SECONDS", "3600",
            "how long after a message's first copy further accounts posting it are counted", positive),
        claim_batch: usize = ("CLAIM_BATCH", "1000", "most idle entries taken over per round (rounds repeat until none is left)", positive),
        similar_k: usize = ("SIMILAR_K", "10", "nearest labelled examples per event", positive),
        similar_events_k: usize = ("SIMILAR_EVENTS_K", "5",
            "most similar past events per event (0: past events are not kept, the fastest setting at high rates)"),
        similar_events_max: usize = ("SIMILAR_EVENTS_MAX", "100000",
            "past events kept for SIMILAR_EVENTS_K (embedded store; the oldest half is dropped at once when full)", positive),
        similar_events_text_keys: Vec<String> = ("SIMILAR_EVENTS_TEXT_KEYS", "",
            "API keys whose screen answers carry the text of similar past events (other users' messages; every other \
             key gets their id, category and similarity only)"),
        stream_retention_seconds: u64 = ("STREAM_RETENTION_SECONDS", "86400",
            "age after which entries of events:raw, events:reasoning_queue and events:low_risk are trimmed, except \
             entries a consumer group has not delivered or acknowledged yet (0: keep everything)"),
        embedding_cache_ttl: u64 = ("EMBEDDING_CACHE_TTL", "604800", "seconds an embedding stays cached in Redis (0: no cache)"),
        shards: Vec<usize> = ("SCREENING_SHARDS", "",
            "the stream shards this process screens, e.g. 0,1 (default: all of STREAM_SHARDS); several processes may \
             share a shard (one consumer group)"),
    }
}

impl ScreeningConfig {
    pub fn consumer_name(&self) -> String {
        self.consumer_name_override.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/etc/hostname").unwrap_or_else(|_| "palisade".into());
            format!("{}-{}", host.trim(), std::process::id())
        })
    }
}

section! {
    /// The trained classifier and the cascade in front of the embedding stage.
    pub struct ClassifierConfig {
        /// `None`: no classifier (screening scores with SCORING=weighted).
        dir: Option<PathBuf> = ("CLASSIFIER_DIR", "var/classifier",
            "the trained classifier's folder (palisade train; scripts/setup trains the default), or none"),
        scoring: Scoring = ("SCORING", "classifier",
            "classifier (category_scores of the trained model) or weighted (the seed's rules/embedding mix)"),
        cascade: Switch = ("CASCADE", "on",
            "on: only events whose classifier risk lies in CASCADE_BAND reach the embedding stage; off: every event does"),
        band: Band = ("CASCADE_BAND", "0.25,0.75", "classifier risk range (low,high) for which the embedding stage runs"),
        knn_weight: f32 = ("CASCADE_KNN_WEIGHT", "0.6",
            "share of the nearest labelled examples' label mix in the scores of events the embedding stage sees", unit),
        rule_override_min_risk: f32 = ("RULE_OVERRIDE_MIN_RISK", "0",
            "a rule score above SCREENING_THRESHOLD overrides the classifier's LOW_RISK verdict only where the \
             classifier's risk is at least this (0: always; 1: never; docs/classifier.md says when to raise it)", unit),
        watch: bool = ("CLASSIFIER_WATCH", "true", "reload the classifier when the files in CLASSIFIER_DIR change"),
    }
}

section! {
    /// The sentence-embedding model.
    pub struct ModelConfig {
        /// `None` when SCREENING_MODEL is `none`.
        dir: Option<PathBuf> = ("SCREENING_MODEL", "var/models/all-MiniLM-L6-v2", "sentence-encoder folder (model.onnx + tokenizer.json), or none"),
        ort_dylib_path: PathBuf = ("ORT_DYLIB_PATH", "var/onnxruntime/libonnxruntime.so.1.32.0", "the ONNX Runtime shared library"),
        device: palisade_detect::embed::Device = ("DEVICE", "cpu", "cpu or cuda (cuda needs a build with --features cuda)"),
        batch_size: usize = ("MODEL_BATCH_SIZE", "32", "texts per model call", positive),
        query_prefix: String = ("MODEL_QUERY_PREFIX", "", "text put before every input (e5-style models: `query: `)"),
    }
}

section! {
    /// Vector stores: the embedded files or a Qdrant server, and the IVF index.
    pub struct VectorsConfig {
        dir: PathBuf = ("VECTOR_DIR", "var/vectors", "where the example bank (exemplars.vec) is kept"),
        /// `None`: the embedded store in `dir`.
        qdrant_url: Option<String> = ("QDRANT_URL", "",
            "a Qdrant server (gRPC, e.g. http://127.0.0.1:6334) as the vector store (build with --features qdrant)"),
        qdrant_api_key: Option<Secret> = ("QDRANT_API_KEY", "", "Qdrant API key, when the server wants one"),
        qdrant_collection_prefix: String = ("QDRANT_COLLECTION_PREFIX", "palisade_", "Qdrant collections are {prefix}exemplars and {prefix}events"),
        ann_min_rows: usize = ("ANN_MIN_ROWS", "2000", "vector collections this large are searched through an IVF index (0: always exact)"),
        ann_probes: usize = ("ANN_PROBES", "12", "IVF lists scored per query (more: closer to exact, slower)", positive),
    }
}

impl VectorsConfig {
    /// The approximate-search setting of vector collections (`None`: always exact).
    pub fn ann(&self) -> Option<palisade_detect::vectors::ivf::Ann> {
        (self.ann_min_rows > 0)
            .then_some(palisade_detect::vectors::ivf::Ann { min_rows: self.ann_min_rows, probes: self.ann_probes })
    }

    /// What the vector stores need to know.
    pub fn store(&self) -> palisade_detect::vectors::StoreConfig {
        palisade_detect::vectors::StoreConfig {
            dir: self.dir.clone(),
            qdrant_url: self.qdrant_url.clone(),
            qdrant_api_key: self.qdrant_api_key.as_ref().map(|k| k.expose().to_string()),
            qdrant_collection_prefix: self.qdrant_collection_prefix.clone(),
            ann: self.ann(),
        }
    }
}

section! {
    /// Requests to platforms (bot posts and moderation actions).
    pub struct OutboundConfig {
        platforms: Vec<String> = ("OUTBOUND_PLATFORMS", "discord,slack,web",
            "comma-separated platforms whose {PLATFORM}_API_BASE and {PLATFORM}_BOT_TOKEN are read (add one when you install its adapter; other such variables are left alone)"),
        discord_api_base: String = ("DISCORD_API_BASE", "https://discord.com/api/v10",
            "where Discord adapter requests go (any platform in OUTBOUND_PLATFORMS: {PLATFORM}_API_BASE)"),
        slack_api_base: String = ("SLACK_API_BASE", "https://slack.com/api", "where Slack adapter requests go"),
        web_api_base: String = ("WEB_API_BASE", "", "where web adapter posts and actions go"),
        discord_bot_token: Option<Secret> = ("DISCORD_BOT_TOKEN", "",
            "bot token put in place of {token} in Discord requests (any platform in OUTBOUND_PLATFORMS: {PLATFORM}_BOT_TOKEN)"),
        slack_bot_token: Option<Secret> = ("SLACK_BOT_TOKEN", "", "bot token (xoxb-…) for Slack requests"),
        web_bot_token: Option<Secret> = ("WEB_BOT_TOKEN", "", "bearer token for web adapter requests"),
        timeout_ms: u64 = ("OUTBOUND_TIMEOUT_MS", "10000", "timeout of one request to a platform", positive),
        max_attempts: u32 = ("OUTBOUND_MAX_ATTEMPTS", "4", "tries of one post or action (429s and 5xx are retried)", positive),
        backoff_ms: u64 = ("OUTBOUND_BACKOFF_MS", "250", "first wait before retrying a 5xx or network error (doubles each time)"),
        max_wait_ms: u64 = ("OUTBOUND_MAX_WAIT_MS", "30000", "longest 429 Retry-After waited out; longer is answered 429 to the caller"),
        prepost_screening: bool = ("PREPOST_SCREENING", "false",
            "score a bot's post with the heuristic plugins and refuse it above SCREENING_THRESHOLD"),
    }
}

/// Where one platform's adapter requests go, and with which bot token.
#[derive(Debug, Clone, Default)]
pub struct PlatformApi {
    pub base: String,
    pub token: Option<Secret>,
}

/// Suffixes of the per-platform keys: `{PLATFORM}_API_BASE`, `{PLATFORM}_BOT_TOKEN`.
const API_BASE: &str = "_API_BASE";
const BOT_TOKEN: &str = "_BOT_TOKEN";

fn is_platform_key(key: &str) -> bool {
    key.len() > BOT_TOKEN.len() && (key.ends_with(API_BASE) || key.ends_with(BOT_TOKEN))
}

section! {
    /// Distributed traces: OpenTelemetry spans over OTLP/HTTP (protobuf). The SDK's
    /// own variables (OTEL_BSP_SCHEDULE_DELAY, OTEL_BSP_MAX_QUEUE_SIZE …) apply too.
    pub struct TracingConfig {
        otlp_endpoint: Option<String> = ("OTEL_EXPORTER_OTLP_ENDPOINT", "",
            "OTLP/HTTP collector base URL, e.g. http://jaeger:4318 (spans go to …/v1/traces); empty: no spans are made"),
        service_name: Option<String> = ("OTEL_SERVICE_NAME", "",
            "service name on exported spans (default: palisade-ingest, palisade-screening, or palisade for `serve all`)"),
    }
}

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
