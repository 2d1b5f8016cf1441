//! The screening service's admin routes (admin key): the classifier (status,
//! reload, rollback), reviewer labels, shadow candidates (report, reload,
//! promote — optionally through the gate — and discard, for plugins and the
//! classifier) and backtest jobs. Every change is recorded in the audit trail.
//! Screening itself (`Screener`) and the event routes are the parent module's.

use super::ScreenApi;
use crate::api::Checked;
use crate::api::admin::actor as admin_actor;
use crate::screening::backtest::jobs::Job;
use crate::screening::backtest::{self, GateOutcome, Side, StreamRange};
use crate::screening::shadow::{self, ShadowError, version_of};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use palisade_core::audit::{AuditEntry, VersionRef};
use palisade_core::{ApiError, ErrorCode, now_ms};
use palisade_detect::classify::slot::Slot;
use palisade_detect::vectors::bank::Labelled;
use palisade_streams::RedisConn;
use palisade_streams::labels::LabelRow;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// Most rows one `POST /v1/admin/labels` takes.
const MAX_LABEL_ROWS: usize = 1000;
/// Most labelled rows a gate or a backtest job takes in its request.
const MAX_GATE_ROWS: usize = 20_000;

pub(super) fn routes() -> Router<Arc<ScreenApi>> {
    Router::new()
        .route("/v1/admin/classifier", get(classifier_status))
        .route("/v1/admin/classifier/reload", post(classifier_reload))
        .route("/v1/admin/classifier/rollback", post(classifier_rollback))
        .route("/v1/admin/classifier/shadow/promote", post(classifier_shadow_promote))
        .route("/v1/admin/classifier/shadow/discard", post(classifier_shadow_discard))
        .route("/v1/admin/labels", post(add_labels))
        .route("/v1/admin/shadow", get(shadow_report))
        .route("/v1/admin/shadow/reload", post(shadow_reload))
        .route("/v1/admin/shadow/{name}/promote", post(shadow_promote))
        .route("/v1/admin/shadow/{name}/discard", post(shadow_discard))
        .route("/v1/admin/backtests", post(start_backtest).get(list_backtests))
        .route("/v1/admin/backtests/{id}", get(backtest_job))
}

fn no_classifier() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::NoClassifier,
        "this service scores without a classifier (SCORING=weighted or CLASSIFIER_DIR=none)",
    )
}

fn internal(code: ErrorCode) -> impl Fn(tokio::task::JoinError) -> ApiError {
    move |e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, code, e.to_string())
}

impl ScreenApi {
    fn slot(&self) -> Result<&Arc<Slot>, ApiError> {
        self.screener.classifier.as_ref().ok_or_else(no_classifier)
    }

    fn shadows(&self) -> Result<&Arc<shadow::Shadows>, ApiError> {
        self.screener.shadows.as_ref().ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::NoShadows,
                "this screener runs without shadow candidates",
            )
        })
    }

    fn record(&self, entry: AuditEntry) {
        if let Some(audit) = &self.audit {
            audit.record(entry);
        }
    }

    /// The active verdict path as backtests and the gate use it (rules, then the
    /// classifier; no embedding stage).
    fn active_side(&self) -> Side {
        Side {
            plugins: self.screener.plugins.clone(),
            classifier: self.screener.classifier.as_ref().map(|s| s.get()),
            policy: self.screener.policy,
        }
    }

    /// A shadow candidate's verdict path, beside [`Self::active_side`]; a plugin
    /// candidate is loaded into a temporary copy of the plugin directory (kept
    /// alive by the returned guard). Blocking: compiles.
    fn candidate_side(&self, candidate: &CandidateRef) -> Result<(Side, Option<tempfile::TempDir>), ApiError> {
        let shadows = self.shadows()?;
        let active = self.active_side();
        match candidate {
            CandidateRef::Plugin { name } => {
                let c = shadows.candidate(name).map_err(shadow_error)?;
                let (tmp, plugins, _) = backtest::candidate_plugins(self.screener.plugins.dir(), &c.wasm, &c.manifest)
                    .map_err(|e| {
                        ApiError::new(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            ErrorCode::CandidateUnloadable,
                            format!("{e:#}"),
                        )
                    })?;
                Ok((Side { plugins, ..active }, Some(tmp)))
            }
            CandidateRef::Classifier => {
                let (_, classifier) = shadows.classifier_candidate().map_err(shadow_error)?;
                Ok((Side { classifier: Some(classifier), ..active }, None))
            }
        }
    }
}

