//! `/v1/admin/plugins…`: list, reload, roll back, enable and disable plugins live.
//! Needs an admin key (`ADMIN_API_KEYS`, separate from the event API keys),
//! checked by the route layer `common_routes` puts around these.

use super::AppState;
use crate::core::ApiError;
use crate::plugins::registry::AdminError;
use axum::extract::{Path, State};
use axum::http::StatusCode;
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

async fn reload(State(s): State<AppState>) -> Result<Json<Value>, ApiError> {
    let plugins = s.plugins.clone();
    let outcomes = tokio::task::spawn_blocking(move || plugins.reload(true))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "reload_failed", e.to_string()))?;
    let failed = outcomes.iter().filter(|o| o.outcome == "failed").count();
    Ok(Json(json!({ "outcomes": outcomes, "failed": failed })))
}

async fn rollback(State(s): State<AppState>, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(s.plugins.rollback(&name)?)))
}

async fn enable(State(s): State<AppState>, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(s.plugins.set_enabled(&name, true)?)))
}

async fn disable(State(s): State<AppState>, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(s.plugins.set_enabled(&name, false)?)))
}
