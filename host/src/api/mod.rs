//! HTTP plumbing shared by both services: API-key checks as a route layer
//! (`auth`), the request context (id, metrics, access log), body reading,
//! health/readiness/metrics/docs routes, and the admin routes (`admin.rs`).
//! Service-specific routes live with their service; this module holds no
//! business logic and touches no Redis (readiness reads a [`Backlog`]).

pub mod admin;
pub mod auth;
pub mod limits;
pub mod server;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use palisade_core::{ApiError, BodyLimits, ErrorCode};
use palisade_plugins::{PluginHost, PluginState};
use palisade_streams::Backlog;
use serde_json::{Value, json};
use std::sync::Arc;

/// Shared by every route of a service.
#[derive(Clone)]
pub struct AppState {
    pub service: &'static str,
    pub plugins: Arc<PluginHost>,
    pub registry: prometheus::Registry,
    pub gauges: palisade_core::telemetry::gauges::Gauges,
    /// Panics caught in this process (`/ready` reports them).
    pub faults: palisade_core::telemetry::faults::Faults,
    /// The audit trail, where the service has Redis (`None`: `/v1/admin/audit` answers 503).
    pub audit: Option<Arc<palisade_streams::audit::AuditStream>>,
    /// Where operators' changes are published for the other replicas (`None`: no Redis).
    pub control: Option<Arc<palisade_streams::control::ControlStream>>,
    pub admin_api_keys: Arc<Vec<String>>,
    /// Entity labels (`/v1/labels`; `None`: 503).
    pub entity_labels: Option<Arc<crate::entity_labels::LabelStore>>,
    /// Request body limits (`MAX_BODY_BYTES`, `BODY_TIMEOUT_MS`).
    pub body: palisade_core::BodyLimits,
    /// Redis reachability, for services that need Redis to be ready.
    pub depth: Option<Arc<dyn Backlog>>,
    /// Where Swagger UI's assets are (`SWAGGER_UI_DIR`).
    pub swagger_ui_dir: Arc<std::path::PathBuf>,
}

/// The request's id: the client's `x-request-id`, or one made here; echoed back.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