/// A shadow candidate named in a request.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum CandidateRef {
    /// A plugin version in `PLUGIN_DIR/shadow/`.
    Plugin { name: String },
    /// The classifier in `CLASSIFIER_DIR.shadow`.
    Classifier,
}

impl CandidateRef {
    fn subject(&self) -> &str {
        match self {
            CandidateRef::Plugin { name } => name,
            CandidateRef::Classifier => "classifier",
        }
    }
}

fn shadow_error(e: ShadowError) -> ApiError {
    match e {
        ShadowError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, ErrorCode::ShadowNotFound, e.to_string()),
        ShadowError::Files(_) => {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::ShadowFiles, e.to_string())
        }
    }
}

/// A JSON body that may be absent (no bytes: `None`).
async fn optional_json<T: serde::de::DeserializeOwned>(
    s: &ScreenApi,
    headers: &HeaderMap,
    body: Body,
    expected: &str,
) -> Result<Option<T>, ApiError> {
    let bytes = crate::api::read_limited(body, s.body).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/json"));
    if !json {
        let hint = "send the body as JSON with `content-type: application/json`";
        return Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, ErrorCode::UnsupportedMediaType, hint));
    }
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidJson, format!("{expected} expected: {e}"))
    })
}

/// Labelled rows from a request: 1 to `max`, each with a known category and a
/// text within the event limits (422 with `details.index` for the first that is not).
fn check_rows<'a>(
    rows: impl ExactSizeIterator<Item = (&'a str, &'a str, &'a str)>,
    max: usize,
    max_chars: usize,
    what: &str,
) -> Result<(), ApiError> {
    if rows.len() == 0 || rows.len() > max {
        let message = format!("`{what}` must hold 1 to {max} rows, not {}", rows.len());
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::ValidationFailed, message));
    }
    for (index, (id, text, label)) in rows.enumerate() {
        let problem = if palisade_detect::classify::category_index(label).is_none() {
            Some(format!("label {label:?} is not one of {:?}", palisade_detect::classify::CATEGORIES))
        } else if id.len() > 256 {
            Some("id must be at most 256 bytes".to_string())
        } else if text.trim().is_empty() || text.chars().count() > max_chars {
            Some(format!("text must be 1 to {max_chars} characters"))
        } else {
            None
        };
        if let Some(message) = problem {
            let mut e = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::ValidationFailed, message);
            e.details = Some(json!({ "what": what, "index": index }));
            return Err(e);
        }
    }
    Ok(())
}

fn labelled_rows(rows: Vec<Labelled>, s: &ScreenApi, what: &str) -> Result<Vec<Labelled>, ApiError> {
    let max_chars = s.limits.max_content_length;
    check_rows(
        rows.iter().map(|r| (r.id.as_str(), r.text.as_str(), r.label.as_str())),
        MAX_GATE_ROWS,
        max_chars,
        what,
    )?;
    Ok(rows
        .into_iter()
        .enumerate()
        .map(|(i, r)| Labelled { id: if r.id.is_empty() { format!("row-{i}") } else { r.id }, ..r })
        .collect())
}

/// `GET /v1/admin/classifier`: version, training files, CV figures, thresholds.
async fn classifier_status(State(s): State<Arc<ScreenApi>>) -> Result<Json<Value>, ApiError> {
    Ok(Json(s.slot()?.status()))
}

