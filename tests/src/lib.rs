//! Helpers for the integration tests in `tests/`: the real plugins that
//! `build.rs` built, installed into throw-away plugin directories; services on
//! real Redis ([`Service`]) or over in-memory storage seams ([`memory`], [`Routers`]);
//! `palisade serve` processes of the built binary ([`ServeProcess`]);
//! Redis servers and clusters of a test's own ([`OwnRedis`], [`OwnCluster`]).

pub mod memory;

use palisade_plugins::install::{cache_dir, install};
use palisade_plugins::{PluginHost, PluginKind, PluginMetrics, PluginVersion, Runtime};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

// GUESTS and foreach_guest!: every guest build.rs built (tests/guests.rs).
include!(concat!(env!("OUT_DIR"), "/guests.rs"));

/// A built guest, loaded from its folder's manifest as a service would load it
/// (its declared kind, limits and grants), then asked about a sample event: a
/// heuristic scores it, a validator checks it, an adapter names its platform.
pub fn guest_answers(family: &str, folder: &str, component: &str) {
    let src = Path::new(env!("PALISADE_PLUGIN_SRC_DIR")).join(family).join(folder).join("plugin.toml");
    let manifest = palisade_plugins::Manifest::parse(&std::fs::read_to_string(&src).unwrap()).unwrap();
    let kind = manifest.kind;
    let wasm = std::fs::read(component).unwrap();
    let runtime = Runtime::new(None).expect("runtime");
    let version = PluginVersion::load(&runtime, manifest, &wasm, false)
        .unwrap_or_else(|e| panic!("{family}/{folder} does not load: {e}"));
    assert_eq!(
        version.kind(),
        kind,
        "{family}/{folder}: the component implements another world than its manifest says"
    );
    let events = palisade_plugins::to_wit(&[palisade_core::Event::sample("hello there, how are you")]);
    match kind {
        PluginKind::Heuristic => {
            let scores = version.score(&events).unwrap_or_else(|e| panic!("{folder}: {e}"));
            assert!(scores.verdicts.iter().all(|v| (0.0..=1.0).contains(&v.score)), "{folder}: {:?}", scores.verdicts);
        }
        PluginKind::Validator => {
            version.validate(&events).unwrap_or_else(|e| panic!("{folder}: {e}"));
        }
        PluginKind::PlatformAdapter => {
            assert!(!version.platform().unwrap_or_else(|e| panic!("{folder}: {e}")).is_empty());
        }
    }
}

/// The built component of a plugin crate (`hate-terms` → `hate_terms.wasm`).
pub fn wasm(crate_name: &str) -> Vec<u8> {
    let path = Path::new(env!("PALISADE_PLUGIN_WASM_DIR")).join(format!("{}.wasm", crate_name.replace('-', "_")));
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (Python and JavaScript plugins are built only when scripts/setup has installed \
             their toolchains: run it)",
            path.display()
        )
    })
}

/// The source manifest of a plugin crate, found under plugins/*/NAME/plugin.toml.
pub fn manifest(crate_name: &str) -> String {
    let src = Path::new(env!("PALISADE_PLUGIN_SRC_DIR"));
    for family in ["heuristics", "validators", "platform-adapters", "testing", "examples"] {
        let path = src.join(family).join(crate_name).join("plugin.toml");
        if let Ok(text) = std::fs::read_to_string(&path) {
            return text;
        }
    }
    panic!("no plugin.toml for {crate_name}")
}

/// Every shipped plugin crate (not the test-only ones).
pub fn shipped() -> Vec<String> {
    let src = Path::new(env!("PALISADE_PLUGIN_SRC_DIR"));
    let mut names = Vec::new();
    for family in ["heuristics", "validators", "platform-adapters"] {
        if let Ok(entries) = std::fs::read_dir(src.join(family)) {
            names.extend(entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()));
        }
    }
    names.sort();
    names
}

/// A temporary plugin directory with its own runtime.
pub struct PluginDir {
    pub dir: tempfile::TempDir,
    pub runtime: Arc<Runtime>,
}

