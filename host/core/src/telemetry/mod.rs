//! Logs (tracing, JSON by default), traces ([`traces`], OTLP when configured), the
//! process's Prometheus registry and the gauges read at scrape time ([`gauges`]),
//! and every metric and label name the services export ([`names`]: the one place
//! to grep, and what dashboards and alert rules are checked against).

pub mod faults;
pub mod gauges;
pub mod traces;

use prometheus::{Encoder, Registry, TextEncoder};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Where spans go: an OTLP/HTTP collector, under a service name.
pub struct TraceExport<'a> {
    pub endpoint: &'a str,
    pub service: &'a str,
}

/// Install the global subscriber once: logs filtered by `RUST_LOG` (default
/// `default_level`), and with `traces` the spans of the services (info level,
/// whatever `RUST_LOG` says) exported over OTLP.
pub fn init_logging(format: &str, default_level: &str, traces: Option<TraceExport>) -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let logs: Box<dyn Layer<_> + Send + Sync> = if format == "json" {
        // Span fields stay out of log lines: a line reads the same with traces on or off.
        let json = tracing_subscriber::fmt::layer().json().flatten_event(true);
        Box::new(json.with_current_span(false).with_span_list(false).with_writer(std::io::stderr))
    } else {
        Box::new(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
    };
    let spans = match traces {
        Some(t) => Some(
            tracing_opentelemetry::layer()
                .with_tracer(traces::start(t.endpoint, t.service)?)
                .with_filter(tracing_subscriber::filter::LevelFilter::INFO),
        ),
        None => None,
    };
    let _ = tracing_subscriber::registry().with(spans).with(logs.with_filter(filter)).try_init();
    Ok(())
}

/// The metrics of a registry in Prometheus text format.
pub fn render(registry: &Registry) -> String {
    let mut buf = Vec::new();
    let _ = TextEncoder::new().encode(&registry.gather(), &mut buf);
    String::from_utf8(buf).unwrap_or_default()
}

/// A log line that may repeat thousands of times a second (refused keys, dropped
/// connections) written at most once per `every`, saying how many were skipped.
pub struct Sampled {
    every: std::time::Duration,
    last: std::sync::Mutex<Option<std::time::Instant>>,
    skipped: std::sync::atomic::AtomicU64,
}

impl Sampled {
    pub fn new(every: std::time::Duration) -> Self {
        Sampled { every, last: std::sync::Mutex::new(None), skipped: Default::default() }
    }

    /// Run `log` (given how many were skipped since the last line) if its turn has come.
    pub fn log(&self, log: impl FnOnce(u64)) {
        use std::sync::atomic::Ordering;
        let mut last = self.last.lock().expect("sampled lock");
        if last.is_some_and(|t| t.elapsed() < self.every) {
            self.skipped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        *last = Some(std::time::Instant::now());
        drop(last);
        log(self.skipped.swap(0, Ordering::Relaxed));
    }
}

/// A labelled counter, registered in `registry`.
pub fn counter_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<prometheus::IntCounterVec> {
    let c = prometheus::IntCounterVec::new(prometheus::Opts::new(name, help), labels)?;
    registry.register(Box::new(c.clone()))?;
    Ok(c)
}

/// A quantile estimated from histogram buckets (linear within the bucket).
pub fn quantile(h: &prometheus::Histogram, q: f64) -> f64 {
    use prometheus::core::Collector;
    let families = h.collect();
    let Some(m) = families.first().and_then(|f| f.get_metric().first()) else { return 0.0 };
    let hist = m.get_histogram();
    let total = hist.get_sample_count() as f64;
    if total == 0.0 {
        return 0.0;
    }
    let target = q * total;
    let (mut prev_bound, mut prev_count) = (0.0, 0.0);
    for b in hist.get_bucket() {
        let (bound, count) = (b.upper_bound(), b.cumulative_count() as f64);
        if count >= target {
            let share = if count > prev_count { (target - prev_count) / (count - prev_count) } else { 0.0 };
            return prev_bound + share * (bound - prev_bound);
        }
        (prev_bound, prev_count) = (bound, count);
    }
    prev_bound
}

/// Metric names (`palisade_<subsystem>_<what>_<unit>`; counters end in `_total`,
/// durations in `_seconds`, 0–1 values in `_ratio`) and their label names. Label
/// values are bounded: route templates, plugin and platform names from the
/// loaded directory, fixed outcome words.
pub mod names {
    // HTTP, both services (`service` = ingest | screening).
    pub const HTTP_REQUESTS: &str = "palisade_http_requests_total";
    pub const HTTP_REQUEST_DURATION: &str = "palisade_http_request_duration_seconds";

    // Ingestion.
    pub const INGEST_RECEIVED: &str = "palisade_ingest_events_received_total";
    pub const INGEST_EVENTS: &str = "palisade_ingest_events_total";
    pub const INGEST_REJECTIONS: &str = "palisade_ingest_rejections_total";
    pub const INGEST_BACKPRESSURE: &str = "palisade_ingest_backpressure_refusals_total";
    pub const INGEST_REDIS_ERRORS: &str = "palisade_ingest_redis_errors_total";
    /// The `events:raw` backlog (group lag + pending), both services.
    pub const INGEST_QUEUE_DEPTH: &str = "palisade_ingest_queue_depth";

