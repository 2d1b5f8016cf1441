//! Assembling a running Palisade: the plugin runtime and directory (with its
//! watcher), the metrics registry, Redis, and the HTTP services on their addresses.

use crate::api::limits::{self, Limiter};
use crate::api::{AppState, HttpMetrics, common_routes, request_context, with_error_fallbacks};
use crate::config::Config;
use crate::config::Scoring;
use crate::entity_labels::LabelStore;
use crate::ingest::metrics::IngestMetrics;
use crate::ingest::{self, Ingest};
use crate::platforms::metrics::AdapterMetrics;
use crate::platforms::sender::Sender;
use crate::platforms::{self, Platforms};
use crate::screening::consumer::Consumer;
use crate::screening::shadow::{ClassifierCandidate, Shadows};
use crate::screening::{self, ScreenApi, ScreenMetrics, Screener, Similarity};
use anyhow::Context;
use axum::Router;
use palisade_core::schema::Limits;
use palisade_core::telemetry::faults::Faults;
use palisade_core::telemetry::gauges::Gauges;
use palisade_detect::classify::slot::Slot;
use palisade_detect::embed::Embedder;
use palisade_detect::embed::cache::EmbeddingCache;
use palisade_detect::vectors;
use palisade_plugins::signing::Trust;
use palisade_plugins::watcher::{DirWatcher, watch};
use palisade_plugins::{PluginHost, PluginMetrics, Runtime};
use palisade_streams::audit::AuditStream;
use palisade_streams::control::{Action, Change, ControlStream};
use palisade_streams::depth::Depth;
use palisade_streams::labels::LabelStream;
use palisade_streams::producer::{ProduceOptions, Producer};
use palisade_streams::{Backlog, EventSink, Keys, RedisConn};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// One process's parts every service in it shares: configuration, Redis keys,
/// plugins, metrics, watchers, background tasks (`Process::start`, then `serve`).
pub struct Process {
    pub config: Config,
    pub keys: Keys,
    pub plugins: Arc<PluginHost>,
    pub registry: prometheus::Registry,
    /// The HTTP metric families both services count into.
    http: HttpMetrics,
    /// Gauges read at scrape time (backlog, Redis, memory).
    gauges: Gauges,
    /// Panics caught in the services' tasks.
    faults: Faults,
    /// Tasks to wait for on shutdown (the screening consumer finishing its batch).
    background: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    _watcher: Option<DirWatcher>,
    /// Other watches (the classifier's), alive as long as the process.
    watchers: std::sync::Mutex<Vec<DirWatcher>>,
    /// The audit trail (`events:audit`), once a service has a Redis connection.
    audit: std::sync::OnceLock<Arc<AuditStream>>,
    /// Operators' changes every replica follows (`events:control`), likewise.
    control: std::sync::OnceLock<Arc<ControlStream>>,
    /// The classifier screening scores with, once it has one (a followed rollback's target).
    classifier: Arc<std::sync::OnceLock<Arc<Slot>>>,
    /// Shadow candidates (`PLUGIN_DIR/shadow/`), scored beside the active rules.
    pub shadows: Arc<Shadows>,
    /// Entity labels (`/v1/labels`, the plugins' `labels` host function).
    pub entity_labels: Arc<LabelStore>,
}

