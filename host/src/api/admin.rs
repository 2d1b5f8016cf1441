//! `/v1/admin/plugins…`: list, reload, roll back, enable and disable plugins live;
//! `/v1/admin/audit`: the trail of those changes (each names the admin key that
//! made it by its id). Needs an admin key (`ADMIN_API_KEYS`, separate from the
//! event API keys), checked by the route layer `common_routes` puts around these.

use super::AppState;
use crate::core::ApiError;
use crate::core::audit::key_id;
use crate::plugins::registry::AdminError;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

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

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, "plugin_not_found", e.to_string()),
            AdminError::NoPrevious(_) => ApiError::new(StatusCode::CONFLICT, "no_previous_version", e.to_string()),
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
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "reload_failed", e.to_string()))?;
    let failed = outcomes.iter().filter(|o| o.outcome == "failed").count();
    Ok(Json(json!({ "outcomes": outcomes, "failed": failed })))
}

async fn rollback(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(s.plugins.rollback_by(&name, &actor(&headers))?)))
}

async fn enable(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(s.plugins.set_enabled_by(&name, true, &actor(&headers))?)))
}

async fn disable(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(s.plugins.set_enabled_by(&name, false, &actor(&headers))?)))
}

#[derive(serde::Deserialize)]
struct AuditQuery {
    count: Option<usize>,
}

/// `GET /v1/admin/audit?count=N`: the newest N entries (default 100, at most 1,000).
async fn audit(State(s): State<AppState>, Query(q): Query<AuditQuery>) -> Result<Json<Value>, ApiError> {
    let unavailable = |message: String| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "audit_unavailable", message);
    let trail =
        s.audit.as_ref().ok_or_else(|| unavailable("this service runs without Redis: no audit trail".into()))?;
    let count = q.count.unwrap_or(100).clamp(1, 1000);
    let entries = trail.recent(count).await.map_err(|e| unavailable(format!("Redis: {e}")))?;
    Ok(Json(json!({ "entries": entries })))
}