    // Read at scrape time, both services.
    pub const REDIS_UP: &str = "palisade_redis_up";
    pub const PROCESS_RESIDENT_MEMORY: &str = "palisade_process_resident_memory_bytes";
    pub const PROCESS_MEMORY_LIMIT: &str = "palisade_process_memory_limit_bytes";
    /// Panics caught in a request's or a batch's task (`faults`), both services.
    pub const PANICS: &str = "palisade_panics_total";

    // Screening.
    pub const SCREENING_EVENTS: &str = "palisade_screening_events_total";
    pub const SCREENING_CATEGORIES: &str = "palisade_screening_category_events_total";
    pub const SCREENING_DEGRADED: &str = "palisade_screening_degraded_events_total";
    pub const SCREENING_BATCH_DURATION: &str = "palisade_screening_batch_duration_seconds";
    pub const SCREENING_RISK: &str = "palisade_screening_risk_score_ratio";
    pub const SCREENING_CACHE: &str = "palisade_screening_embedding_cache_lookups_total";
    pub const SCREENING_STAGE_EVENTS: &str = "palisade_screening_stage_events_total";
    pub const CLASSIFIER_RELOADS: &str = "palisade_classifier_reloads_total";

    // Plugins.
    pub const PLUGIN_CALLS: &str = "palisade_plugin_calls_total";
    pub const PLUGIN_EVENTS: &str = "palisade_plugin_events_total";
    pub const PLUGIN_ERRORS: &str = "palisade_plugin_errors_total";
    pub const PLUGIN_CALL_DURATION: &str = "palisade_plugin_call_duration_seconds";
    pub const PLUGIN_QUARANTINES: &str = "palisade_plugin_quarantines_total";
    pub const PLUGIN_QUARANTINED: &str = "palisade_plugin_quarantined";
    pub const PLUGIN_RELOADS: &str = "palisade_plugin_reloads_total";

    // Platform adapters.
    pub const ADAPTER_WEBHOOKS: &str = "palisade_adapter_webhooks_total";
    pub const ADAPTER_OUTBOUND: &str = "palisade_adapter_outbound_total";
    pub const ADAPTER_REQUEST_DURATION: &str = "palisade_adapter_platform_request_duration_seconds";
    pub const ADAPTER_RETRIES: &str = "palisade_adapter_retries_total";

    /// Every name above (what a dashboard or alert rule may query).
    pub const ALL: &[&str] = &[
        HTTP_REQUESTS,
        HTTP_REQUEST_DURATION,
        INGEST_RECEIVED,
        INGEST_EVENTS,
        INGEST_REJECTIONS,
        INGEST_BACKPRESSURE,
        INGEST_REDIS_ERRORS,
        INGEST_QUEUE_DEPTH,
        REDIS_UP,
        PROCESS_RESIDENT_MEMORY,
        PROCESS_MEMORY_LIMIT,
        PANICS,
        SCREENING_EVENTS,
        SCREENING_CATEGORIES,
        SCREENING_DEGRADED,
        SCREENING_BATCH_DURATION,
        SCREENING_RISK,
        SCREENING_CACHE,
        SCREENING_STAGE_EVENTS,
        CLASSIFIER_RELOADS,
        PLUGIN_CALLS,
        PLUGIN_EVENTS,
        PLUGIN_ERRORS,
        PLUGIN_CALL_DURATION,
        PLUGIN_QUARANTINES,
        PLUGIN_QUARANTINED,
        PLUGIN_RELOADS,
        ADAPTER_WEBHOOKS,
        ADAPTER_OUTBOUND,
        ADAPTER_REQUEST_DURATION,
        ADAPTER_RETRIES,
    ];

    // Label names.
    pub const SERVICE: &str = "service";
    /// An HTTP route template (`/v1/events/ingest`), never a raw path.
    pub const ROUTE: &str = "route";
    pub const STATUS: &str = "status";
    pub const OUTCOME: &str = "outcome";
    pub const CODE: &str = "code";
    /// Where a screened event went: reasoning_queue, low_risk, dead_letter, caller (HTTP).
    pub const DESTINATION: &str = "destination";
    pub const RESULT: &str = "result";
    pub const PLUGIN: &str = "plugin";
    pub const ERROR: &str = "error";
    pub const PLATFORM: &str = "platform";
    pub const KIND: &str = "kind";
    pub const REASON: &str = "reason";
    /// A screening stage: rules, classifier, embedding.
    pub const STAGE: &str = "stage";
    /// A predicted category (LOW_RISK, SPAM, …).
    pub const CATEGORY: &str = "category";
    /// Where a panic was caught: screen (HTTP routes), consumer.
    pub const WHERE: &str = "where";
}
