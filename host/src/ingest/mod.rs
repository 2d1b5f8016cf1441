//! The ingestion service's event routes: `POST /v1/events/ingest` and
//! `/v1/events/ingest-batch`; platform webhooks (`crate::platforms`) come in
//! through [`Ingest::ingest_many`] too. Order of checks: API key (401), content type (415),
//! body size (413), JSON syntax (400), schema (422), validator plugins (422),
//! backpressure (503), then dedup + produce to `events:raw` (503 if Redis fails).
//! Everything answered 202 is in the stream. Redis access lives in `streams`.

pub mod metrics;
pub mod schema;

use crate::api::{self, Accept, ApiError, RequestId};
use crate::event::{Event, now_ms};
use crate::plugins::{PluginHost, PluginKind, to_wit};
use crate::streams::StreamError;
use crate::streams::depth::Depth;
use crate::streams::producer::{Entry, Produced, Producer};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use metrics::IngestMetrics;
use schema::{FieldError, Limits, ParseError};
use serde_json::{Value, json};
use std::sync::Arc;

/// What the ingest routes share.
pub struct Ingest {
    pub producer: Producer,
    /// Prefix of dedup keys (`Keys::dedup`).
    pub dedup_prefix: String,
    pub depth: Arc<Depth>,
    pub metrics: IngestMetrics,
    pub plugins: Arc<PluginHost>,
    pub limits: Limits,
    pub api_keys: Arc<Vec<String>>,
    pub max_batch_events: usize,
    pub max_body_bytes: usize,
    /// Backlog at which to refuse with 503, or `None` when backpressure is off.
    pub backpressure_at: Option<u64>,
}

pub fn routes(ingest: Arc<Ingest>) -> Router {
    Router::new()
        .route("/v1/events/ingest", post(ingest_one))
        .route("/v1/events/ingest-batch", post(ingest_batch))
        .route("/v1/metrics", get(summary))
        .with_state(ingest)
}

impl Ingest {
    /// The body, refused with 413 past `MAX_BODY_BYTES` (and counted).
    pub(crate) async fn read_limited(&self, body: Body) -> Result<axum::body::Bytes, ApiError> {
        api::read_limited(body, self.max_body_bytes).await.inspect_err(|e| self.count_refusal(e))
    }

    /// Key, JSON content type and size, refusals counted by code.
    async fn read_body(&self, headers: &HeaderMap, body: Body) -> Result<axum::body::Bytes, ApiError> {
        let checked = api::read_body(headers, body, &self.api_keys, Accept::Json, self.max_body_bytes).await;
        checked.map(|b| b.bytes).inspect_err(|e| self.count_refusal(e))
    }

    fn count_refusal(&self, e: &ApiError) {
        if e.status != StatusCode::UNAUTHORIZED {
            self.metrics.rejections.with_label_values(&[e.code]).inc();
        }
    }