impl Process {
    pub fn start(config: Config) -> anyhow::Result<Self> {
        let registry = prometheus::Registry::new();
        let metrics = PluginMetrics::register(&registry)?;
        let runtime = Runtime::new(Some(config.plugins.cache_dir()))?;
        std::fs::create_dir_all(&config.plugins.dir)
            .with_context(|| format!("PLUGIN_DIR {} cannot be created", config.plugins.dir.display()))?;
        let shadow_dir = palisade_plugins::install::shadow_dir(&config.plugins.dir);
        std::fs::create_dir_all(&shadow_dir).with_context(|| format!("{} cannot be created", shadow_dir.display()))?;
        // Candidates' metrics stay out of the service's registry (their names are the active plugins').
        let shadow_metrics = PluginMetrics::register(&prometheus::Registry::new())?;
        let trust = Trust::from_entries(&config.plugins.trusted_keys, config.plugins.require_signature)
            .map_err(anyhow::Error::msg)?;
        let shadow_host = PluginHost::open_trusting(runtime.clone(), &shadow_dir, shadow_metrics, trust.clone());
        // Plugins granted `labels` read entity labels from Redis (connected on first use).
        let entity_labels = Arc::new(LabelStore::new(config.redis.target(), &config.redis.key_prefix));
        runtime.lending.set_labels(entity_labels.clone());
        let plugins = PluginHost::open_trusting(runtime, &config.plugins.dir, metrics, trust);
        let shadows = Arc::new(Shadows::new(shadow_host.clone(), plugins.clone()));
        let debounce = Duration::from_millis(config.plugins.watch_debounce_ms);
        let (watcher, shadow_watcher) = if config.plugins.watch {
            (Some(watch(plugins.clone(), debounce)?), Some(watch(shadow_host, debounce)?))
        } else {
            (None, None)
        };
        Ok(Process {
            http: HttpMetrics::register(&registry)?,
            gauges: Gauges::register(&registry)?,
            faults: Faults::register(&registry)?,
            keys: config.redis.keys(),
            config,
            plugins,
            registry,
            background: Default::default(),
            _watcher: watcher,
            watchers: std::sync::Mutex::new(shadow_watcher.into_iter().collect()),
            audit: Default::default(),
            control: Default::default(),
            classifier: Default::default(),
            shadows,
            entity_labels,
        })
    }

    fn state(&self, service: &'static str, depth: Option<Arc<dyn Backlog>>) -> AppState {
        AppState {
            service,
            plugins: self.plugins.clone(),
            registry: self.registry.clone(),
            gauges: self.gauges.clone(),
            faults: self.faults.clone(),
            audit: self.audit.get().cloned(),
            control: self.control.get().cloned(),
            admin_api_keys: Arc::new(self.config.server.admin_api_keys.clone()),
            entity_labels: Some(self.entity_labels.clone()),
            body: self.config.server.body_limits(),
            depth,
            swagger_ui_dir: Arc::new(self.config.server.swagger_ui_dir.clone()),
        }
    }

    /// The ingestion service (`:8001`) on Redis: starts the producer and the
    /// backlog watcher, then [`Process::ingest_router`]. Must run inside a Tokio runtime.
    pub async fn ingest_app(&self, conn: RedisConn) -> anyhow::Result<Router> {
        self.start_audit(&conn);
        let c = &self.config;
        let depth = self.raw_depth(&conn, Duration::from_millis(200)).await;
        let options = ProduceOptions {
            ttl_seconds: c.ingest.dedup_window_seconds,
            batch_size: c.redis.batch_size,
            batch_timeout: Duration::from_millis(c.ingest.batch_timeout_ms),
            wait_replicas: c.redis.wait_replicas,
            // Under REDIS_TIMEOUT_MS, so a slow replica reads "not confirmed", not a dead Redis.
            wait_timeout: c.redis.timeout() / 2,
        };
        let producer = Producer::start(conn, self.keys.shards.clone(), options);
        self.ingest_router(Arc::new(producer), depth)
    }