/// `POST /v1/admin/classifier/reload`: read CLASSIFIER_DIR again; a refused
/// artifact is a 422 naming why, and the loaded one keeps serving.
async fn classifier_reload(State(s): State<Arc<ScreenApi>>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let slot = s.slot()?.clone();
    let before = version_of(&slot.get());
    let outcome = {
        let slot = slot.clone();
        tokio::task::spawn_blocking(move || slot.reload()).await.map_err(internal(ErrorCode::ReloadFailed))?
    };
    let reloads = &s.screener.metrics.classifier_reloads;
    let actor = admin_actor(&headers);
    match outcome {
        Ok(swap) => {
            reloads.with_label_values(&[swap.outcome]).inc();
            if swap.outcome == "reloaded" {
                let entry = AuditEntry::new("classifier_reload", &actor, "classifier");
                s.record(entry.versions(Some(before), Some(version_of(&slot.get()))));
            }
            Ok(Json(json!(swap)))
        }
        Err(e) => {
            reloads.with_label_values(&["refused"]).inc();
            let entry = AuditEntry::new("load_failed", &actor, "classifier").versions(Some(before), None);
            s.record(entry.detail(json!({ "error": e.to_string() })));
            Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::ClassifierRefused, e.to_string()))
        }
    }
}

/// `POST /v1/admin/classifier/rollback`: back to the version before (409 when there is none).
async fn classifier_rollback(State(s): State<Arc<ScreenApi>>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let slot = s.slot()?;
    let before = version_of(&slot.get());
    let swap = slot
        .rollback()
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::ClassifierFiles, e))?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::NoPreviousVersion,
                "no earlier classifier: none was loaded in this process and CLASSIFIER_DIR.previous holds none",
            )
        })?;
    s.screener.metrics.classifier_reloads.with_label_values(&[swap.outcome]).inc();
    if let Some(control) = &s.control {
        let action = palisade_streams::control::Action::ClassifierRollback;
        control.publish(action, "classifier", Some(swap.to.clone()), &admin_actor(&headers));
    }
    let entry = AuditEntry::new("classifier_rollback", &admin_actor(&headers), "classifier");
    s.record(entry.versions(Some(before), Some(version_of(&slot.get()))));
    Ok(Json(json!(swap)))
}

/// `GET /v1/admin/shadow`: each candidate's figures against the active version.
async fn shadow_report(State(s): State<Arc<ScreenApi>>) -> Result<Json<Value>, ApiError> {
    let shadows = s.shadows()?;
    let installed: Vec<Value> = shadows
        .host
        .list()
        .into_iter()
        .map(|p| json!({ "name": p.name, "version": p.version, "state": p.state, "load_error": p.load_error }))
        .collect();
    let classifier = shadows.classifier().map(|c| c.status());
    Ok(Json(json!({
        "dir": shadows.host.dir(), "installed": installed, "classifier": classifier, "shadows": shadows.report()
    })))
}

/// `POST /v1/admin/shadow/reload`: load what changed in the shadow directory and
/// the candidate classifier's folder.
async fn shadow_reload(State(s): State<Arc<ScreenApi>>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let shadows = s.shadows()?.clone();
    let actor = admin_actor(&headers);
    let (outcomes, classifier) = tokio::task::spawn_blocking(move || {
        let classifier = shadows.classifier().map(|c| match c.reload() {
            Ok(version) => json!({ "version": version }),
            Err(e) => json!({ "error": e.to_string() }),
        });
        (shadows.host.reload_by(true, &actor), classifier)
    })
    .await
    .map_err(internal(ErrorCode::ReloadFailed))?;
    Ok(Json(json!({ "outcomes": outcomes, "classifier": classifier })))
}

/// The optional body of a promotion: a gate set and the F1 drop it allows.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PromoteBody {
    gate: Option<GateBody>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GateBody {
    rows: Vec<Labelled>,
    #[serde(default = "default_max_drop")]
    max_f1_drop: f64,
}

fn default_max_drop() -> f64 {
    0.01
}