impl PluginDir {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let runtime = Runtime::new(Some(cache_dir(dir.path()))).expect("runtime");
        PluginDir { dir, runtime }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// Install a built plugin with its manifest passed through `edit`.
    pub fn install_with(&self, crate_name: &str, edit: impl FnOnce(String) -> String) -> Arc<PluginVersion> {
        install(&self.runtime, self.dir.path(), &wasm(crate_name), &edit(manifest(crate_name)))
            .unwrap_or_else(|e| panic!("install {crate_name}: {e}"))
    }

    pub fn install(&self, crate_name: &str) -> Arc<PluginVersion> {
        self.install_with(crate_name, |m| m)
    }

    /// Open the directory as a service would (metrics into a fresh registry).
    pub fn open(&self) -> (Arc<PluginHost>, prometheus::Registry) {
        let registry = prometheus::Registry::new();
        let metrics = PluginMetrics::register(&registry).expect("metrics");
        (PluginHost::open(self.runtime.clone(), self.dir.path(), metrics), registry)
    }
}

impl Default for PluginDir {
    fn default() -> Self {
        Self::new()
    }
}

/// Replace `key = …` (first occurrence) in a manifest.
pub fn set_key(manifest: &str, key: &str, value: &str) -> String {
    let mut done = false;
    manifest
        .lines()
        .map(|l| {
            if !done && l.trim_start().starts_with(&format!("{key} ")) {
                done = true;
                format!("{key} = {value}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Both services' routers over in-memory storage (no Redis, no model:
/// `SCREENING_MODEL=none`), for `oneshot` tests of the HTTP layer.
pub struct Routers {
    pub ingest: axum::Router,
    pub screen: axum::Router,
    pub sink: Arc<memory::MemorySink>,
    pub backlog: Arc<memory::FixedBacklog>,
    pub plugins: PluginDir,
}

impl Routers {
    /// With `plugins_to_install` installed and `overrides` applied to the config.
    pub fn new(overrides: &[(&str, &str)], plugins_to_install: &[&str]) -> Routers {
        let plugins = PluginDir::new();
        for p in plugins_to_install {
            plugins.install(p);
        }
        Self::over(plugins, overrides)
    }

    /// Over a plugin directory the test filled itself.
    pub fn over(plugins: PluginDir, overrides: &[(&str, &str)]) -> Routers {
        let mut raw = std::collections::BTreeMap::from([
            ("PLUGIN_DIR".to_string(), plugins.path().display().to_string()),
            ("SCREENING_MODEL".into(), "none".into()),
            ("CLASSIFIER_DIR".into(), "none".into()),
            ("PLUGIN_WATCH".into(), "false".into()),
            ("API_KEYS".into(), "test-key".into()),
            ("ADMIN_API_KEYS".into(), "admin-key".into()),
        ]);
        for (k, v) in overrides {
            raw.insert(k.to_string(), v.to_string());
        }
        let config = palisade::config::Config::from_map(&raw).expect("config");
        let core = palisade::app::Process::start(config).expect("core");
        let sink = Arc::new(memory::MemorySink::default());
        let backlog = Arc::new(memory::FixedBacklog::default());
        let ingest = core.ingest_router(sink.clone(), backlog.clone()).expect("ingest router");
        let screener = Arc::new(core.screener().expect("screener"));
        let screen = core.screen_router(screener, backlog.clone(), None).expect("screen router");
        Routers { ingest, screen, sink, backlog, plugins }
    }
}

/// Send one request through a router; the status and the body as JSON (`Null` when not JSON).
pub async fn oneshot(
    router: &axum::Router,
    request: axum::http::Request<axum::body::Body>,
) -> (u16, serde_json::Value) {
    use tower::ServiceExt;
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap_or_default();
    (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
}

/// A Palisade service on a random local port, over a throw-away plugin directory
/// and a unique Redis key prefix (so tests can share one Redis).
pub struct Service {
    /// The ingestion service's base URL.
    pub base: String,
    /// The screening service's base URL (when started).
    pub screen_base: String,
    /// Set to true to stop the screening consumer.
    pub stop: tokio::sync::watch::Sender<bool>,
    pub keys: palisade_streams::Keys,
    pub redis_url: String,
    pub plugins: PluginDir,
    pub core: Arc<palisade::app::Process>,
}

/// A key prefix no other test uses.
pub fn unique_prefix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("test:{t:x}:{}:{}:", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

impl Service {
    /// The ingestion service with the shipped validator installed; `overrides` are
    /// configuration keys (e.g. `("MAX_QUEUE_DEPTH", "5")`).
    pub async fn ingest(overrides: &[(&str, &str)]) -> Service {
        Self::start(overrides, &["policy"], false).await
    }

    /// Both services (ingestion and screening with its consumer), with the shipped
    /// validator and every shipped heuristic installed.
    pub async fn both(overrides: &[(&str, &str)]) -> Service {
        Self::start(overrides, &shipped().iter().map(String::as_str).collect::<Vec<_>>(), true).await
    }

    async fn start(overrides: &[(&str, &str)], plugins_to_install: &[&str], screen: bool) -> Service {
        let plugins = PluginDir::new();
        for p in plugins_to_install {
            plugins.install(p);
        }
        let (model, lib) = model_files();
        let vectors = plugins.path().join("vectors");
        let mut raw = std::collections::BTreeMap::from([
            ("PLUGIN_DIR".to_string(), plugins.path().display().to_string()),
            ("SCREENING_MODEL".into(), model.display().to_string()),
            ("ORT_DYLIB_PATH".into(), lib.display().to_string()),
            ("VECTOR_DIR".into(), vectors.display().to_string()),
            ("CLASSIFIER_DIR".into(), default_classifier().display().to_string()),
            ("CLASSIFIER_WATCH".into(), "false".into()),
            ("SWAGGER_UI_DIR".into(), repo_root().join("var/swagger-ui").display().to_string()),
            ("PLUGIN_WATCH".into(), "false".into()),
            ("API_KEYS".into(), "test-key".into()),
            ("ADMIN_API_KEYS".into(), "admin-key".into()),
            ("REDIS_KEY_PREFIX".into(), unique_prefix()),
        ]);
        for (k, v) in overrides {
            raw.insert(k.to_string(), v.to_string());
        }
        let config = palisade::config::Config::from_map(&raw).expect("config");
        let (redis_url, target, timeout) = (config.redis.url.clone(), config.redis.target(), config.redis.timeout());
        let core = Arc::new(palisade::app::Process::start(config).expect("core"));
        let conn =
            palisade_streams::connect_with_retry(&target, Duration::from_secs(10), timeout).await.expect("redis");
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let limits = core.config.server.listener_limits();
        let base = serve(core.ingest_app(conn.clone()).await.expect("ingest app"), limits, stopped.clone()).await;
        let screen_base = if screen {
            serve(core.screen_app(conn, stopped.clone()).await.expect("screen app"), limits, stopped).await
        } else {
            String::new()
        };
        Service { base, screen_base, stop, keys: core.keys.clone(), redis_url, plugins, core }
    }

    /// An admin request (key `admin-key`) to the screening service: (status, JSON body or null).
    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut request = reqwest::Client::new()
            .request(method, format!("{}{path}", self.screen_base))
            .header("api-key", "admin-key");
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// Start a backtest job (`POST /v1/admin/backtests`) and wait for it to end; its final view.
    pub async fn backtest_job(&self, body: serde_json::Value) -> serde_json::Value {
        let (status, job) = self.admin(reqwest::Method::POST, "/v1/admin/backtests", Some(body)).await;
        assert_eq!(status, 202, "{job}");
        let path = format!("/v1/admin/backtests/{}", job["id"].as_str().unwrap());
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let (status, view) = self.admin(reqwest::Method::GET, &path, None).await;
            assert_eq!(status, 200, "{view}");
            if view["state"] != "running" {
                assert_eq!(view["state"], "done", "{view}");
                return view;
            }
            assert!(std::time::Instant::now() < deadline, "backtest still running: {view}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `POST /v1/events/ingest-batch` of these events with the test key: the answer.
    pub async fn ingest_batch(&self, events: &[serde_json::Value]) -> reqwest::Response {
        reqwest::Client::new()
            .post(format!("{}/v1/events/ingest-batch", self.base))
            .header("api-key", "test-key")
            .json(&serde_json::json!({ "events": events }))
            .send()
            .await
            .expect("ingest answers")
    }

    /// A direct Redis connection for assertions.
    pub fn redis(&self) -> redis::Connection {
        redis::Client::open(self.redis_url.as_str()).unwrap().get_connection().unwrap()
    }
}

/// A `palisade serve ingest|screen` process of the built binary, configured by
/// its environment alone, killed when dropped; its log in a file of its own.
/// Tests that run one live in the `palisade` package (`host/tests/`), where
/// cargo builds the binary first and names it: `env!("CARGO_BIN_EXE_palisade")`.
pub struct ServeProcess {
    pub base: String,
    child: std::process::Child,
    log: tempfile::NamedTempFile,
}

impl ServeProcess {
    /// Start `palisade serve WHICH` (the binary at `bin`) on a free port with the shipped plugins,
    /// test keys and these variables; wait until `/ready` answers 200.
    pub async fn start(bin: &str, which: &str, plugins: &PluginDir, env: &[(&str, &str)]) -> ServeProcess {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let addr = format!("127.0.0.1:{port}");
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut cmd = std::process::Command::new(bin);
        cmd.args(["serve", which]).stdout(std::process::Stdio::null()).stderr(log.reopen().unwrap());
        cmd.env(if which == "ingest" { "INGEST_ADDR" } else { "SCREENING_ADDR" }, &addr)
            .env("PLUGIN_DIR", plugins.path())
            .env("PLUGIN_WATCH", "false")
            .env("CLASSIFIER_DIR", default_classifier())
            .env("CLASSIFIER_WATCH", "false")
            .env("API_KEYS", "test-key")
            .env("ADMIN_API_KEYS", "admin-key")
            .envs(env.iter().copied());
        let mut process = ServeProcess { base: format!("http://{addr}"), child: cmd.spawn().unwrap(), log };
        let ready = format!("{}/ready", process.base);
        let started = std::time::Instant::now();
        loop {
            if let Ok(r) = reqwest::get(&ready).await
                && r.status() == 200
            {
                return process;
            }
            if let Some(status) = process.child.try_wait().unwrap() {
                panic!("palisade serve {which} exited ({status}): {}", process.log_text());
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "palisade serve {which} not ready: {}",
                process.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// What it logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// Stop it as an orchestrator does (SIGTERM) and wait for it to exit (10 s at
    /// most); its exit status. The log stays readable.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill on PATH");
        let started = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "no exit 10 s after SIGTERM: {}", self.log_text());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stop it hard (SIGKILL), as a crash or the OOM killer would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Serve on a free loopback port through the services' own listener (its limits included).
async fn serve(
    app: axum::Router,
    limits: palisade::api::server::Limits,
    stop: tokio::sync::watch::Receiver<bool>,
) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(palisade::api::server::serve(listener, app, limits, stop));
    base
}

/// One request the stand-in platform received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub at: std::time::Instant,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

type Scripted = (u16, Vec<(String, String)>, String);

/// A local HTTP server standing in for a platform API (Discord, Slack): it records
/// every request and answers from a script, then with `200 {"id": "m-default"}`.
/// The only fake the tests use: the remote platform.
pub struct StandIn {
    pub base: String,
    seen: Arc<std::sync::Mutex<Vec<Seen>>>,
    script: Arc<std::sync::Mutex<std::collections::VecDeque<Scripted>>>,
}

impl StandIn {
    pub async fn start() -> StandIn {
        let seen: Arc<std::sync::Mutex<Vec<Seen>>> = Default::default();
        let script: Arc<std::sync::Mutex<std::collections::VecDeque<Scripted>>> = Default::default();
        let (s, q) = (seen.clone(), script.clone());
        let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
            let (s, q) = (s.clone(), q.clone());
            async move {
                let (parts, body) = request.into_parts();
                let body = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default().to_vec();
                s.lock().unwrap().push(Seen {
                    method: parts.method.to_string(),
                    path: parts.uri.path().to_string(),
                    headers: parts
                        .headers
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                        .collect(),
                    body,
                    at: std::time::Instant::now(),
                });
                let (status, headers, body) =
                    q.lock().unwrap().pop_front().unwrap_or((200, Vec::new(), r#"{"id":"m-default"}"#.into()));
                let mut response = axum::response::Response::new(axum::body::Body::from(body));
                *response.status_mut() = axum::http::StatusCode::from_u16(status).unwrap();
                for (k, v) in headers {
                    response.headers_mut().insert(
                        axum::http::HeaderName::try_from(k).unwrap(),
                        axum::http::HeaderValue::try_from(v).unwrap(),
                    );
                }
                response
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        StandIn { base, seen, script }
    }

    /// Queue an answer (status, headers, body) for the next request.
    pub fn answer(&self, status: u16, headers: &[(&str, &str)], body: &str) {
        let headers = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self.script.lock().unwrap().push_back((status, headers, body.to_string()));
    }

    /// Every request received so far (and forget them).
    pub fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

/// A `redis-server` of the test's own on a spare port (for fault tests), with AOF on.
pub struct OwnRedis {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Option<std::process::Child>,
}

impl OwnRedis {
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut r = OwnRedis { port, dir: tempfile::tempdir().unwrap(), child: None };
        r.restart();
        r
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Start (again) on the same port and data directory.
    pub fn restart(&mut self) {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes"])
            .args(["--appendfsync", "always", "--dir", &self.dir.path().display().to_string()])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server on PATH");
        self.child = Some(child);
        let url = self.url();
        wait_until(
            Duration::from_secs(10),
            || redis::Client::open(url.as_str()).unwrap().get_connection().is_ok(),
            "redis-server to start",
        );
    }

    /// Freeze it (SIGSTOP): connections stay open, nothing is answered — a hung Redis.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Thaw it (SIGCONT): it runs what was sent meanwhile.
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, which: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let ok = std::process::Command::new("kill").args([which, &pid]).status().expect("kill on PATH").success();
        assert!(ok, "kill {which} {pid}");
    }

    /// Stop it hard (SIGKILL): only what AOF already has survives.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A Redis Cluster of the test's own on spare ports: `masters` masters with
/// `replicas` replicas each (`redis-cli --cluster create`; a second node timeout,
/// so a failover takes ~2 s), no persistence.
pub struct OwnCluster {
    pub ports: Vec<u16>,
    _dir: tempfile::TempDir,
    /// One per port; `None` once killed.
    children: std::sync::Mutex<Vec<Option<std::process::Child>>>,
}

impl OwnCluster {
    pub fn start(masters: usize, replicas: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ports = cluster_ports(masters * (1 + replicas));
        let children = ports
            .iter()
            .map(|port| {
                let child = std::process::Command::new("redis-server")
                    .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                    .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "1000"])
                    // A replica's first sync starts at once, not after the default 5 s.
                    .args(["--repl-diskless-sync-delay", "0"])
                    .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
                    .args(["--dir", &dir.path().display().to_string()])
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .expect("redis-server on PATH");
                Some(child)
            })
            .collect();
        let cluster = OwnCluster { ports, _dir: dir, children: std::sync::Mutex::new(children) };
        for port in &cluster.ports {
            wait_until(Duration::from_secs(10), || cluster.node(*port).is_ok(), "a cluster node to start");
        }
        let created = std::process::Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(cluster.ports.iter().map(|p| format!("127.0.0.1:{p}")))
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .stdout(std::process::Stdio::null())
            .status()
            .expect("redis-cli on PATH");
        assert!(created.success(), "redis-cli --cluster create failed");
        cluster.wait_ok();
        // `cluster_state:ok` comes before the replicas' first sync: a master killed
        // then has no copy to fail over to. Wait for every replica's link.
        wait_until(
            Duration::from_secs(30),
            || cluster.replicas_in_sync() == masters * replicas,
            "every replica's first sync",
        );
        cluster
    }

    /// Replicas whose link to their master is up, their first sync done.
    fn replicas_in_sync(&self) -> usize {
        let synced = ["role:slave", "master_link_status:up", "master_sync_in_progress:0"];
        self.running()
            .filter(|p| self.info(*p, &["INFO", "replication"]).is_some_and(|i| synced.iter().all(|s| i.contains(s))))
            .count()
    }

    /// A node's answer to an `INFO`-like command (`None` if it does not answer).
    fn info(&self, port: u16, command: &[&str]) -> Option<String> {
        self.node(port).and_then(|mut n| redis::cmd(command[0]).arg(&command[1..]).query(&mut n)).ok()
    }

    /// `REDIS_CLUSTER_NODES` for it.
    pub fn nodes(&self) -> String {
        self.ports.iter().map(|p| format!("127.0.0.1:{p}")).collect::<Vec<_>>().join(",")
    }

    /// A cluster connection for assertions.
    pub fn conn(&self) -> redis::cluster::ClusterConnection {
        let nodes: Vec<String> = self.running().map(|p| format!("redis://127.0.0.1:{p}")).collect();
        redis::cluster::ClusterClient::new(nodes).unwrap().get_connection().unwrap()
    }

    /// A plain connection to one node.
    pub fn node(&self, port: u16) -> redis::RedisResult<redis::Connection> {
        redis::Client::open(format!("redis://127.0.0.1:{port}"))?.get_connection_with_timeout(Duration::from_secs(1))
    }

    /// The port of the master serving `key` now.
    pub fn master_of(&self, key: &str) -> u16 {
        self.master_of_slot(palisade_streams::slot(key))
    }

    /// The port of the master serving `slot` now.
    pub fn master_of_slot(&self, slot: u16) -> u16 {
        let port = self.running().next().expect("a node runs");
        let mut node = self.node(port).unwrap();
        // CLUSTER SLOTS: [[start, end, [ip, port, id], replicas…], …]
        let ranges: Vec<(u16, u16, (String, u16))> = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query::<Vec<redis::Value>>(&mut node)
            .unwrap()
            .into_iter()
            .map(|r| {
                let r: Vec<redis::Value> = redis::from_redis_value(r).unwrap();
                let master: Vec<redis::Value> = redis::from_redis_value(r[2].clone()).unwrap();
                let (ip, port) = (
                    redis::from_redis_value(master[0].clone()).unwrap(),
                    redis::from_redis_value(master[1].clone()).unwrap(),
                );
                (
                    redis::from_redis_value(r[0].clone()).unwrap(),
                    redis::from_redis_value(r[1].clone()).unwrap(),
                    (ip, port),
                )
            })
            .collect();
        ranges.iter().find(|(start, end, _)| (*start..=*end).contains(&slot)).expect("slot served").2.1
    }

    /// Move `slot` to the master on port `to` while clients keep using it, the
    /// way `redis-cli --cluster reshard` does: IMPORTING on `to`, MIGRATING on
    /// its master, `MIGRATE` `keys_per_step` keys at a time with `pause` between
    /// (clients meet `ASK` and `TRYAGAIN` meanwhile), then `SETSLOT … NODE` on
    /// every master (`MOVED` from then on). Answers how many keys moved.
    pub fn move_slot(&self, slot: u16, to: u16, keys_per_step: usize, pause: Duration) -> usize {
        let from = self.master_of_slot(slot);
        assert_ne!(from, to, "slot {slot} is on {to} already");
        let id =
            |port: u16| -> String { redis::cmd("CLUSTER").arg("MYID").query(&mut self.node(port).unwrap()).unwrap() };
        let (from_id, to_id) = (id(from), id(to));
        let (mut source, mut target) = (self.node(from).unwrap(), self.node(to).unwrap());
        let setslot = |conn: &mut redis::Connection, state: &str, node: &str| {
            redis::cmd("CLUSTER").arg("SETSLOT").arg(slot).arg(state).arg(node).query::<()>(conn).unwrap()
        };
        setslot(&mut target, "IMPORTING", &from_id);
        setslot(&mut source, "MIGRATING", &to_id);
        let mut moved = 0;
        loop {
            let keys: Vec<String> =
                redis::cmd("CLUSTER").arg("GETKEYSINSLOT").arg(slot).arg(keys_per_step).query(&mut source).unwrap();
            if keys.is_empty() {
                break;
            }
            redis::cmd("MIGRATE")
                .arg("127.0.0.1")
                .arg(to)
                .arg("")
                .arg(0)
                .arg(5000)
                .arg("KEYS")
                .arg(&keys)
                .query::<()>(&mut source)
                .unwrap();
            moved += keys.len();
            std::thread::sleep(pause);
        }
        // The new owner first, then the old one, then the rest (as redis-cli does).
        setslot(&mut target, "NODE", &to_id);
        setslot(&mut source, "NODE", &to_id);
        for port in self.running().filter(|p| ![from, to].contains(p)) {
            // A replica answers with an error; its master's gossip tells it.
            let _ = self.node(port).map(|mut n| {
                redis::cmd("CLUSTER").arg("SETSLOT").arg(slot).arg("NODE").arg(&to_id).query::<()>(&mut n)
            });
        }
        moved
    }

    /// Stop one node hard (SIGKILL).
    pub fn kill(&self, port: u16) {
        let at = self.ports.iter().position(|&p| p == port).expect("a node of this cluster");
        if let Some(mut c) = self.children.lock().unwrap()[at].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Wait until every running node reports `cluster_state:ok` (after a failover too).
    pub fn wait_ok(&self) {
        wait_until(
            Duration::from_secs(20),
            || {
                self.running()
                    .all(|p| self.info(p, &["CLUSTER", "INFO"]).is_some_and(|i| i.contains("cluster_state:ok")))
            },
            "the cluster to report cluster_state:ok",
        );
    }

    /// The ports of the nodes not killed.
    fn running(&self) -> impl Iterator<Item = u16> {
        let children = self.children.lock().unwrap();
        let up: Vec<u16> =
            self.ports.iter().zip(children.iter()).filter(|(_, c)| c.is_some()).map(|(p, _)| *p).collect();
        up.into_iter()
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        for port in self.ports.clone() {
            self.kill(port);
        }
    }
}

/// `n` free ports whose cluster bus ports (+10000) are free too.
fn cluster_ports(n: usize) -> Vec<u16> {
    use std::sync::atomic::{AtomicU16, Ordering};
    // Two clusters of one test binary never look at the same ports.
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
    let start = 20_000 + (std::process::id() % 200) as u16 * 40 + NEXT.fetch_add(20, Ordering::Relaxed);
    let ports: Vec<u16> = (start..start + 20).filter(|&p| free(p) && free(p + 10_000)).take(n).collect();
    assert_eq!(ports.len(), n, "{n} free ports from {start}");
    ports
}

/// Poll `done` every 20 ms until it holds; panic naming `what` after `limit`.
pub fn wait_until(limit: Duration, mut done: impl FnMut() -> bool, what: &str) {
    let started = std::time::Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("PALISADE_PLUGIN_SRC_DIR")).parent().expect("root").to_path_buf()
}

/// The default model folder and ONNX Runtime library that `scripts/setup` fetched.
pub fn model_files() -> (PathBuf, PathBuf) {
    let root = repo_root();
    let model = root.join("var/models/all-MiniLM-L6-v2");
    let lib = root.join("var/onnxruntime/libonnxruntime.so.1.32.0");
    assert!(
        model.join("model.onnx").is_file() && lib.is_file(),
        "run scripts/setup first: model files missing under var/"
    );
    (model, lib)
}

/// The toxicity side model `scripts/setup` converted from the tox-block wheel.
pub fn toxicity_model() -> PathBuf {
    let path = repo_root().join("var/models/tox-block/tox-block.bin");
    assert!(path.is_file(), "run scripts/setup first: no toxicity side model at {}", path.display());
    path
}

/// The default classifier `scripts/setup` trained (`var/classifier`).
pub fn default_classifier() -> PathBuf {
    let dir = repo_root().join("var/classifier");
    assert!(dir.join("classifier.json").is_file(), "run scripts/setup first: no classifier at {}", dir.display());
    dir
}

/// A labelled data set the repository carries (`data/NAME`).
pub fn repo_data(name: &str) -> PathBuf {
    repo_root().join("data").join(name)
}

/// A deterministic fold of a row id (FNV-1a), as `palisade eval` uses.
pub fn fold_of(id: &str, folds: u64) -> u64 {
    id.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100000001b3)) % folds
}

/// A vector directory holding an example bank of these `(id, label, text)` rows.
pub fn bank(rows: &[(&str, &str, &str)]) -> tempfile::TempDir {
    use palisade_detect::vectors::bank::{Labelled, import};
    let dir = tempfile::tempdir().unwrap();
    let (model, lib) = model_files();
    let embedder =
        palisade_detect::embed::Embedder::load(&model, &lib, palisade_detect::embed::Device::Cpu, 32, "").unwrap();
    let store = palisade_detect::vectors::flat::FlatStore::open(&dir.path().join("exemplars.vec")).unwrap();
    let rows = rows.iter().map(|(id, label, text)| Labelled {
        id: id.to_string(),
        label: label.to_string(),
        text: text.to_string(),
        source: String::new(),
    });
    import(&embedder, &store, rows.collect()).unwrap();
    dir
}