    /// The ingestion service's routes over any event sink and backlog (tests use
    /// in-memory ones): event routes, platform routes, common and admin routes.
    pub fn ingest_router(&self, sink: Arc<dyn EventSink>, backlog: Arc<dyn Backlog>) -> anyhow::Result<Router> {
        let c = &self.config;
        let http = self.http.for_service("ingest");
        let adapter_metrics = AdapterMetrics::register(&self.registry)?;
        let sender = Sender::new(
            c.platform_apis.clone(),
            Duration::from_millis(c.outbound.timeout_ms),
            c.outbound.max_attempts,
            Duration::from_millis(c.outbound.max_wait_ms),
            Duration::from_millis(c.outbound.backoff_ms),
            adapter_metrics.clone(),
        )?;
        let api_keys = Arc::new(c.server.api_keys.clone());
        let metrics = IngestMetrics::register(&self.registry, http.clone(), self.gauges.queue_depth.clone())?;
        let rejections = metrics.rejections.clone();
        let ingest = Arc::new(Ingest {
            sink,
            backlog: backlog.clone(),
            metrics,
            plugins: self.plugins.clone(),
            limits: self.limits(),
            api_keys: api_keys.clone(),
            max_batch_events: c.events.max_batch_events,
            body: c.server.body_limits(),
            backpressure_at: c.ingest.backpressure_at(),
            produce_timeout: c.redis.timeout(),
        });
        let platforms = Arc::new(Platforms {
            intake: ingest.clone(),
            plugins: self.plugins.clone(),
            sender,
            metrics: adapter_metrics,
            api_keys,
            prepost_threshold: c.outbound.prepost_screening.then_some(c.screening.threshold),
            webhook_max_bytes: c.server.webhook_max_body_bytes.min(c.server.max_body_bytes),
        });
        // Refusals of the event and platform routes, counted once by code.
        let api = ingest::router(ingest)
            .merge(platforms::router(platforms))
            .layer(axum::middleware::from_fn_with_state(rejections, crate::api::count_refusals));
        let routes = common_routes(self.state("ingest", Some(backlog))).merge(api);
        Ok(self.guarded(routes, http))
    }

    /// The screening service (`:8002`) on Redis: the `events:raw` consumer
    /// (started here, stopped when `shutdown` turns true), then
    /// [`Process::screen_router`]. Must run inside a Tokio runtime.
    pub async fn screen_app(&self, conn: RedisConn, shutdown: watch::Receiver<bool>) -> anyhow::Result<Router> {
        self.start_audit(&conn);
        self.shadows.sample_into(palisade_streams::capped::CappedStream::start(
            conn.clone(),
            &self.keys.shadow,
            crate::screening::shadow::STREAM_KEEP,
            10_000,
        ));
        let c = &self.config;
        let screener = Arc::new(self.screener()?);
        let depth = self.raw_depth(&conn, Duration::from_millis(500)).await;
        // One consumer per shard screened. Each one's blocking reads get a connection
        // of their own (a blocked connection holds every command queued behind it);
        // they block for up to 500 ms, so they wait longer than REDIS_TIMEOUT_MS for an answer.
        let timeout = c.redis.timeout().max(Duration::from_secs(1));
        for shard in c.screening.shards_of(&c.redis) {
            let consumer = Consumer {
                conn: palisade_streams::connect_with_retry(&c.redis.target(), Duration::from_secs(10), timeout).await?,
                keys: self.keys.shards[shard].clone(),
                name: c.screening.consumer_name(),
                screener: screener.clone(),
                batch_size: c.redis.batch_size,
                max_deliveries: c.screening.max_deliveries,
                claim_idle: Duration::from_millis(c.screening.claim_idle_ms),
                claim_interval: Duration::from_millis(c.screening.claim_interval_ms),
                claim_batch: c.screening.claim_batch,
                retention: (c.screening.stream_retention_seconds > 0)
                    .then(|| Duration::from_secs(c.screening.stream_retention_seconds)),
                degraded_events: c.screening.degraded_events,
            };
            self.background.lock().expect("background lock").push(tokio::spawn(consumer.run(shutdown.clone())));
        }
        let labels = LabelStream { conn, key: self.keys.labels.clone() };
        self.screen_router(screener, depth, Some(labels))
    }

