//! HTTP surface shared by both services: the one `ApiError` (status + JSON body
//! `{error, message, details}`), API-key checks, health/readiness/metrics routes,
//! and the admin routes (`admin.rs`). Service-specific routes live with their
//! service; this module holds no business logic.

pub mod admin;

use crate::plugins::PluginHost;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use std::sync::Arc;

/// Shared by every route of a service.
#[derive(Clone)]
pub struct AppState {
    pub service: &'static str,
    pub plugins: Arc<PluginHost>,
    pub registry: prometheus::Registry,
    pub api_keys: Arc<Vec<String>>,
    pub admin_api_keys: Arc<Vec<String>>,
}

/// Every error answer: a status and `{ "error": code, "message": …, "details": … }`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: None,
        }
    }
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.code, "message": self.message });
        if let Some(d) = self.details {
            body["details"] = d;
        }
        (self.status, Json(body)).into_response()
    }
}

/// Constant-time comparison of a presented key against each configured key.
fn key_matches(presented: &[u8], keys: &[String]) -> bool {
    let mut any = false;
    for key in keys {
        let key = key.as_bytes();
        let mut diff = (key.len() ^ presented.len()) as u8 | u8::from(key.len() != presented.len());
        for (i, b) in key.iter().enumerate() {
            diff |= b ^ presented.get(i).copied().unwrap_or(0);
        }
        any |= diff == 0;
    }
    any
}

/// Check the `api-key` header against `keys` (401 when absent, wrong, or none configured).
pub fn require_key(headers: &HeaderMap, keys: &[String], which: &str) -> Result<(), ApiError> {
    if keys.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            format!("no {which} configured on this server: set it to enable these routes"),
        ));
    }
    let Some(presented) = headers.get("api-key") else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing `api-key` header",
        ));
    };
    if key_matches(presented.as_bytes(), keys) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "invalid API key",
        ))
    }
}

/// `/health`, `/ready`, `/metrics` and the admin routes, common to both services.
pub fn common_routes(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .merge(admin::routes())
        .with_state(state)
}

async fn health(State(s): State<AppState>) -> Json<Value> {
    Json(json!({ "status": "ok", "service": s.service }))
}

async fn ready(State(s): State<AppState>) -> Response {
    let plugins = s.plugins.list();
    let active = plugins.iter().filter(|p| p.state == "active").count();
    let failed: Vec<&str> = plugins
        .iter()
        .filter(|p| p.state == "failed")
        .map(|p| p.name.as_str())
        .collect();
    let ok = active > 0;
    let body = json!({ "ready": ok, "service": s.service, "plugins_active": active, "plugins_failed": failed });
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    (
        [("content-type", "text/plain; version=0.0.4")],
        crate::telemetry::render(&s.registry),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_exactly() {
        let keys = vec!["secret-1".to_string(), "other".to_string()];
        assert!(key_matches(b"secret-1", &keys));
        assert!(key_matches(b"other", &keys));
        assert!(!key_matches(b"secret-", &keys));
        assert!(!key_matches(b"secret-12", &keys));
        assert!(!key_matches(b"", &keys));
    }
}
