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
use crate::api::{self, Accept, Checked};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use metrics::IngestMetrics;
use palisade_core::intake::{BatchAnswer, Intake, Outcome};
use palisade_core::schema::{self, BatchBody, FieldError, Limits};
use palisade_core::{ApiError, BodyLimits, BoxFuture, ErrorCode, Event, now_ms};
use palisade_plugins::{PluginHost, validators};
use palisade_streams::producer::{Entry, Produced};
use palisade_streams::{Backlog, EventSink, StreamError};
use serde_json::Value;
use std::sync::Arc;

/// What the ingest routes share.
pub struct Ingest {
    /// Where accepted events go (the Redis producer in a service).
    pub sink: Arc<dyn EventSink>,
    pub backlog: Arc<dyn Backlog>,
    pub metrics: IngestMetrics,
    pub plugins: Arc<PluginHost>,
    pub limits: Limits,
    pub api_keys: Arc<Vec<String>>,
    pub max_batch_events: usize,
    pub body: BodyLimits,
    /// Backlog at which to refuse with 503, or `None` when backpressure is off.
    pub backpressure_at: Option<u64>,
    /// Longest wait for the sink's answer (`REDIS_TIMEOUT_MS`).
    pub produce_timeout: std::time::Duration,
}

/// The event routes (keyed) and the JSON summary (open).
pub fn router(ingest: Arc<Ingest>) -> Router {
    let keyed =
        Router::new().route("/v1/events/ingest", post(ingest_one)).route("/v1/events/ingest-batch", post(ingest_batch));
    protect(keyed, RequireKey::api(ingest.api_keys.clone())).route("/v1/metrics", get(summary)).with_state(ingest)
}

impl Ingest {
    fn backpressure(&self) -> Result<(), ApiError> {
        let depth = self.backlog.backlog();
        self.metrics.queue_depth.set(depth as i64);
        match self.backpressure_at {
            Some(limit) if depth >= limit => {
                self.metrics.backpressure.inc();
                Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::Backpressure,
                    format!("screening is {depth} events behind (limit {limit}); retry after the Retry-After delay"),
                )
                .with_retry_after(1))
            }
            _ => Ok(()),
        }
    }

    /// The answer when the store failed: 503 `redis_unavailable` only when nothing
    /// can have been written; when the write may have happened (no answer in time),
    /// 503 `outcome_unknown` with `status: "unknown"` and the event ids, so the
    /// client retries them unchanged and dedup answers any stored one `duplicate`.
    fn stream_error(&self, e: StreamError, event_ids: &[&str]) -> ApiError {
        self.metrics.redis_errors.inc();
        // An outage fails every request: one line per 10 s, with how many it stands for
        // (`palisade_ingest_redis_errors_total` counts each).
        static FAILURES: std::sync::LazyLock<palisade_core::telemetry::Sampled> =
            std::sync::LazyLock::new(|| palisade_core::telemetry::Sampled::new(std::time::Duration::from_secs(10)));
        FAILURES.log(|skipped| tracing::error!(error = %e, failures_not_logged = skipped, "produce failed"));
        let error = match e {
            StreamError::Unknown(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::OutcomeUnknown,
                "the event store did not answer in time: these events may or may not be stored; retry them \
                 unchanged (a stored one answers `duplicate`)",
            )
            .with_details(serde_json::json!({ "status": "unknown", "event_ids": event_ids })),
            _ => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::RedisUnavailable,
                "the event store is unavailable; nothing was accepted, retry",
            ),
        };
        error.with_retry_after(1)
    }

    /// Dedup + produce within `produce_timeout` (past it the outcome is unknown:
    /// the call may still reach Redis).
    async fn produce(&self, entries: Vec<Entry>) -> Result<Vec<Produced>, StreamError> {
        let span = palisade_core::span!("produce", otel.kind = "client", events = entries.len());
        let produced = tracing::Instrument::instrument(self.sink.produce(entries), span);
        tokio::time::timeout(self.produce_timeout, produced)
            .await
            .unwrap_or_else(|_| Err(StreamError::Unknown("no answer within REDIS_TIMEOUT_MS".into())))
    }

    fn entry(&self, event: &Event, request_id: &str, received_at_ms: u64, traceparent: &Option<String>) -> Entry {
        Entry {
            traceparent: traceparent.clone(),
            dedup_hash: schema::dedup_key(event),
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
        for (i, errors) in valid_idx.iter().zip(validators::validate(&self.plugins, &valid)) {
            if !errors.is_empty() {
                results[*i] = Err(errors);
            }
        }
        let traceparent = palisade_core::telemetry::traces::traceparent(&tracing::Span::current());
        let entries: Vec<Entry> = results
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .map(|e| self.entry(e, request_id, received, &traceparent))
            .collect();
        if !entries.is_empty() {
            self.backpressure()?;
        }
        let produced = if entries.is_empty() {
            Vec::new()
        } else {
            self.produce(entries).await.map_err(|e| {
                let ids: Vec<&str> =
                    results.iter().filter_map(|r| r.as_ref().ok()).map(|e| e.event_id.as_str()).collect();
                self.stream_error(e, &ids)
            })?
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
                    Some(Produced::Failed { reason }) => {
                        tracing::error!(event_id = %event.event_id, %reason, "Redis refused an event");
                        Outcome::Error { event_id: event.event_id }
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

    fn body_limits(&self) -> BodyLimits {
        self.body
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

impl api::ReadsBody for Ingest {
    fn accepts(&self) -> Accept {
        Accept::Json
    }

    fn body_limits(&self) -> BodyLimits {
        self.body
    }
}

async fn ingest_one(
    State(s): State<Arc<Ingest>>,
    Checked { request_id, bytes, .. }: Checked,
) -> Result<Response, ApiError> {
    let received = now_ms();
    let event = match schema::parse_event(&bytes, &s.limits, received) {
        Err(schema::EventRefused::Malformed(e)) => {
            s.metrics.received.inc();
            s.metrics.count("rejected", 1);
            return Err(e);
        }
        other => other.map_err(schema::EventRefused::into_field_errors),
    };
    let answer = s.ingest_many(vec![event], vec![None], &request_id, received).await?;
    Ok(match answer.items.into_iter().next() {
        Some(accepted @ Outcome::Accepted { .. }) => (StatusCode::ACCEPTED, Json(accepted)).into_response(),
        Some(duplicate @ Outcome::Duplicate { .. }) => (StatusCode::OK, Json(duplicate)).into_response(),
        Some(Outcome::Rejected { violations, .. }) => return Err(ApiError::invalid(&violations)),
        _ => return Err(s.stream_error(StreamError::Protocol("the event was not stored".into()), &[])),
    })
}

async fn ingest_batch(
    State(s): State<Arc<Ingest>>,
    Checked { request_id, bytes, .. }: Checked,
) -> Result<Response, ApiError> {
    let batch = BatchBody::parse(&bytes, s.max_batch_events)?;
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
    Ok(s.ingest_many(results, batch.ids(), &request_id, received).await?.into_response())
}

async fn summary(State(s): State<Arc<Ingest>>) -> Json<Value> {
    s.metrics.queue_depth.set(s.backlog.backlog() as i64);
    Json(s.metrics.summary())
}