    pub(crate) fn reject_request(
        &self,
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> ApiError {
        self.metrics.rejections.with_label_values(&[code]).inc();
        ApiError::new(status, code, message)
    }

    fn malformed(&self, line: usize, column: usize, message: String) -> ApiError {
        self.reject_request(StatusCode::BAD_REQUEST, "malformed_json", format!("the body is not valid JSON: {message}"))
            .with_details(json!({ "line": line, "column": column }))
    }

    fn backpressure(&self) -> Result<(), ApiError> {
        let depth = self.depth.backlog();
        self.metrics.queue_depth.set(depth as i64);
        match self.backpressure_at {
            Some(limit) if depth >= limit => {
                self.metrics.backpressure.inc();
                Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "backpressure",
                    format!("screening is {depth} events behind (limit {limit}); retry after the Retry-After delay"),
                )
                .with_retry_after(1))
            }
            _ => Ok(()),
        }
    }

    fn stream_error(&self, e: StreamError) -> ApiError {
        self.metrics.redis_errors.inc();
        tracing::error!(error = %e, "produce failed");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "redis_unavailable",
            "the event store is unavailable; nothing was accepted, retry",
        )
        .with_retry_after(1)
    }

    /// Run the validator plugins over natively valid events (one call each).
    /// A faulting validator costs only its own verdict: the events are checked without it.
    fn validate(&self, events: &[Event]) -> Vec<Vec<FieldError>> {
        let mut out = vec![Vec::new(); events.len()];
        let validators = self.plugins.active(PluginKind::Validator);
        if validators.is_empty() || events.is_empty() {
            return out;
        }
        let wit = to_wit(events);
        for (plugin, _) in validators {
            match plugin.validate(&wit) {
                Ok(results) => {
                    for (errors, violations) in out.iter_mut().zip(results) {
                        errors.extend(violations.into_iter().map(|v| FieldError {
                            field: v.field,
                            code: v.code,
                            message: v.message,
                        }));
                    }
                }
                Err(e) => tracing::warn!(error = %e, "validator skipped"),
            }
        }
        out
    }

    fn entry(&self, event: &Event, request_id: &str, received_at_ms: u64) -> Entry {
        Entry {
            dedup_key: format!("{}{}", self.dedup_prefix, schema::dedup_key(event)),
            event_id: event.event_id.clone(),
            received_at_ms,
            request_id: request_id.to_string(),
            event_json: serde_json::to_string(event).expect("events serialise"),
        }
    }

    fn count_rejected(&self, errors: &[FieldError]) {
        self.metrics.count("rejected", 1);
        if let Some(first) = errors.first() {
            self.metrics.rejections.with_label_values(&[first.code.as_str()]).inc();
        }
    }
}

async fn ingest_one(
    State(s): State<Arc<Ingest>>,
    Extension(rid): Extension<RequestId>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = s.read_body(&headers, body).await?;
    s.metrics.count("received", 1);
    let received = now_ms();
    let event = match schema::parse(&bytes) {
        Err(ParseError::Malformed { line, column, message }) => return Err(s.malformed(line, column, message)),
        Err(ParseError::Field(e)) => Err(vec![e]),
        Ok(incoming) => schema::normalize(incoming, &s.limits, received),
    };
    let event = match event {
        Ok(e) => {
            let errors = s.validate(std::slice::from_ref(&e)).remove(0);
            if errors.is_empty() { Ok(e) } else { Err(errors) }
        }
        Err(errors) => Err(errors),
    };
    let event = event.map_err(|errors| {
        s.count_rejected(&errors);
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            format!("{} problem(s) with the event", errors.len()),
        )
        .with_details(json!({ "violations": errors }))
    })?;
    s.backpressure()?;
    let produced = s.producer.produce(vec![s.entry(&event, &rid.0, received)]).await.map_err(|e| s.stream_error(e))?;
    Ok(match produced.into_iter().next() {
        Some(Produced::Accepted { stream_id }) => {
            s.metrics.count("accepted", 1);
            (
                StatusCode::ACCEPTED,
                Json(json!({ "event_id": event.event_id, "status": "accepted", "stream_id": stream_id })),
            )
                .into_response()
        }
        Some(Produced::Duplicate { duplicate_of }) => {
            s.metrics.count("duplicate", 1);
            (
                StatusCode::OK,
                Json(json!({ "event_id": event.event_id, "status": "duplicate", "duplicate_of": duplicate_of })),
            )
                .into_response()
        }
        None => return Err(s.stream_error(StreamError::Protocol("no result for the event".into()))),
    })
}

/// `{"events": [ … ]}`: each item kept raw, so one bad item cannot sink the batch.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchBody {
    pub events: Vec<Box<serde_json::value::RawValue>>,
}

