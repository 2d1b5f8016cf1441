//! Assembling a running Palisade: the plugin runtime and directory (with its
//! watcher), the metrics registry, Redis, and the HTTP services on their addresses.

use crate::api::{AppState, HttpMetrics, common_routes, request_context};
use crate::config::Config;
use crate::core::schema::Limits;
use crate::embed::Embedder;
use crate::embed::cache::EmbeddingCache;
use crate::ingest::metrics::IngestMetrics;
use crate::ingest::{self, Ingest};
use crate::platforms::metrics::AdapterMetrics;
use crate::platforms::sender::Sender;
use crate::platforms::{self, Platforms};
use crate::plugins::watcher::{DirWatcher, watch};
use crate::plugins::{PluginHost, PluginMetrics, Runtime};
use crate::screening::consumer::Consumer;
use crate::screening::predict::Weights;
use crate::screening::{self, ScreenApi, ScreenMetrics, Screener, Similarity};
use crate::streams::depth::Depth;
use crate::streams::producer::Producer;
use crate::streams::{self, Backlog, EventSink, Keys};
use crate::vectors;
use anyhow::Context;
use axum::Router;
use redis::aio::ConnectionManager;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The parts every service shares within one process.
pub struct Core {
    pub config: Config,
    pub keys: Keys,
    pub plugins: Arc<PluginHost>,
    pub registry: prometheus::Registry,
    /// The HTTP metric families both services count into.
    http: HttpMetrics,
    /// Tasks to wait for on shutdown (the screening consumer finishing its batch).
    background: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    _watcher: Option<DirWatcher>,
}

impl Core {
    pub fn start(config: Config) -> anyhow::Result<Self> {
        let registry = prometheus::Registry::new();
        let metrics = PluginMetrics::register(&registry)?;
        let runtime = Runtime::new(Some(config.plugin_cache_dir.clone()))?;
        std::fs::create_dir_all(&config.plugin_dir)
            .with_context(|| format!("PLUGIN_DIR {} cannot be created", config.plugin_dir.display()))?;
        let plugins = PluginHost::open(runtime, &config.plugin_dir, metrics);
        let watcher = if config.plugin_watch {
            Some(watch(plugins.clone(), Duration::from_millis(config.plugin_watch_debounce_ms))?)
        } else {
            None
        };
        Ok(Core {
            http: HttpMetrics::register(&registry)?,
            keys: Keys::new(&config.redis_key_prefix),
            config,
            plugins,
            registry,
            background: Default::default(),
            _watcher: watcher,
        })
    }

    fn state(&self, service: &'static str, depth: Option<Arc<dyn Backlog>>) -> AppState {
        AppState {
            service,
            plugins: self.plugins.clone(),
            registry: self.registry.clone(),
            admin_api_keys: Arc::new(self.config.admin_api_keys.clone()),
            depth,
            swagger_ui_dir: Arc::new(self.config.swagger_ui_dir.clone()),
        }
    }