    /// Reload the candidate classifier when its folder (`CLASSIFIER_DIR.shadow`)
    /// appears, is replaced or goes.
    fn watch_classifier_candidate(&self, debounce: Duration) -> anyhow::Result<DirWatcher> {
        let candidate = self.shadows.classifier().expect("set with the classifier");
        let parent =
            candidate.dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
        let name = candidate.dir.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        let shadows = Arc::downgrade(&self.shadows);
        let relevant = move |p: &Path| p.file_name() == Some(name.as_os_str());
        Ok(palisade_plugins::watcher::watch_dir(&parent, "classifier-shadow-watch", relevant, debounce, move || {
            if let Some(candidate) = shadows.upgrade().as_ref().and_then(|s| s.classifier()) {
                match candidate.reload() {
                    Ok(version) => tracing::info!(?version, "candidate classifier reloaded"),
                    Err(e) => tracing::error!(error = %e, "the candidate classifier was refused"),
                }
            }
        })?)
    }

    /// The backlog of every shard of `events:raw`, read now and then every `every`.
    async fn raw_depth(&self, conn: &RedisConn, every: Duration) -> Arc<Depth> {
        let depth = Depth::new(self.keys.shards.iter().map(|s| s.raw.clone()).collect());
        depth.refresh(&mut conn.clone()).await;
        depth.watch(conn.clone(), every);
        depth
    }

    /// From now on (once per process): record plugin changes in `events:audit`,
    /// and publish this process's operators' changes on `events:control` while
    /// applying the other replicas'.
    fn start_audit(&self, conn: &RedisConn) {
        let audit = self.audit.get_or_init(|| {
            Arc::new(AuditStream::start(conn.clone(), &self.keys.audit, self.config.redis.audit_max_entries))
        });
        self.plugins.set_audit(audit.clone());
        self.control.get_or_init(|| {
            let control = Arc::new(ControlStream::start(conn.clone(), &self.keys.control));
            let (plugins, classifier) = (self.plugins.clone(), self.classifier.clone());
            control.follow(conn.clone(), move |change| apply_change(&plugins, classifier.get(), &change));
            control
        });
    }

    /// Every screening stage from config (the model, banks and classifier when configured).
    pub fn screener(&self) -> anyhow::Result<Screener> {
        let c = &self.config;
        let similarity = self.similarity()?;
        let metrics = ScreenMetrics::register(&self.registry, self.faults.clone())?;
        let classifier = match (&c.classifier.dir, c.classifier.scoring) {
            (Some(dir), Scoring::Classifier) => {
                let model = similarity.as_ref().map(|s| s.embedder.model_id.clone());
                let slot = Arc::new(Slot::open(dir, model.clone()).context(
                    "CLASSIFIER_DIR (train one with `palisade train`, or set SCORING=weighted for the rules/embedding mix)",
                )?);
                self.shadows.with_classifier(ClassifierCandidate::beside(dir, model));
                if c.classifier.watch {
                    let debounce = Duration::from_millis(c.plugins.watch_debounce_ms);
                    let (reloads, audit) = (metrics.classifier_reloads.clone(), self.audit.get().cloned());
                    let watcher = slot.watch(debounce, move |outcome| {
                        reloads.with_label_values(&[outcome.as_ref().map_or("refused", |s| s.outcome)]).inc();
                        if let (Some(audit), Ok(swap)) = (&audit, outcome)
                            && swap.outcome == "reloaded"
                        {
                            use palisade_core::audit::{AuditEntry, AuditSink};
                            let entry = AuditEntry::new("classifier_reload", "watcher", "classifier");
                            audit.record(entry.detail(serde_json::json!({ "from": swap.from, "to": swap.to })));
                        }
                    })?;
                    let candidate = self.watch_classifier_candidate(debounce)?;
                    self.watchers.lock().expect("watchers lock").extend([watcher, candidate]);
                }
                let _ = self.classifier.set(slot.clone());
                Some(slot)
            }
            _ => None,
        };
        Ok(Screener {
            plugins: self.plugins.clone(),
            similarity,
            classifier,
            cascade_band: c.classifier.cascade_band(),
            knn_weight: c.classifier.knn_weight,
            shadows: Some(self.shadows.clone()),
            policy: c.decision_policy(),
            metrics,
            fast_path: c.screening.fast_path,
            campaigns: (c.screening.campaign_min_accounts > 0).then(|| {
                crate::screening::campaign::Campaigns::new(
                    c.redis.target(),
                    &c.redis.key_prefix,
                    Duration::from_secs(c.screening.campaign_window_seconds),
                    c.screening.campaign_min_accounts,
                )
            }),
        })
    }

