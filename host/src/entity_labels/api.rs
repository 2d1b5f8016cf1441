//! `/v1/labels`: set, list and remove entity labels (admin key). Every change is
//! appended to `events:audit` with the admin key's id; removing a label (an
//! appeal upheld, a mistake) needs a reason too.

use super::{EntityLabel, LabelStore, SOURCES};
use crate::api::AppState;
use crate::api::admin::actor;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use palisade_core::ApiError;
use palisade_core::ErrorCode;
use palisade_core::audit::{AuditEntry, AuditSink};
use serde_json::{Value, json};
use std::sync::Arc;

/// Most labels one `POST /v1/labels` sets.
pub const MAX_LABELS: usize = 1000;
/// Longest expiry: ten years.
const MAX_EXPIRY_S: u64 = 10 * 365 * 24 * 3600;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/labels", post(set))
        .route("/v1/labels/{entity}", get(list))
        .route("/v1/labels/{entity}/{label}", delete(remove))
}

/// One label as a client sends it.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NewLabel {
    entity: String,
    label: String,
    reason: String,
    #[serde(default = "reviewer")]
    source: String,
    /// Seconds from now; absent: until removed.
    expires_in_s: Option<u64>,
}

fn reviewer() -> String {
    "reviewer".into()
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Many {
    labels: Vec<NewLabel>,
}

fn invalid(index: Option<usize>, field: &str, message: String) -> ApiError {
    let mut e = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::ValidationFailed, message);
    e.details = Some(json!({ "field": field, "index": index }));
    e
}

fn check_entity(entity: &str, index: Option<usize>) -> Result<(), ApiError> {
    if entity.is_empty() || entity.len() > 256 || entity.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(index, "entity", "entity must be 1 to 256 bytes without spaces (e.g. `user:42`)".into()));
    }
    Ok(())
}

fn check_label(label: &str, index: Option<usize>) -> Result<(), ApiError> {
    let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.:".contains(c);
    if label.is_empty() || label.len() > 64 || !label.chars().all(ok) {
        return Err(invalid(index, "label", "label must be 1 to 64 of a-z, 0-9, `-`, `_`, `.`, `:`".into()));
    }
    Ok(())
}

fn check_reason(reason: &str, index: Option<usize>) -> Result<(), ApiError> {
    if reason.trim().is_empty() || reason.len() > 1024 {
        return Err(invalid(
            index,
            "reason",
            "reason must be 1 to 1024 bytes: say why (it goes to the audit trail)".into(),
        ));
    }
    Ok(())
}

impl NewLabel {
    fn into_label(self, index: Option<usize>, now: u64, by: &str) -> Result<EntityLabel, ApiError> {
        check_entity(&self.entity, index)?;
        check_label(&self.label, index)?;
        check_reason(&self.reason, index)?;
        if !SOURCES.contains(&self.source.as_str()) {
            return Err(invalid(index, "source", format!("source must be one of {SOURCES:?}")));
        }
        if let Some(s) = self.expires_in_s
            && !(1..=MAX_EXPIRY_S).contains(&s)
        {
            return Err(invalid(index, "expires_in_s", format!("expires_in_s must be 1 to {MAX_EXPIRY_S}")));
        }
        Ok(EntityLabel {
            entity: self.entity,
            label: self.label,
            source: self.source,
            reason: self.reason,
            expires_at_ms: self.expires_in_s.map(|s| now + s * 1000),
            set_at_ms: now,
            set_by: by.to_string(),
        })
    }
}

fn store(s: &AppState) -> Result<Arc<LabelStore>, ApiError> {
    s.entity_labels.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::LabelsUnavailable,
            "this service keeps no entity labels",
        )
    })
}

fn unavailable(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::RedisUnavailable, format!("entity labels: {e}"))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(unavailable)
}

fn audit(s: &AppState, entry: AuditEntry) {
    if let Some(a) = &s.audit {
        a.record(entry);
    }
}

/// `POST /v1/labels`: one label (`{"entity", "label", "reason", "source", "expires_in_s"}`)
/// or many (`{"labels": [...]}`, at most [`MAX_LABELS`]); 201 with what was set.
async fn set(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let bytes = crate::api::read_body(&headers, body, crate::api::Accept::Json, s.body).await?.bytes;
    let bad = |e: serde_json::Error| {
        let hint =
            "{\"entity\", \"label\", \"reason\", \"source\"?, \"expires_in_s\"?} or {\"labels\": [...]} expected";
        ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidJson, format!("{hint}: {e}"))
    };
    let value: Value = serde_json::from_slice(&bytes).map_err(bad)?;
    let many = value.get("labels").is_some();
    let rows = if many {
        serde_json::from_value::<Many>(value).map_err(bad)?.labels
    } else {
        vec![serde_json::from_value::<NewLabel>(value).map_err(bad)?]
    };
    if rows.is_empty() || rows.len() > MAX_LABELS {
        return Err(invalid(None, "labels", format!("1 to {MAX_LABELS} labels per request")));
    }
    let (by, now) = (actor(&headers), palisade_core::now_ms());
    let labels: Vec<EntityLabel> = rows
        .into_iter()
        .enumerate()
        .map(|(i, r)| r.into_label(many.then_some(i), now, &by))
        .collect::<Result<_, _>>()?;
    let store = store(&s)?;
    let to_set = labels.clone();
    let replaced = blocking(move || store.set_many(&to_set)).await?.map_err(unavailable)?;
    for (l, old) in labels.iter().zip(&replaced) {
        let detail = json!({ "label": l, "replaced": old });
        audit(&s, AuditEntry::new("label_set", &by, &l.entity).detail(detail));
    }
    Ok((StatusCode::CREATED, Json(json!({ "set": labels.len(), "labels": labels }))))
}

/// `GET /v1/labels/{entity}`: the labels it holds now.
async fn list(State(s): State<AppState>, Path(entity): Path<String>) -> Result<Json<Value>, ApiError> {
    check_entity(&entity, None)?;
    let store = store(&s)?;
    let key = vec![entity.clone()];
    let labels = blocking(move || store.get_many(&key)).await?.map_err(unavailable)?;
    Ok(Json(json!({ "entity": entity, "labels": labels.into_iter().next().unwrap_or_default() })))
}

#[derive(serde::Deserialize)]
struct RemoveQuery {
    reason: Option<String>,
}

/// `DELETE /v1/labels/{entity}/{label}?reason=…`: the reason is required (audited).
async fn remove(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((entity, label)): Path<(String, String)>,
    Query(q): Query<RemoveQuery>,
) -> Result<Json<Value>, ApiError> {
    check_entity(&entity, None)?;
    check_label(&label, None)?;
    let reason = q.reason.unwrap_or_default();
    check_reason(&reason, None).map_err(|mut e| {
        e.code = ErrorCode::ReasonRequired;
        e.message =
            "removing a label needs `?reason=` (an appeal upheld, a mistake): it goes to the audit trail".into();
        e
    })?;
    let store = store(&s)?;
    let (e, l) = (entity.clone(), label.clone());
    let removed = blocking(move || store.remove(&e, &l)).await?.map_err(unavailable)?;
    let Some(removed) = removed else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::LabelNotFound,
            format!("`{entity}` does not hold the label `{label}`"),
        ));
    };
    let detail = json!({ "label": label, "reason": reason, "removed": removed });
    audit(&s, AuditEntry::new("label_removed", &actor(&headers), &entity).detail(detail));
    Ok(Json(json!({ "removed": removed, "reason": reason })))
}