fn new_request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64);
    format!("{t:x}-{:x}-{:x}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// HTTP metrics, both services in one family each:
/// `palisade_http_requests_total{service,route,status}` and
/// `palisade_http_request_duration_seconds{service,route}` (route = the template).
#[derive(Clone)]
pub struct HttpMetrics {
    requests: prometheus::IntCounterVec,
    latency: prometheus::HistogramVec,
    service: &'static str,
}

impl HttpMetrics {
    /// The families, registered once per registry (both services share them).
    pub fn register(registry: &prometheus::Registry) -> prometheus::Result<Self> {
        use palisade_core::telemetry::names::*;
        let requests = prometheus::IntCounterVec::new(
            prometheus::Opts::new(HTTP_REQUESTS, "HTTP requests by service, route and status."),
            &[SERVICE, ROUTE, STATUS],
        )?;
        let latency = prometheus::HistogramVec::new(
            prometheus::HistogramOpts::new(HTTP_REQUEST_DURATION, "HTTP request latency by service and route.")
                .buckets(vec![1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2e-2, 5e-2, 0.1, 0.25, 0.5, 1.0, 2.5]),
            &[SERVICE, ROUTE],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        Ok(HttpMetrics { requests, latency, service: "" })
    }

    /// The same families, counting for `service`.
    pub fn for_service(&self, service: &'static str) -> Self {
        HttpMetrics { service, ..self.clone() }
    }

    fn observe(&self, route: &str, status: u16, seconds: f64) {
        self.requests.with_label_values(&[self.service, route, &status.to_string()]).inc();
        self.latency.with_label_values(&[self.service, route]).observe(seconds);
    }

    /// This service's latency histogram for one route.
    pub fn latency(&self, route: &str) -> prometheus::Histogram {
        self.latency.with_label_values(&[self.service, route])
    }
}

/// Request id in and out, route metrics, a trace span, and one JSON log line per request
/// (id, route, status, latency; never the body or keys).
pub async fn request_context(
    State(metrics): State<HttpMetrics>,
    matched: Option<axum::extract::MatchedPath>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let started = std::time::Instant::now();
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map_or_else(new_request_id, String::from);
    req.extensions_mut().insert(RequestId(id.clone()));
    let route = matched.as_ref().map_or("unmatched", |m| m.as_str()).to_string();
    let method = req.method().clone();
    // A server span per request (traces on), the child of the caller's `traceparent`.
    let span = palisade_core::span!("http.request", otel.name = %format_args!("{method} {route}"), otel.kind = "server",
        http.request.method = %method, http.route = %route, http.response.status_code = tracing::field::Empty,
        request_id = %id);
    if let Some(parent) = req.headers().get("traceparent").and_then(|v| v.to_str().ok()) {
        palisade_core::telemetry::traces::set_parent(&span, parent);
    }
    let mut response = match head_too_large(&req) {
        Some(refusal) => refusal.into_response(),
        None => tracing::Instrument::instrument(next.run(req), span.clone()).await,
    };
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    span.record("http.response.status_code", status);
    metrics.observe(&route, status, elapsed.as_secs_f64());
    let latency_ms = elapsed.as_secs_f64() * 1e3;
    if matches!(status, 401 | 429) {
        // A key-guessing flood must not flood the log: one line per 10 s, with a count.
        static REFUSALS: std::sync::LazyLock<palisade_core::telemetry::Sampled> =
            std::sync::LazyLock::new(|| palisade_core::telemetry::Sampled::new(std::time::Duration::from_secs(10)));
        REFUSALS.log(|skipped| {
            tracing::info!(target: "access", request_id = %id, %method, route, status, latency_ms, refusals_not_logged = skipped);
        });
    } else {
        tracing::info!(target: "access", request_id = %id, %method, route, status, latency_ms);
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

/// Longest request target (path and query) answered; longer gets 414.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Most header bytes (names and values) and header lines answered; more gets 431.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
pub const MAX_HEADERS: usize = 64;

/// 414 or 431 with the JSON error body, for heads past the limits above (hyper
/// itself refuses only heads past its ~400 KB buffer, without a body).
fn head_too_large(req: &axum::extract::Request) -> Option<ApiError> {
    let uri = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if uri > MAX_URI_BYTES {
        return Some(ApiError::new(
            StatusCode::URI_TOO_LONG,
            ErrorCode::UriTooLong,
            format!("the request target is {uri} bytes; at most {MAX_URI_BYTES}"),
        ));
    }
    let headers = req.headers();
    let bytes: usize = headers.iter().map(|(k, v)| k.as_str().len() + v.len()).sum();
    (bytes > MAX_HEADER_BYTES || headers.len() > MAX_HEADERS).then(|| {
        ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ErrorCode::HeadersTooLarge,
            format!(
                "{} headers, {bytes} bytes; at most {MAX_HEADERS} headers and {MAX_HEADER_BYTES} bytes",
                headers.len()
            ),
        )
    })
}

/// The JSON error answers for paths no route has (404) and methods a route does
/// not take (405, with `Allow` as axum sets it).
pub fn with_error_fallbacks(router: Router) -> Router {
    router
        .layer(axum::middleware::map_response(json_refusals))
        .fallback(|uri: axum::http::Uri| async move {
            ApiError::new(
                StatusCode::NOT_FOUND,
                ErrorCode::NotFound,
                format!("no route {}; see /openapi.json", uri.path()),
            )
        })
        .method_not_allowed_fallback(|method: axum::http::Method, uri: axum::http::Uri| async move {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                ErrorCode::MethodNotAllowed,
                format!("{} does not take {method}; see /openapi.json", uri.path()),
            )
        })
}

/// Count every refusal (a 4xx error answer) of the routes it wraps by its code,
/// once, here. Not counted: `unauthorized` (a key problem, not a bad request) and
/// `validation_failed` (its events are counted one by one, by their field's
/// code, where they are checked).
pub async fn count_refusals(
    axum::extract::State(counter): axum::extract::State<prometheus::IntCounterVec>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let response = next.run(request).await;
    if let Some(code) = response.extensions().get::<ErrorCode>()
        && response.status().is_client_error()
        && !matches!(code, ErrorCode::Unauthorized | ErrorCode::ValidationFailed)
    {
        counter.with_label_values(&[code.as_str()]).inc();
    }
    response
}

/// A refusal that is not JSON yet (an axum extractor's plain-text rejection: a
/// path segment that is not UTF-8, a query string that does not parse) gets the
/// JSON error body every other refusal has, with a code from its status.
async fn json_refusals(response: Response) -> Response {
    let status = response.status();
    let json =
        response.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let code = match status {
        StatusCode::BAD_REQUEST => ErrorCode::BadRequest,
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::BodyTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
        StatusCode::UNPROCESSABLE_ENTITY => ErrorCode::Unprocessable,
        s if s.is_server_error() => ErrorCode::InternalError,
        _ => ErrorCode::Refused,
    };
    let message = String::from_utf8_lossy(&text).trim().to_string();
    let mut answer = ApiError::new(status, code, if message.is_empty() { code.as_str().to_string() } else { message })
        .into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            answer.headers_mut().insert(name, value.clone());
        }
    }
    answer
}