    /// The screening service's routes over a screener and a backlog (no Redis
    /// needed: tests use this with an in-memory backlog): the synchronous screening
    /// routes, the JSON summary, common and admin routes.
    /// `labels`: where `POST /v1/admin/labels` appends (`None`: it answers 503).
    pub fn screen_router(
        &self,
        screener: Arc<Screener>,
        backlog: Arc<dyn Backlog>,
        labels: Option<LabelStream>,
    ) -> anyhow::Result<Router> {
        let c = &self.config;
        screener.lend_to_plugins();
        let api = Arc::new(ScreenApi {
            screener,
            api_keys: Arc::new(c.server.api_keys.clone()),
            limits: self.limits(),
            body: c.server.body_limits(),
            max_batch_events: c.events.max_batch_events,
            past_text_keys: Arc::new(c.screening.similar_events_text_keys.clone()),
            backlog: backlog.clone(),
            admin_api_keys: Arc::new(c.server.admin_api_keys.clone()),
            labels,
            audit: self.audit.get().map(|a| a.clone() as Arc<dyn palisade_core::audit::AuditSink>),
            control: self.control.get().cloned(),
            backtests: Default::default(),
            history: crate::screening::backtest::History {
                target: c.redis.target(),
                keys: self.keys.clone(),
                timeout: c.redis.timeout(),
            },
        });
        let routes = common_routes(self.state("screening", Some(backlog))).merge(screening::router(api));
        Ok(self.guarded(routes, self.http.for_service("screening")))
    }

    /// The embedding stage from config: the model (a missing or broken model folder
    /// is an error that stops start-up) and the example bank; `None` when
    /// `SCREENING_MODEL=none`.
    pub fn similarity(&self) -> anyhow::Result<Option<Similarity>> {
        let c = &self.config;
        let Some(model) = &c.model.dir else { return Ok(None) };
        let embedder =
            Embedder::load(model, &c.model.ort_dylib_path, c.model.device, c.model.batch_size, &c.model.query_prefix)
                .context("SCREENING_MODEL (set SCREENING_MODEL=none to screen with rules only)")?;
        let (exemplars, bank) = vectors::open(&c.vectors.store(), "exemplars").context("example bank")?;
        if exemplars.is_empty() {
            tracing::warn!(%bank, "the example bank is empty: embedding scores need `palisade bank import`");
        }
        let cache = (c.screening.embedding_cache_ttl > 0).then(|| {
            let prefix = format!("{}{}:", self.keys.embedding_cache, embedder.model_id);
            EmbeddingCache::new(c.redis.target(), prefix, c.screening.embedding_cache_ttl)
        });
        let events = match c.screening.similar_events_k {
            0 => None,
            _ => Some(
                vectors::open_window(&c.vectors.store(), "events", c.screening.similar_events_max)
                    .context("past events")?
                    .0,
            ),
        };
        Ok(Some(Similarity {
            embedder: Arc::new(embedder),
            cache,
            exemplars,
            k: c.screening.similar_k,
            events,
            past_k: c.screening.similar_events_k,
        }))
    }

    /// A service's routes with what every request passes through: JSON 404/405
    /// answers, rate limits, then (outermost) the request context and metrics.
    fn guarded(&self, routes: Router, http: HttpMetrics) -> Router {
        let s = &self.config.server;
        let keys = s.api_keys.iter().chain(&s.admin_api_keys).cloned().collect();
        let limiter = Limiter::new(s.rate_limits(), keys);
        with_error_fallbacks(routes)
            .layer(axum::middleware::from_fn_with_state(limiter, limits::limit))
            .layer(axum::middleware::from_fn_with_state(http, request_context))
    }

