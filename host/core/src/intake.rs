//! The seam between event sources that are not the ingest routes (platform
//! webhooks) and the ingest pipeline: the source turns its payload into checked
//! events, [`Intake::admit`] runs validators, dedup and produce, and answers per item.
//! The ingest service implements it; platform routes hold only this trait.

use super::BoxFuture;
use super::error::ApiError;
use super::event::Event;
use super::schema::{FieldError, Limits};
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};

/// What became of one event.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// In the stream under `stream_id`.
    Accepted { event_id: String, stream_id: String },
    /// Seen within the dedup window; the first one is `duplicate_of`.
    Duplicate { event_id: String, duplicate_of: String },
    /// Refused for these problems (`event_id` as sent, if any).
    Rejected { event_id: Option<Value>, violations: Vec<FieldError> },
    /// The store gave no answer for it.
    Error { event_id: String },
}

/// What became of each item of a batch (the batch route's and webhooks' answer).
pub struct BatchAnswer {
    pub items: Vec<Outcome>,
}

impl BatchAnswer {
    fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.items.iter().filter(|o| f(o)).count()
    }
    pub fn accepted(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Accepted { .. }))
    }
    pub fn duplicates(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Duplicate { .. }))
    }
    pub fn rejected(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Rejected { .. }))
    }
}

/// One answer item: the outcome and the item's place in the batch.
#[derive(Serialize)]
struct Item<'a> {
    index: usize,
    #[serde(flatten)]
    outcome: &'a Outcome,
}

impl IntoResponse for BatchAnswer {
    /// 202 when anything was accepted, else 200; counts and one item per input.
    fn into_response(self) -> Response {
        let accepted = self.accepted();
        let status = if accepted > 0 { StatusCode::ACCEPTED } else { StatusCode::OK };
        let items: Vec<Item> = self.items.iter().enumerate().map(|(index, outcome)| Item { index, outcome }).collect();
        let body = json!({ "accepted": accepted, "duplicates": self.duplicates(), "rejected": self.rejected(), "items": items });
        (status, Json(body)).into_response()
    }
}

/// Where checked events go to be admitted (validators, backpressure, dedup, produce).
pub trait Intake: Send + Sync {
    /// The native checks' limits (the same for every input form).
    fn limits(&self) -> &Limits;

    /// How much request body the service reads, and how long it waits for it.
    fn body_limits(&self) -> super::BodyLimits;

    /// Admit the items that passed the native checks; one answer item per input
    /// (`ids`: what to call rejected items). `received` is the arrival time (ms).
    fn admit<'a>(
        &'a self,
        results: Vec<Result<Event, Vec<FieldError>>>,
        ids: Vec<Option<Value>>,
        request_id: &'a str,
        received: u64,
    ) -> BoxFuture<'a, Result<BatchAnswer, ApiError>>;
}
