//! Every key, by subsystem: one `section!` each (field, type, environment
//! name, default, meaning, checks on one line), and what a section derives.

use super::values::*;
use std::net::SocketAddr;
use std::path::PathBuf;

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

impl ClassifierConfig {
    /// The classifier risks that reach the embedding stage (`None`: every one, `CASCADE=off`).
    pub fn cascade_band(&self) -> Option<Band> {
        self.cascade.0.then_some(self.band)
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
        /// `None` when TOXICITY_MODEL is `none` (the default: docs/classifier.md says why).
        toxicity: Option<PathBuf> = ("TOXICITY_MODEL", "none",
            "a toxicity side model whose scores `palisade train` adds as features: var/models/tox-block/tox-block.bin (scripts/setup converts tox-block 0.1.2), or none"),
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
pub(super) const API_BASE: &str = "_API_BASE";
pub(super) const BOT_TOKEN: &str = "_BOT_TOKEN";

pub(super) fn is_platform_key(key: &str) -> bool {
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
