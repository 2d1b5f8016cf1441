//! The ingestion service's event routes: `POST /v1/events/ingest` and
//! `/v1/events/ingest-batch`, and `GET /v1/metrics`; platform webhooks come in
//! through [`Intake::admit`] (this type implements it). Order of checks: API key
//! (401, the route layer), content type (415), body size (413), JSON syntax (400),
//! schema (422), validator plugins (422), backpressure (503), then dedup + produce
//! to `events:raw` (503 if Redis fails). Everything answered 202 is in the stream.
//!
//! Redis is reached only through the [`EventSink`] and [`Backlog`] seams; this
//! module must not import another service (`screening`, `platforms`).

pub mod metrics;

use crate::api::auth::{RequireKey, protect};
use crate::api::{self, Accept, RequestId};
use crate::core::intake::{BatchAnswer, Intake, Outcome};
use crate::core::schema::{self, BatchBody, FieldError, Limits};
use crate::core::{ApiError, BoxFuture, Event, now_ms};
use crate::plugins::{PluginHost, PluginKind, to_wit};
use crate::streams::producer::{Entry, Produced};
use crate::streams::{Backlog, EventSink, StreamError};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use metrics::IngestMetrics;
use serde_json::Value;
use std::sync::Arc;

/// What the ingest routes share.
pub struct Ingest {
    /// Where accepted events go (the Redis producer in a service).
    pub sink: Arc<dyn EventSink>,
    /// Prefix of dedup keys (`Keys::dedup`).
    pub dedup_prefix: String,
    pub backlog: Arc<dyn Backlog>,
    pub metrics: IngestMetrics,
    pub plugins: Arc<PluginHost>,
    pub limits: Limits,
    pub api_keys: Arc<Vec<String>>,
    pub max_batch_events: usize,
    pub max_body_bytes: usize,
    /// Backlog at which to refuse with 503, or `None` when backpressure is off.
    pub backpressure_at: Option<u64>,
}

/// The event routes (keyed) and the JSON summary (open).
pub fn router(ingest: Arc<Ingest>) -> Router {
    let keyed =
        Router::new().route("/v1/events/ingest", post(ingest_one)).route("/v1/events/ingest-batch", post(ingest_batch));
    protect(keyed, RequireKey::api(ingest.api_keys.clone())).route("/v1/metrics", get(summary)).with_state(ingest)
}

impl Ingest {
    /// Content type and size, refusals counted by code.
    async fn read_body(&self, headers: &HeaderMap, body: Body) -> Result<axum::body::Bytes, ApiError> {
        let checked = api::read_body(headers, body, Accept::Json, self.max_body_bytes).await;
        checked.map(|b| b.bytes).inspect_err(|e| self.count_refusal(e.code))
    }

    fn backpressure(&self) -> Result<(), ApiError> {
        let depth = self.backlog.backlog();
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

    /// Validator plugins over the items that passed the native checks, then dedup +
    /// produce; one answer item per input.
    async fn ingest_many(
        &self,
        mut results: Vec<Result<Event, Vec<FieldError>>>,
        ids: Vec<Option<Value>>,
        request_id: &str,
        received: u64,
    ) -> Result<BatchAnswer, ApiError> {
        self.metrics.received.inc_by(results.len() as u64);
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
        let produced = if entries.is_empty() {
            Vec::new()
        } else {
            self.sink.produce(entries).await.map_err(|e| self.stream_error(e))?
        };
        let mut produced = produced.into_iter();
        let items: Vec<Outcome> = results
            .into_iter()
            .zip(ids)
            .map(|(result, id)| match result {
                Ok(event) => match produced.next() {
                    Some(Produced::Accepted { stream_id }) => Outcome::Accepted { event_id: event.event_id, stream_id },
                    Some(Produced::Duplicate { duplicate_of }) => {
                        Outcome::Duplicate { event_id: event.event_id, duplicate_of }
                    }
                    None => Outcome::Error { event_id: event.event_id },
                },
                Err(violations) => {
                    self.count_rejected(&violations);
                    Outcome::Rejected { event_id: id, violations }
                }
            })
            .collect();
        let answer = BatchAnswer { items };
        self.metrics.count("accepted", answer.accepted());
        self.metrics.count("duplicate", answer.duplicates());
        Ok(answer)
    }
}

impl Intake for Ingest {
    fn limits(&self) -> &Limits {
        &self.limits
    }

    fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }

    fn count_refusal(&self, code: &str) {
        if code != "unauthorized" {
            self.metrics.rejections.with_label_values(&[code]).inc();
        }
    }

    fn admit<'a>(
        &'a self,
        results: Vec<Result<Event, Vec<FieldError>>>,
        ids: Vec<Option<Value>>,
        request_id: &'a str,
        received: u64,
    ) -> BoxFuture<'a, Result<BatchAnswer, ApiError>> {
        Box::pin(self.ingest_many(results, ids, request_id, received))
    }
}

async fn ingest_one(
    State(s): State<Arc<Ingest>>,
    Extension(rid): Extension<RequestId>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = s.read_body(&headers, body).await?;
    let received = now_ms();
    let event = match schema::parse_event(&bytes, &s.limits, received) {
        Err(schema::EventRefused::Malformed(e)) => {
            s.metrics.received.inc();
            s.metrics.count("rejected", 1);
            s.count_refusal(e.code);
            return Err(e);
        }
        other => other.map_err(schema::EventRefused::into_field_errors),
    };
    let answer = s.ingest_many(vec![event], vec![None], &rid.0, received).await?;
    Ok(match answer.items.into_iter().next() {
        Some(accepted @ Outcome::Accepted { .. }) => (StatusCode::ACCEPTED, Json(accepted)).into_response(),
        Some(duplicate @ Outcome::Duplicate { .. }) => (StatusCode::OK, Json(duplicate)).into_response(),
        Some(Outcome::Rejected { violations, .. }) => return Err(ApiError::invalid(&violations)),
        _ => return Err(s.stream_error(StreamError::Protocol("no result for the event".into()))),
    })
}

async fn ingest_batch(
    State(s): State<Arc<Ingest>>,
    Extension(rid): Extension<RequestId>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = s.read_body(&headers, body).await?;
    let batch = BatchBody::parse(&bytes, s.max_batch_events).inspect_err(|e| s.count_refusal(e.code))?;
    let received = now_ms();
    // Per item: parse and native checks; then the validators over all that passed.
    let results = batch
        .events
        .iter()
        .map(|raw| {
            schema::parse_event(raw.get().as_bytes(), &s.limits, received)
                .map_err(schema::EventRefused::into_field_errors)
        })
        .collect();
    Ok(s.ingest_many(results, batch.ids(), &rid.0, received).await?.into_response())
}

async fn summary(State(s): State<Arc<Ingest>>) -> Json<Value> {
    s.metrics.queue_depth.set(s.backlog.backlog() as i64);
    Json(s.metrics.summary())
}