/// The gate for a promotion when the body asks for one: `Ok(Some(figures))` when
/// it passes, a 422 `gate_refused` (figures in `details`, audited) when not.
async fn gate(
    s: &Arc<ScreenApi>,
    headers: &HeaderMap,
    body: Body,
    candidate: CandidateRef,
) -> Result<Option<GateOutcome>, ApiError> {
    let expected = r#"no body, or {"gate": {"rows": [{"text", "label"}...], "max_f1_drop": 0.01}}"#;
    let Some(PromoteBody { gate: Some(g) }) = optional_json::<PromoteBody>(s, headers, body, expected).await? else {
        return Ok(None);
    };
    if !(0.0..=1.0).contains(&g.max_f1_drop) {
        let message = format!("max_f1_drop must be within 0 and 1, not {}", g.max_f1_drop);
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::ValidationFailed, message));
    }
    let rows = labelled_rows(g.rows, s, "gate.rows")?;
    let api = s.clone();
    let subject = candidate.subject().to_string();
    let outcome = tokio::task::spawn_blocking(move || {
        let (side, _tmp) = api.candidate_side(&candidate)?;
        Ok::<_, ApiError>(GateOutcome::check(&api.active_side(), &side, &rows, "request", g.max_f1_drop))
    })
    .await
    .map_err(internal(ErrorCode::GateFailed))??;
    if outcome.passed() {
        return Ok(Some(outcome));
    }
    let entry = AuditEntry::new("promote_refused", &admin_actor(headers), &subject);
    s.record(entry.detail(json!({ "gate": outcome })));
    let mut e = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::GateRefused, outcome.summary());
    e.details = Some(json!(outcome));
    Err(e)
}

/// `POST /v1/admin/shadow/{name}/promote` (optionally `{"gate": {...}}`): the
/// candidate becomes the active version (the one it replaces stays for
/// rollback), recorded with its shadow figures and the gate's.
async fn shadow_promote(
    State(s): State<Arc<ScreenApi>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let name = crate::api::admin::plugin_name(name)?;
    let shadows = s.shadows()?.clone();
    shadows.candidate(&name).map_err(shadow_error)?;
    let gated = gate(&s, &headers, body, CandidateRef::Plugin { name: name.clone() }).await?;
    let actor = admin_actor(&headers);
    let old = s.screener.plugins.get(&name).and_then(|p| p.current()).map(|v| v.reference());
    let (n, who) = (name.clone(), actor.clone());
    let (figures, outcomes) = tokio::task::spawn_blocking(move || shadows.promote(&n, &who))
        .await
        .map_err(internal(ErrorCode::PromoteFailed))?
        .map_err(shadow_error)?;
    let new = s.screener.plugins.get(&name).and_then(|p| p.current()).map(|v| v.reference());
    let detail = json!({ "shadow": figures, "gate": gated });
    s.record(AuditEntry::new("promote", &actor, &name).versions(old, new).detail(detail));
    Ok(Json(json!({ "promoted": name, "shadow": figures, "gate": gated, "outcomes": outcomes })))
}

/// `POST /v1/admin/shadow/{name}/discard`: the candidate's files and figures are removed.
async fn shadow_discard(
    State(s): State<Arc<ScreenApi>>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let name = crate::api::admin::plugin_name(name)?;
    let shadows = s.shadows()?;
    let candidate = shadows.host.get(&name).and_then(|p| p.current()).map(|v| v.reference());
    let figures = shadows.discard(&name).map_err(shadow_error)?;
    let entry = AuditEntry::new("discard", &admin_actor(&headers), &name).versions(candidate, None);
    s.record(entry.detail(json!({ "shadow": figures })));
    Ok(Json(json!({ "discarded": name, "shadow": figures })))
}