async fn ingest_batch(
    State(s): State<Arc<Ingest>>,
    Extension(rid): Extension<RequestId>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = s.read_body(&headers, body).await?;
    let batch: BatchBody = match schema::parse_as(&bytes) {
        Ok(b) => b,
        Err(ParseError::Malformed { line, column, message }) => return Err(s.malformed(line, column, message)),
        Err(ParseError::Field(e)) => {
            return Err(s
                .reject_request(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_batch",
                    "the body must be {\"events\": [ … ]}",
                )
                .with_details(json!({ "violations": [e] })));
        }
    };
    let n = batch.events.len();
    if n > s.max_batch_events {
        return Err(s.reject_request(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            format!("{n} events in one batch; at most MAX_BATCH_EVENTS = {}", s.max_batch_events),
        ));
    }
    s.metrics.count("received", n);
    let received = now_ms();
    // Per item: parse and native checks; then the validators over all that passed.
    let results: Vec<Result<Event, Vec<FieldError>>> = batch
        .events
        .iter()
        .map(|raw| match schema::parse(raw.get().as_bytes()) {
            Ok(incoming) => schema::normalize(incoming, &s.limits, received),
            Err(ParseError::Field(e)) => Err(vec![e]),
            Err(ParseError::Malformed { message, .. }) => {
                Err(vec![FieldError::new("event", "malformed_json", message)])
            }
        })
        .collect();
    let ids = batch
        .events
        .iter()
        .map(|raw| serde_json::from_str::<Value>(raw.get()).ok().and_then(|v| v.get("event_id").cloned()))
        .collect();
    Ok(s.ingest_many(results, ids, &rid.0, received).await?.into_response())
}

/// What became of each item of a batch (the batch route's and webhooks' answer).
pub struct BatchAnswer {
    pub accepted: usize,
    pub duplicates: usize,
    pub rejected: usize,
    pub items: Vec<Value>,
}

impl IntoResponse for BatchAnswer {
    fn into_response(self) -> Response {
        let status = if self.accepted > 0 { StatusCode::ACCEPTED } else { StatusCode::OK };
        let body = json!({ "accepted": self.accepted, "duplicates": self.duplicates, "rejected": self.rejected, "items": self.items });
        (status, Json(body)).into_response()
    }
}

impl Ingest {
    /// Validator plugins over the items that passed the native checks, then dedup +
    /// produce; one answer item per input (`ids`: what to call rejected items).
    pub(crate) async fn ingest_many(
        &self,
        mut results: Vec<Result<Event, Vec<FieldError>>>,
        ids: Vec<Option<Value>>,
        request_id: &str,
        received: u64,
    ) -> Result<BatchAnswer, ApiError> {
        let valid_idx: Vec<usize> = (0..results.len()).filter(|i| results[*i].is_ok()).collect();
        let valid: Vec<Event> = valid_idx.iter().map(|i| results[*i].as_ref().expect("valid").clone()).collect();
        for (i, errors) in valid_idx.iter().zip(self.validate(&valid)) {
            if !errors.is_empty() {
                results[*i] = Err(errors);
            }
        }
        let entries: Vec<Entry> =
            results.iter().filter_map(|r| r.as_ref().ok()).map(|e| self.entry(e, request_id, received)).collect();
        if !entries.is_empty() {
            self.backpressure()?;
        }
        let mut produced = self.producer.produce(entries).await.map_err(|e| self.stream_error(e))?.into_iter();
        let (mut accepted, mut duplicates, mut rejected) = (0, 0, 0);
        let items: Vec<Value> = results
            .into_iter()
            .zip(ids)
            .enumerate()
            .map(|(index, (result, id))| match result {
                Ok(event) => match produced.next() {
                    Some(Produced::Accepted { stream_id }) => {
                        accepted += 1;
                        json!({ "index": index, "event_id": event.event_id, "status": "accepted", "stream_id": stream_id })
                    }
                    Some(Produced::Duplicate { duplicate_of }) => {
                        duplicates += 1;
                        json!({ "index": index, "event_id": event.event_id, "status": "duplicate", "duplicate_of": duplicate_of })
                    }
                    None => json!({ "index": index, "event_id": event.event_id, "status": "error" }),
                },
                Err(errors) => {
                    rejected += 1;
                    self.count_rejected(&errors);
                    json!({ "index": index, "event_id": id, "status": "rejected", "violations": errors })
                }
            })
            .collect();
        self.metrics.count("accepted", accepted);
        self.metrics.count("duplicate", duplicates);
        Ok(BatchAnswer { accepted, duplicates, rejected, items })
    }
}

async fn summary(State(s): State<Arc<Ingest>>) -> Json<Value> {
    s.metrics.queue_depth.set(s.depth.backlog() as i64);
    Json(s.metrics.summary())
}