/// What a request body may be besides JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    Json,
    /// JSON or `application/x-www-form-urlencoded` (the seed's screening form).
    JsonOrForm,
}

/// What a service's body-reading routes take: JSON only, or JSON and forms, and
/// how much of a body they read ([`Checked`] asks).
pub trait ReadsBody: Send + Sync {
    fn accepts(&self) -> Accept;
    fn body_limits(&self) -> BodyLimits;
}

/// A request past the common checks (content type, size; the key was checked by
/// the route layer), with its request id: the extractor every body-reading route
/// of the event and screening APIs takes.
pub struct Checked {
    pub request_id: String,
    pub bytes: axum::body::Bytes,
    /// A form body (`application/x-www-form-urlencoded`), where the service takes one.
    pub form: bool,
}

impl<S: ReadsBody + 'static> axum::extract::FromRequest<std::sync::Arc<S>> for Checked {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, s: &std::sync::Arc<S>) -> Result<Self, ApiError> {
        let request_id = req.extensions().get::<RequestId>().map(|r| r.0.clone()).unwrap_or_default();
        let (parts, body) = req.into_parts();
        let CheckedBody { bytes, form } = read_body(&parts.headers, body, s.accepts(), s.body_limits()).await?;
        Ok(Checked { request_id, bytes, form })
    }
}

/// A request body read past the common checks, in order: content type (415),
/// size (413). (The key was checked by the route layer before.) `form` tells a
/// form body from JSON.
pub struct CheckedBody {
    pub bytes: axum::body::Bytes,
    pub form: bool,
}

pub async fn read_body(
    headers: &HeaderMap,
    body: axum::body::Body,
    accept: Accept,
    limits: BodyLimits,
) -> Result<CheckedBody, ApiError> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    // The media type without its parameters (`; charset=utf-8` is fine), any case.
    let media = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let form = accept == Accept::JsonOrForm && media == "application/x-www-form-urlencoded";
    if !(form || media == "application/json") {
        let hint = match accept {
            Accept::Json => "send the body as JSON with `content-type: application/json`",
            Accept::JsonOrForm => "send JSON (`application/json`) or form fields `event_id` and `content`",
        };
        return Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, ErrorCode::UnsupportedMediaType, hint));
    }
    let bytes = read_limited(body, limits).await?;
    Ok(CheckedBody { bytes, form })
}

/// The body, refused with 413 `body_too_large` past `limits.max_bytes` (at once
/// when `content-length` says so, before reading anything), 400 `malformed_body`
/// when it cannot be read (bad chunked encoding, cut off) and 408
/// `body_timeout` when it does not arrive within `limits.timeout`.
pub async fn read_limited(body: axum::body::Body, limits: BodyLimits) -> Result<axum::body::Bytes, ApiError> {
    use axum::body::HttpBody;
    let max_bytes = limits.max_bytes;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::BodyTooLarge,
            format!("the body is larger than MAX_BODY_BYTES ({max_bytes} bytes)"),
        )
    };
    if body.size_hint().lower() > max_bytes as u64 {
        return Err(too_large());
    }
    match tokio::time::timeout(limits.timeout, axum::body::to_bytes(body, max_bytes)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) => {
            let e = e.into_inner();
            if e.is::<http_body_util::LengthLimitError>() {
                return Err(too_large());
            }
            Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::MalformedBody,
                format!("the body could not be read: {e}"),
            ))
        }
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            ErrorCode::BodyTimeout,
            format!("the body did not arrive within BODY_TIMEOUT_MS ({} ms)", limits.timeout.as_millis()),
        )),
    }
}

/// `/health`, `/ready`, `/metrics` and the admin routes, common to both services.
pub fn common_routes(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/docs", get(docs))
        .route("/docs/{asset}", get(docs_asset))
        .merge(auth::protect(
            admin::routes().merge(crate::entity_labels::api::routes()),
            auth::RequireKey::admin(state.admin_api_keys.clone()),
        ))
        .with_state(state)
}

async fn health(State(s): State<AppState>) -> Json<Value> {
    Json(json!({ "status": "ok", "service": s.service }))
}

