//! `/v1/admin/plugins…`: list, reload, roll back, enable and disable plugins live;
//! `/v1/admin/audit`: the trail of those changes (each names the admin key that
//! made it by its id). Needs an admin key (`ADMIN_API_KEYS`, separate from the
//! event API keys), checked by the route layer `common_routes` puts around these.

use super::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use palisade_core::ApiError;
use palisade_core::ErrorCode;
use palisade_core::audit::key_id;
use palisade_plugins::registry::AdminError;
use palisade_streams::control::Action;
use serde_json::{Value, json};

/// A plugin name from a route's path, checked against the manifest's grammar
/// before it reaches a lookup or a file path: 400 `invalid_plugin_name`.
pub(crate) fn plugin_name(name: String) -> Result<String, ApiError> {
    if palisade_plugins::manifest::valid_name(&name) {
        return Ok(name);
    }
    let shown: String = name.chars().take(80).flat_map(char::escape_debug).collect();
    Err(ApiError::new(
        StatusCode::BAD_REQUEST,
        ErrorCode::InvalidPluginName,
        format!("`{shown}` is not a plugin name: it {}", palisade_plugins::manifest::NAME_RULE),
    ))
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/plugins", get(list))
        .route("/v1/admin/plugins/reload", post(reload))
        .route("/v1/admin/plugins/{name}/rollback", post(rollback))
        .route("/v1/admin/plugins/{name}/enable", post(enable))
        .route("/v1/admin/plugins/{name}/disable", post(disable))
        .route("/v1/admin/audit", get(audit))
}

/// Who is acting: the admin key's id (the auth layer has checked the key).
pub(crate) fn actor(headers: &HeaderMap) -> String {
    key_id(headers.get("api-key").and_then(|v| v.to_str().ok()).unwrap_or_default())
}

/// A registry refusal as its HTTP answer.
pub(crate) fn admin_error(e: AdminError) -> ApiError {
    {
        match e {
            AdminError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, ErrorCode::PluginNotFound, e.to_string()),
            AdminError::NoPrevious(_) => {
                ApiError::new(StatusCode::CONFLICT, ErrorCode::NoPreviousVersion, e.to_string())
            }
            AdminError::Files(..) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::PluginFiles, e.to_string())
            }
        }
    }
}

async fn list(State(s): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "dir": s.plugins.dir(), "plugins": s.plugins.list() })))
}

async fn reload(State(s): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let (plugins, actor) = (s.plugins.clone(), actor(&headers));
    let outcomes = tokio::task::spawn_blocking(move || plugins.reload_by(true, &actor))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::ReloadFailed, e.to_string()))?;
    let failed = outcomes.iter().filter(|o| o.outcome == "failed").count();
    Ok(Json(json!({ "outcomes": outcomes, "failed": failed })))
}

/// Each change is written to the plugin directory (a restart keeps it) and
/// published on `events:control`, which every other replica applies.
async fn rollback(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (name, actor) = (plugin_name(name)?, actor(&headers));
    let plugins = s.plugins.clone();
    let (n, who) = (name.clone(), actor.clone());
    let outcome = tokio::task::spawn_blocking(move || plugins.rollback_by(&n, &who))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::RollbackFailed, e.to_string()))?
        .map_err(admin_error)?;
    let serving = s.plugins.get(&name).and_then(|p| p.current()).map(|v| v.id());
    publish(&s, Action::PluginRollback, &name, serving, &actor);
    Ok(Json(json!(outcome)))
}

async fn enable(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_enabled(&s, &headers, name, true)
}

async fn disable(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_enabled(&s, &headers, name, false)
}

fn set_enabled(s: &AppState, headers: &HeaderMap, name: String, enabled: bool) -> Result<Json<Value>, ApiError> {
    let (name, actor) = (plugin_name(name)?, actor(headers));
    let info = s.plugins.set_enabled_by(&name, enabled, &actor).map_err(admin_error)?;
    publish(s, if enabled { Action::PluginEnable } else { Action::PluginDisable }, &name, None, &actor);
    Ok(Json(json!(info)))
}

fn publish(s: &AppState, action: Action, name: &str, to: Option<String>, actor: &str) {
    if let Some(control) = &s.control {
        control.publish(action, name, to, actor);
    }
}

#[derive(serde::Deserialize)]
struct AuditQuery {
    count: Option<usize>,
}

/// `GET /v1/admin/audit?count=N`: the newest N entries (default 100, at most 1,000),
/// how many the trail holds, and how many it keeps at most (`AUDIT_MAX_ENTRIES`).
async fn audit(State(s): State<AppState>, Query(q): Query<AuditQuery>) -> Result<Json<Value>, ApiError> {
    let unavailable =
        |message: String| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::AuditUnavailable, message);
    let trail =
        s.audit.as_ref().ok_or_else(|| unavailable("this service runs without Redis: no audit trail".into()))?;
    let count = q.count.unwrap_or(100).clamp(1, 1000);
    let (entries, length) = trail.recent(count).await.map_err(|e| unavailable(format!("Redis: {e}")))?;
    Ok(Json(json!({ "entries": entries, "length": length, "kept_at_most": trail.keep })))
}