/// `POST /v1/admin/classifier/shadow/promote` (optionally `{"gate": {...}}`): the
/// candidate classifier's folder becomes CLASSIFIER_DIR and is loaded; the one it
/// replaces moves to CLASSIFIER_DIR.previous and stays for
/// `POST /v1/admin/classifier/rollback`.
async fn classifier_shadow_promote(
    State(s): State<Arc<ScreenApi>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let slot = s.slot()?.clone();
    let shadows = s.shadows()?.clone();
    let (_, candidate) = shadows.classifier_candidate().map_err(shadow_error)?;
    let gated = gate(&s, &headers, body, CandidateRef::Classifier).await?;
    let old = version_of(&slot.get());
    let promoted = slot.clone();
    let (figures, swap) = tokio::task::spawn_blocking(move || shadows.promote_classifier(&promoted))
        .await
        .map_err(internal(ErrorCode::PromoteFailed))?
        .map_err(shadow_error)?;
    s.screener.metrics.classifier_reloads.with_label_values(&[swap.outcome]).inc();
    let detail = json!({ "shadow": figures, "gate": gated });
    let new: VersionRef = version_of(&candidate);
    let entry = AuditEntry::new("promote", &admin_actor(&headers), "classifier").versions(Some(old), Some(new));
    s.record(entry.detail(detail));
    Ok(Json(json!({ "promoted": "classifier", "swap": swap, "shadow": figures, "gate": gated })))
}

/// `POST /v1/admin/classifier/shadow/discard`: the candidate classifier's folder and figures are removed.
async fn classifier_shadow_discard(
    State(s): State<Arc<ScreenApi>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let shadows = s.shadows()?;
    let (_, candidate) = shadows.classifier_candidate().map_err(shadow_error)?;
    let figures = shadows.discard_classifier().map_err(shadow_error)?;
    let entry = AuditEntry::new("discard", &admin_actor(&headers), "classifier");
    s.record(entry.versions(Some(version_of(&candidate)), None).detail(json!({ "shadow": figures })));
    Ok(Json(json!({ "discarded": "classifier", "shadow": figures })))
}

/// The body of `POST /v1/admin/backtests`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BacktestBody {
    candidate: CandidateRef,
    /// Labelled rows: P/R/F1 per category for both sides, and the rows that changed.
    rows: Option<Vec<Labelled>>,
    /// A range of stream history: flips and risk deltas.
    stream: Option<StreamBody>,
    /// How many changed rows or flipped events to list.
    #[serde(default = "default_show")]
    show: usize,
}

fn default_show() -> usize {
    20
}

#[derive(Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct StreamBody {
    /// The stream (under REDIS_KEY_PREFIX), `events:raw` by default.
    #[serde(default = "default_stream")]
    name: String,
    /// How far back: `90s`, `30m`, `24h`, `7d` (instead of `from`).
    since: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<u64>,
}

fn default_stream() -> String {
    "events:raw".into()
}