/// 200 when the service can work (a plugin active, Redis answering); `degraded`
/// lists heuristic plugins that should be scoring and are not, and `panics` the
/// places a task panicked since start (either one: still 200, so an orchestrator
/// does not restart a pod, but `status` is `degraded`).
async fn ready(State(s): State<AppState>) -> Response {
    let plugins = s.plugins.list();
    let active = plugins.iter().filter(|p| p.state == PluginState::Active).count();
    let failed: Vec<&str> =
        plugins.iter().filter(|p| p.state == PluginState::Failed).map(|p| p.name.as_str()).collect();
    let degraded = s.plugins.degraded(palisade_plugins::PluginKind::Heuristic);
    let redis = s.depth.as_ref().map(|d| d.redis_ok());
    let ok = active > 0 && redis != Some(false);
    let panics = s.faults.report();
    let status = match (ok, degraded.is_empty() && panics.is_empty()) {
        (false, _) => "unavailable",
        (true, true) => "ready",
        (true, false) => "degraded",
    };
    let body = json!({
        "ready": ok, "status": status, "service": s.service, "redis": redis,
        "plugins_active": active, "plugins_failed": failed, "degraded": degraded, "panics": panics,
    });
    let code = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, Json(body)).into_response()
}

/// The API description (hand-written next to the routes: `openapi.json`).
const OPENAPI: &str = include_str!("openapi.json");

/// This service's part of the API description: the shared routes and its own
/// (ingest: events and platforms; screening: risk), with its server only — so a
/// client generated from (or a fuzzer run against) one service never calls a
/// route the other serves.
pub fn openapi_for(service: &str) -> Value {
    let mut spec: Value = serde_json::from_str(OPENAPI).expect("openapi.json is JSON");
    let other = if service == "ingest" {
        ["/v1/risk/", "/v1/admin/classifier", "/v1/admin/labels", "/v1/admin/shadow", "/v1/admin/backtests"].as_slice()
    } else {
        ["/v1/events/", "/v1/platforms/"].as_slice()
    };
    if let Some(paths) = spec["paths"].as_object_mut() {
        paths.retain(|path, _| !other.iter().any(|prefix| path.starts_with(prefix)));
    }
    if let Some(servers) = spec["servers"].as_array_mut() {
        let name = if service == "ingest" { "ingestion" } else { "screening" };
        servers.retain(|s| s["description"] == name);
    }
    spec
}

async fn openapi(State(s): State<AppState>) -> impl IntoResponse {
    // Rendered once per service; each request gets the same text.
    static SPECS: std::sync::OnceLock<[String; 2]> = std::sync::OnceLock::new();
    let [ingest, screening] =
        SPECS.get_or_init(|| [openapi_for("ingest").to_string(), openapi_for("screening").to_string()]);
    let spec = if s.service == "ingest" { ingest } else { screening };
    ([(header::CONTENT_TYPE, "application/json")], spec.as_str())
}

async fn docs(State(s): State<AppState>) -> axum::response::Html<String> {
    let assets = s.swagger_ui_dir.join("swagger-ui-bundle.js").is_file();
    axum::response::Html(if assets {
        r##"<!doctype html><html><head><meta charset="utf-8"><title>Palisade API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css"></head><body><div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui" });</script></body></html>"##
            .to_string()
    } else {
        format!(
            r#"<!doctype html><html><body><h1>Palisade API</h1><p>The API description is at <a href="/openapi.json">/openapi.json</a>.
Swagger UI's files are not in {} (scripts/setup fetches them; set SWAGGER_UI_DIR).</p></body></html>"#,
            s.swagger_ui_dir.display()
        )
    })
}

async fn docs_asset(State(s): State<AppState>, axum::extract::Path(asset): axum::extract::Path<String>) -> Response {
    let content_type = match asset.as_str() {
        "swagger-ui-bundle.js" => "application/javascript",
        "swagger-ui.css" => "text/css",
        _ => return ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, "no such asset").into_response(),
    };
    match std::fs::read(s.swagger_ui_dir.join(&asset)) {
        Ok(bytes) => ([(header::CONTENT_TYPE, content_type)], bytes).into_response(),
        Err(_) => ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, "Swagger UI's files are not installed")
            .into_response(),
    }
}

async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    s.gauges.refresh(s.depth.as_deref());
    ([("content-type", "text/plain; version=0.0.4")], palisade_core::telemetry::render(&s.registry))
}
