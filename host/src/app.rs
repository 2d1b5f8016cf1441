//! Assembling a running Palisade: the plugin runtime and directory (with its
//! watcher), the metrics registry, and the HTTP services on their addresses.

use crate::api::{AppState, common_routes};
use crate::config::Config;
use crate::plugins::watcher::{DirWatcher, watch};
use crate::plugins::{PluginHost, PluginMetrics, Runtime};
use anyhow::Context;
use std::sync::Arc;
use std::time::Duration;

/// The parts every service shares within one process.
pub struct Core {
    pub config: Config,
    pub plugins: Arc<PluginHost>,
    pub registry: prometheus::Registry,
    _watcher: Option<DirWatcher>,
}

impl Core {
    pub fn start(config: Config) -> anyhow::Result<Self> {
        let registry = prometheus::Registry::new();
        let metrics = PluginMetrics::register(&registry)?;
        let runtime = Runtime::new(Some(config.plugin_cache_dir.clone()))?;
        std::fs::create_dir_all(&config.plugin_dir).with_context(|| {
            format!(
                "PLUGIN_DIR {} cannot be created",
                config.plugin_dir.display()
            )
        })?;
        let plugins = PluginHost::open(runtime, &config.plugin_dir, metrics);
        let watcher = if config.plugin_watch {
            Some(watch(
                plugins.clone(),
                Duration::from_millis(config.plugin_watch_debounce_ms),
            )?)
        } else {
            None
        };
        Ok(Core {
            config,
            plugins,
            registry,
            _watcher: watcher,
        })
    }

    pub fn state(&self, service: &'static str) -> AppState {
        AppState {
            service,
            plugins: self.plugins.clone(),
            registry: self.registry.clone(),
            api_keys: Arc::new(self.config.api_keys.clone()),
            admin_api_keys: Arc::new(self.config.admin_api_keys.clone()),
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
    let mut tasks = Vec::new();
    let mut spawn = |name: &'static str, addr: std::net::SocketAddr| {
        let app = common_routes(core.state(name));
        tasks.push(tokio::spawn(async move {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("{name}: cannot listen on {addr}"))?;
            tracing::info!(service = name, %addr, "listening");
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown())
                .await
                .context(name)
        }));
    };
    if which != Services::Screen {
        spawn("ingest", core.config.ingest_addr);
    }
    if which != Services::Ingest {
        spawn("screen", core.config.screening_addr);
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
}