/// `POST /v1/admin/backtests`: a shadow candidate against the active version over
/// labelled rows or a range of stream history, as a job (202 with its id; 409
/// while another runs). Reads only: nothing is routed, acknowledged or written
/// but the job's result (and its audit entry).
async fn start_backtest(State(s): State<Arc<ScreenApi>>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let expected =
        r#"{"candidate": {"kind": "plugin", "name"} | {"kind": "classifier"}, "rows": [...] | "stream": {...}}"#;
    let b: BacktestBody = optional_json(&s, &headers, body, expected).await?.ok_or_else(|| {
        ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidJson, format!("{expected} expected"))
    })?;
    let invalid = |m: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::ValidationFailed, m);
    /// What a job runs over.
    enum Data {
        Rows(Vec<Labelled>),
        Stream(StreamRange),
    }
    let data = match (b.rows, &b.stream) {
        (Some(rows), None) => Data::Rows(labelled_rows(rows, &s, "rows")?),
        (None, Some(st)) => Data::Stream(
            StreamRange::new(
                s.history.keys.streams_named(&st.name),
                st.since.as_deref(),
                st.from.as_deref(),
                st.to.as_deref(),
                st.limit,
                now_ms(),
            )
            .map_err(invalid)?,
        ),
        _ => return Err(invalid("give either `rows` (labelled) or `stream` (a range of history)".into())),
    };
    // The candidate is loaded before answering, so a bad name is this request's 404.
    let api = s.clone();
    let candidate = b.candidate.clone();
    let (side, tmp) = tokio::task::spawn_blocking(move || api.candidate_side(&candidate))
        .await
        .map_err(internal(ErrorCode::BacktestFailed))??;
    let rows = match &data {
        Data::Rows(rows) => Some(rows.len()),
        Data::Stream(_) => None,
    };
    let request = json!({ "candidate": b.candidate, "rows": rows, "stream": b.stream, "show": b.show });
    let (active, show, audit, actor) = (s.active_side(), b.show, s.audit.clone(), admin_actor(&headers));
    let history = s.history.clone();
    let subject = b.candidate.subject().to_string();
    let work = move |job: &Job| -> anyhow::Result<Value> {
        let _tmp = tmp;
        let result = match data {
            Data::Rows(rows) => serde_json::to_value(backtest::labelled(&active, &side, &rows, show, job))?,
            Data::Stream(range) => {
                let report = tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
                    let mut conn = RedisConn::connect(&history.target, history.timeout).await?;
                    backtest::stream(&mut conn, &range, &active, &side, show, job).await
                })?;
                json!({ "streams": range.streams, "from": range.from, "to": range.to, "comparison": report })
            }
        };
        if let Some(audit) = audit {
            let summary = json!({ "job": job.id, "request": job.request, "compared": result["comparison"]["compared"], "agreed": result["comparison"]["agreed"],
                "weighted_f1": { "active": result["active"]["weighted_f1"], "candidate": result["candidate"]["weighted_f1"] } });
            audit.record(AuditEntry::new("backtest", &actor, &subject).detail(summary));
        }
        Ok(result)
    };
    let job = s.backtests.start(request, work).map_err(|running| {
        let mut e = ApiError::new(StatusCode::CONFLICT, ErrorCode::BacktestRunning, "one backtest runs at a time");
        e.details = Some(json!({ "running": running }));
        e
    })?;
    let location = format!("/v1/admin/backtests/{}", job.id);
    Ok((StatusCode::ACCEPTED, [(header::LOCATION, location)], Json(job.view())).into_response())
}

/// `GET /v1/admin/backtests`: the kept jobs, newest first.
async fn list_backtests(State(s): State<Arc<ScreenApi>>) -> Json<Value> {
    Json(json!({ "jobs": s.backtests.list() }))
}

/// `GET /v1/admin/backtests/{id}`: a job's state, progress and result.
async fn backtest_job(State(s): State<Arc<ScreenApi>>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    s.backtests.get(&id).map(|j| Json(j.view())).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::BacktestNotFound,
            format!("no backtest job `{id}` in this process"),
        )
    })
}

/// `POST /v1/admin/labels` (`{"labels": [{"id", "text", "label", "reviewer"}]}`):
/// append reviewer labels to `events:labels` for `palisade train --from-stream`.
/// Every row is checked first (a known category, text within the event limits);
/// one bad row refuses the request (422, `details.index`) and nothing is appended.
async fn add_labels(State(s): State<Arc<ScreenApi>>, Checked { bytes, .. }: Checked) -> Result<Response, ApiError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body_ {
        labels: Vec<LabelRow>,
    }
    let parsed: Body_ = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidJson, format!("{{\"labels\": [...]}} expected: {e}"))
    })?;
    let rows = parsed.labels.iter().map(|r| (r.id.as_str(), r.text.as_str(), r.label.as_str()));
    check_rows(rows, MAX_LABEL_ROWS, s.limits.max_content_length, "labels")?;
    if let Some(index) = parsed.labels.iter().position(|r| r.id.is_empty()) {
        let mut e =
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::ValidationFailed, "id must be 1 to 256 bytes");
        e.details = Some(json!({ "what": "labels", "index": index }));
        return Err(e);
    }
    let stream = s.labels.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::LabelsUnavailable,
            "this service has no Redis to keep labels in",
        )
    })?;
    let ids = stream.append(&parsed.labels, now_ms()).await.map_err(|e| {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::RedisUnavailable, format!("labels not stored: {e}"))
    })?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "appended": ids.len(), "stream": stream.key, "ids": ids }))).into_response())
}