    /// The ingestion service (`:8001`) on Redis: starts the producer and the
    /// backlog watcher, then [`Core::ingest_router`]. Must run inside a Tokio runtime.
    pub async fn ingest_app(&self, conn: ConnectionManager) -> anyhow::Result<Router> {
        let c = &self.config;
        let depth = Depth::new(&self.keys.raw);
        depth.refresh(&mut conn.clone()).await;
        depth.watch(conn.clone(), Duration::from_millis(200));
        let producer = Producer::start(
            conn,
            &self.keys.raw,
            c.dedup_window_seconds,
            c.batch_size,
            Duration::from_millis(c.batch_timeout_ms),
        );
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
            Duration::from_millis(c.outbound_timeout_ms),
            c.outbound_max_attempts,
            Duration::from_millis(c.outbound_max_wait_ms),
            Duration::from_millis(c.outbound_backoff_ms),
            adapter_metrics.clone(),
        )?;
        let api_keys = Arc::new(c.api_keys.clone());
        let ingest = Arc::new(Ingest {
            sink,
            dedup_prefix: self.keys.dedup.clone(),
            backlog: backlog.clone(),
            metrics: IngestMetrics::register(&self.registry, http.clone())?,
            plugins: self.plugins.clone(),
            limits: self.limits(),
            api_keys: api_keys.clone(),
            max_batch_events: c.max_batch_events,
            max_body_bytes: c.max_body_bytes,
            backpressure_at: c
                .backpressure_enabled
                .then(|| ((c.max_queue_depth as f64) * c.backpressure_threshold).ceil() as u64),
        });
        let platforms = Arc::new(Platforms {
            intake: ingest.clone(),
            plugins: self.plugins.clone(),
            sender,
            metrics: adapter_metrics,
            api_keys,
            prepost_threshold: c.prepost_screening.then_some(c.screening_threshold),
        });
        Ok(common_routes(self.state("ingest", Some(backlog)))
            .merge(ingest::router(ingest))
            .merge(platforms::router(platforms))
            .layer(axum::middleware::from_fn_with_state(http, request_context)))
    }

    /// The screening service (`:8002`) on Redis: the `events:raw` consumer
    /// (started here, stopped when `shutdown` turns true), then
    /// [`Core::screen_router`]. Must run inside a Tokio runtime.
    pub async fn screen_app(&self, conn: ConnectionManager, shutdown: watch::Receiver<bool>) -> anyhow::Result<Router> {
        // The consumer's blocking reads get a connection of their own: a blocked
        // connection holds every command queued behind it.
        let consumer_conn = streams::connect_with_retry(&self.config.redis_url, Duration::from_secs(10)).await?;
        let c = &self.config;
        let screener = Arc::new(self.screener()?);
        let depth = Depth::new(&self.keys.raw);
        depth.refresh(&mut conn.clone()).await;
        depth.watch(conn.clone(), Duration::from_millis(500));
        let consumer = Consumer {
            conn: consumer_conn,
            keys: self.keys.clone(),
            name: c.consumer_name.clone(),
            screener: screener.clone(),
            batch_size: c.batch_size,
            max_deliveries: c.max_deliveries,
            claim_idle: Duration::from_millis(c.claim_idle_ms),
        };
        self.background.lock().expect("background lock").push(tokio::spawn(consumer.run(shutdown)));
        self.screen_router(screener, depth)
    }

    /// Every screening stage from config (the model and banks when configured).
    pub fn screener(&self) -> anyhow::Result<Screener> {
        let c = &self.config;
        Ok(Screener {
            plugins: self.plugins.clone(),
            similarity: self.similarity()?,
            weights: Weights { rules: c.rule_weight, embedding: c.embedding_weight, threshold: c.screening_threshold },
            metrics: ScreenMetrics::register(&self.registry)?,
            fast_path: c.screening_fast_path,
        })
    }

    /// The screening service's routes over a screener and a backlog (no Redis
    /// needed: tests use this with an in-memory backlog): the synchronous screening
    /// routes, the JSON summary, common and admin routes.
    pub fn screen_router(&self, screener: Arc<Screener>, backlog: Arc<dyn Backlog>) -> anyhow::Result<Router> {
        let c = &self.config;
        let api = Arc::new(ScreenApi {
            screener,
            api_keys: Arc::new(c.api_keys.clone()),
            limits: self.limits(),
            max_body_bytes: c.max_body_bytes,
            max_batch_events: c.max_batch_events,
            backlog: backlog.clone(),
        });
        Ok(common_routes(self.state("screening", Some(backlog)))
            .merge(screening::router(api))
            .layer(axum::middleware::from_fn_with_state(self.http.for_service("screening"), request_context)))
    }

    /// The embedding stage from config: the model (a missing or broken model folder
    /// is an error that stops start-up) and the example bank; `None` when
    /// `SCREENING_MODEL=none`.
    pub fn similarity(&self) -> anyhow::Result<Option<Similarity>> {
        let c = &self.config;
        let Some(model) = &c.screening_model else { return Ok(None) };
        let embedder = Embedder::load(model, &c.ort_dylib_path, c.device, c.model_batch_size, &c.model_query_prefix)
            .context("SCREENING_MODEL (set SCREENING_MODEL=none to screen with rules only)")?;
        let (exemplars, bank) = vectors::open(&c.vectors(), "exemplars").context("example bank")?;
        if exemplars.is_empty() {
            tracing::warn!(%bank, "the example bank is empty: embedding scores need `palisade bank import`");
        }
        let cache = (c.embedding_cache_ttl > 0)
            .then(|| {
                let prefix = format!("{}{}:", self.keys.embedding_cache, embedder.model_id);
                EmbeddingCache::new(&c.redis_url, prefix, c.embedding_cache_ttl)
            })
            .transpose()
            .context("REDIS_URL")?;
        let events = match c.similar_events_k {
            0 => None,
            _ => Some(vectors::open_window(&c.vectors(), "events", c.similar_events_max).context("past events")?.0),
        };
        Ok(Some(Similarity {
            embedder: Arc::new(embedder),
            cache,
            exemplars,
            k: c.similar_k,
            events,
            past_k: c.similar_events_k,
        }))
    }

    fn limits(&self) -> Limits {
        Limits {
            min_content_length: self.config.min_content_length,
            max_content_length: self.config.max_content_length,
            require_author: self.config.require_author,
        }
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
pub async fn serve(core: Core, which: Services) -> anyhow::Result<()> {
    let conn = streams::connect_with_retry(&core.config.redis_url, Duration::from_secs(10))
        .await
        .with_context(|| format!("REDIS_URL {}", core.config.redis_url))?;
    let (stop, stopped) = watch::channel(false);
    let mut apps = Vec::new();
    if which != Services::Screen {
        apps.push(("ingest", core.config.ingest_addr, core.ingest_app(conn.clone()).await?));
    }
    if which != Services::Ingest {
        apps.push(("screen", core.config.screening_addr, core.screen_app(conn, stopped.clone()).await?));
    }
    let mut tasks = Vec::new();
    for (name, addr, app) in apps {
        let listener =
            tokio::net::TcpListener::bind(addr).await.with_context(|| format!("{name}: cannot listen on {addr}"))?;
        tracing::info!(service = name, %addr, "listening");
        let mut stopped = stopped.clone();
        let until_stopped = async move { while stopped.changed().await.is_ok() && !*stopped.borrow() {} };
        tasks.push(tokio::spawn(async move { axum::serve(listener, app).with_graceful_shutdown(until_stopped).await }));
    }
    shutdown_signal().await;
    let _ = stop.send(true);
    for t in tasks {
        t.await??;
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