    fn limits(&self) -> Limits {
        self.config.events.limits()
    }
}

/// Bring this process to the state another replica's operator change leads to
/// (`streams::control`); a state that already holds is left alone.
fn apply_change(plugins: &PluginHost, classifier: Option<&Arc<Slot>>, change: &Change) {
    let actor = format!("{} (via {})", change.actor, change.origin);
    let name = change.subject.as_str();
    let serving = || plugins.get(name).and_then(|p| p.current()).map(|v| v.id());
    let applied: Result<bool, String> = match change.action {
        Action::PluginDisable | Action::PluginEnable => {
            let enabled = change.action == Action::PluginEnable;
            match plugins.get(name) {
                Some(p) if p.info().enabled != enabled => {
                    plugins.set_enabled_by(name, enabled, &actor).map(|_| true).map_err(|e| e.to_string())
                }
                _ => Ok(false),
            }
        }
        Action::PluginRollback if change.to.is_some() && serving() != change.to => {
            plugins.rollback_by(name, &actor).map(|_| true).map_err(|e| e.to_string())
        }
        Action::PluginRollback => Ok(false),
        Action::ClassifierRollback => match classifier {
            Some(slot) if Some(&slot.get().meta.version) != change.to.as_ref() => slot.rollback().map(|s| s.is_some()),
            _ => Ok(false),
        },
    };
    let action = change.action.as_str();
    match applied {
        Ok(true) => tracing::info!(action, subject = name, from = %change.origin, "applied another replica's change"),
        Ok(false) => {}
        Err(e) => tracing::error!(action, subject = name, from = %change.origin, error = %e,
            "another replica's change could not be applied here"),
    }
}

/// Which services to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Services {
    Ingest,
    Screen,
    All,
}

/// Serve until Ctrl-C or SIGTERM.
pub async fn serve(core: Process, which: Services) -> anyhow::Result<()> {
    let target = core.config.redis.target();
    let conn = palisade_streams::connect_with_retry(&target, Duration::from_secs(10), core.config.redis.timeout())
        .await
        .with_context(|| format!("Redis at {target} (REDIS_URL, REDIS_CLUSTER_NODES)"))?;
    let shards: Vec<&str> = core.keys.shards.iter().map(|s| s.raw.as_str()).collect();
    tracing::info!(redis = %target, ?shards, "event streams");
    let (stop, stopped) = watch::channel(false);
    let mut apps = Vec::new();
    if which != Services::Screen {
        apps.push(("ingest", core.config.server.ingest_addr, core.ingest_app(conn.clone()).await?));
    }
    if which != Services::Ingest {
        apps.push(("screen", core.config.server.screening_addr, core.screen_app(conn, stopped.clone()).await?));
    }
    let limits = core.config.server.listener_limits();
    let mut tasks = Vec::new();
    for (name, addr, app) in apps {
        let listener =
            tokio::net::TcpListener::bind(addr).await.with_context(|| format!("{name}: cannot listen on {addr}"))?;
        tracing::info!(service = name, %addr, "listening");
        tasks.push(tokio::spawn(crate::api::server::serve(listener, app, limits, stopped.clone())));
    }
    shutdown_signal().await;
    let _ = stop.send(true);
    for t in tasks {
        t.await?;
    }
    // The consumer finishes the batch in hand (bounded, so a stuck model cannot hang shutdown).
    let background: Vec<_> = std::mem::take(&mut *core.background.lock().expect("background lock"));
    for task in background {
        if tokio::time::timeout(Duration::from_secs(30), task).await.is_err() {
            tracing::warn!("a background task did not stop within 30 s; its entries stay pending for another consumer");
        }
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
}
