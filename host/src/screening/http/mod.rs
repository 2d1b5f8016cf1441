//! Screening's HTTP side: `POST /v1/risk/screen` (JSON or the seed's form),
//! `/v1/risk/screen-batch`, `GET /v1/metrics`, and the admin routes (`admin`).

mod admin;

use crate::api::auth::{RequireKey, protect};
use crate::api::{Accept, Checked, ReadsBody};
use crate::screening::Screener;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use palisade_core::audit::AuditSink;
use palisade_core::schema::{self, BatchBody, Limits};
use palisade_core::{ApiError, BodyLimits, ErrorCode, Event, now_ms};
use palisade_detect::predict::Prediction;
use palisade_plugins::validators;
use palisade_streams::Backlog;
use palisade_streams::labels::LabelStream;
use serde_json::{Value, json};
use std::sync::Arc;

/// State of the synchronous screening routes and the JSON summary.
pub struct ScreenApi {
    pub screener: Arc<Screener>,
    pub api_keys: Arc<Vec<String>>,
    pub limits: Limits,
    pub body: palisade_core::BodyLimits,
    pub max_batch_events: usize,
    /// Keys whose answers carry similar past events' text (`SIMILAR_EVENTS_TEXT_KEYS`).
    pub past_text_keys: Arc<Vec<String>>,
    /// The `events:raw` backlog (the summary's queue lag).
    pub backlog: Arc<dyn Backlog>,
    /// Keys for `/v1/admin/classifier…` and `/v1/admin/labels`.
    pub admin_api_keys: Arc<Vec<String>>,
    /// Where reviewer labels go (`None`: no Redis behind this router).
    pub labels: Option<LabelStream>,
    /// Where promotions and discards of shadow candidates are recorded.
    pub audit: Option<Arc<dyn AuditSink>>,
    /// Where a classifier rollback is published for the other replicas.
    pub control: Option<Arc<palisade_streams::control::ControlStream>>,
    /// Backtest jobs (`POST /v1/admin/backtests`).
    pub backtests: Arc<crate::screening::backtest::jobs::Jobs>,
    /// Where stream backtests read history.
    pub history: crate::screening::backtest::History,
}

/// The screening routes (keyed) and `GET /v1/metrics` (open).
pub fn router(api: Arc<ScreenApi>) -> Router {
    let keyed =
        Router::new().route("/v1/risk/screen", post(screen_one)).route("/v1/risk/screen-batch", post(screen_batch));
    protect(keyed, RequireKey::api(api.api_keys.clone()))
        .merge(protect(admin::routes(), RequireKey::admin(api.admin_api_keys.clone())))
        .route("/v1/metrics", get(summary))
        .with_state(api)
}

impl ScreenApi {
    /// The validator plugins over checked events: the 422 answer for the first
    /// refused one (with `details.index` in a batch), as ingest would refuse it.
    fn policy_violations(&self, events: &[Event]) -> Option<ApiError> {
        let results = validators::validate(&self.screener.plugins, events);
        let (index, violations) = results.into_iter().enumerate().find(|(_, v)| !v.is_empty())?;
        let mut error = ApiError::invalid(&violations);
        if events.len() > 1 {
            error.details = Some(json!({ "index": index, "error": error.details.take() }));
        }
        Some(error)
    }

    /// Predictions as a JSON array, serialised once; similar past events carry
    /// their text only for a key in `SIMILAR_EVENTS_TEXT_KEYS`.
    fn answer(&self, headers: &HeaderMap, predictions: &[Prediction]) -> Vec<Value> {
        let Value::Array(mut answers) = json!(predictions) else { return Vec::new() };
        let key = headers.get("api-key").map(|k| k.as_bytes()).unwrap_or_default();
        if self.past_text_keys.iter().any(|k| bool::from(subtle::ConstantTimeEq::ct_eq(k.as_bytes(), key))) {
            for (answer, p) in answers.iter_mut().zip(predictions) {
                let Some(past) = answer["similar_events"].as_array_mut() else { continue };
                for (n, found) in past.iter_mut().zip(&p.similar_events) {
                    n["text"] = Value::from(found.text.as_ref());
                }
            }
        }
        answers
    }

    /// Screen on a blocking thread; a panic there answers 500 `screening_failed`
    /// (counted, and `/ready` turns `degraded`), never an empty answer.
    async fn run(&self, events: Vec<Event>) -> Result<Vec<Prediction>, ApiError> {
        let screener = self.screener.clone();
        let n = events.len() as u64;
        // The stages' spans stay under this request's span.
        let span = tracing::Span::current();
        let out = tokio::task::spawn_blocking(move || span.in_scope(|| screener.screen(events))).await.map_err(|e| {
            let message = self.screener.metrics.faults.join_failed("screen", e);
            ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::ScreeningFailed,
                format!("screening failed on this server ({message}); the event was not screened: retry, and report it if it lasts"),
            )
        })?;
        self.screener.metrics.events.with_label_values(&["caller"]).inc_by(n);
        Ok(out)
    }
}

impl ReadsBody for ScreenApi {
    fn accepts(&self) -> Accept {
        Accept::JsonOrForm
    }

    fn body_limits(&self) -> BodyLimits {
        self.body
    }
}

/// The seed's form: `event_id` and `content` (and optionally the other event
/// fields); `event_type`, `platform` and `user_id` default to the sample's. The
/// body is decoded as a browser encodes a form (`serde_urlencoded`: `+` is a
/// space, `%XX` a byte; an escape that is not one stays as written, bytes that
/// are not UTF-8 become U+FFFD), and the fields become a JSON object checked by
/// the JSON route's own path (`schema::parse_event`), so an unknown field, a bad
/// value or a length is refused alike.
fn form_event(bytes: &[u8], limits: &Limits) -> Result<Event, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(bytes).map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::MalformedForm, format!("the form body does not decode: {e}"))
    })?;
    let sample = Event::sample("");
    let mut fields = serde_json::Map::new();
    for (k, v) in [("event_type", sample.event_type), ("platform", sample.platform), ("user_id", sample.user_id)] {
        fields.insert(k.into(), Value::String(v));
    }
    fields.extend(pairs.into_iter().map(|(k, v)| (k, Value::String(v))));
    let json = Value::Object(fields).to_string();
    schema::parse_event(json.as_bytes(), limits, now_ms()).map_err(ApiError::from)
}

async fn screen_one(
    State(s): State<Arc<ScreenApi>>,
    headers: HeaderMap,
    Checked { bytes, form, .. }: Checked,
) -> Result<Json<Value>, ApiError> {
    let event = if form { form_event(&bytes, &s.limits)? } else { schema::parse_event(&bytes, &s.limits, now_ms())? };
    if let Some(refused) = s.policy_violations(std::slice::from_ref(&event)) {
        return Err(refused);
    }
    let out = s.run(vec![event]).await?;
    Ok(Json(s.answer(&headers, &out).pop().unwrap_or_default()))
}

async fn screen_batch(
    State(s): State<Arc<ScreenApi>>,
    headers: HeaderMap,
    Checked { bytes, .. }: Checked,
) -> Result<Json<Value>, ApiError> {
    let batch = BatchBody::parse(&bytes, s.max_batch_events)?;
    let mut events = Vec::with_capacity(batch.events.len());
    for (index, raw) in batch.events.iter().enumerate() {
        let event = schema::parse_event(raw.get().as_bytes(), &s.limits, now_ms()).map_err(|refused| {
            let mut e = ApiError::from(refused);
            e.details = Some(json!({ "index": index, "error": e.details.take() }));
            e
        })?;
        events.push(event);
    }
    if let Some(refused) = s.policy_violations(&events) {
        return Err(refused);
    }
    let out = s.run(events).await?;
    let predictions = Value::Array(s.answer(&headers, &out));
    Ok(Json(Value::Object([("predictions".to_string(), predictions)].into_iter().collect())))
}

/// `GET /v1/metrics`: what the seed's troubleshooting reads (`.avg_latency_ms`).
async fn summary(State(s): State<Arc<ScreenApi>>) -> Json<Value> {
    let m = &s.screener.metrics;
    let routed = |d: &str| m.events.with_label_values(&[d]).get();
    let (hits, misses) = (m.cache.with_label_values(&["hit"]).get(), m.cache.with_label_values(&["miss"]).get());
    let screened: u64 = ["reasoning_queue", "low_risk", "caller"].iter().map(|d| routed(d)).sum();
    let batch_seconds = m.batch_latency.get_sample_sum();
    let batched_events = m.risk.get_sample_count(); // one risk observation per screened event
    Json(json!({
        "events_screened": screened,
        "routed": {
            "reasoning_queue": routed("reasoning_queue"),
            "low_risk": routed("low_risk"),
            "dead_letter": routed("dead_letter"),
        },
        "screened_by_http": routed("caller"),
        "avg_latency_ms": if batched_events == 0 { 0.0 } else { batch_seconds * 1e3 / batched_events as f64 },
        "batches": m.batch_latency.get_sample_count(),
        "batch_p50_ms": palisade_core::telemetry::quantile(&m.batch_latency, 0.5) * 1e3,
        "batch_p99_ms": palisade_core::telemetry::quantile(&m.batch_latency, 0.99) * 1e3,
        "queue_lag": s.backlog.backlog(),
        "redis_ok": s.backlog.redis_ok(),
        "cache_hit_rate": if hits + misses == 0 { 0.0 } else { hits as f64 / (hits + misses) as f64 },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields_decode() {
        let limits = Limits { min_content_length: 1, max_content_length: 20, require_author: false };
        let e = form_event(b"event_id=e-0&content=hi+there%21%e2%9C%93", &limits).unwrap();
        assert_eq!(e.content, "hi there!\u{2713}");
        // As a browser's form parser: a stray `%` stays as written, bytes that are
        // not UTF-8 become U+FFFD.
        for (raw, want) in [("%zz", "%zz"), ("50%2", "50%2"), ("%ff%fe", "\u{fffd}\u{fffd}")] {
            let e = form_event(format!("event_id=e-0&content={raw}").as_bytes(), &limits).unwrap();
            assert_eq!(e.content, want, "{raw}");
        }
        let e = form_event(b"event_id=e-1&content=you+idiot", &limits).unwrap();
        assert_eq!((e.event_id.as_str(), e.content.as_str()), ("e-1", "you idiot"));
        assert_eq!(form_event(b"content=x", &limits).unwrap_err().code, "validation_failed");
        // Unknown fields are refused as the JSON route refuses them, however many.
        let unknown = form_event(b"event_id=e-1&content=hi&contnet=x", &limits).unwrap_err();
        assert_eq!(unknown.details.unwrap()["violations"][0]["code"], "unknown_field");
        let many: String = (0..100_000).map(|i| format!("&f{i}=x")).collect();
        let unknown = form_event(format!("event_id=e-1&content=hi{many}").as_bytes(), &limits).unwrap_err();
        assert_eq!(unknown.status, axum::http::StatusCode::UNPROCESSABLE_ENTITY);
        // The same limits as JSON: content length and id size.
        let long = form_event(b"event_id=e-2&content=far+too+long+for+these+limits", &limits).unwrap_err();
        assert_eq!(long.details.unwrap()["violations"][0]["code"], "too_long");
        let id = format!("event_id={}&content=hi", "x".repeat(300));
        assert_eq!(
            form_event(id.as_bytes(), &limits).unwrap_err().details.unwrap()["violations"][0]["code"],
            "too_long"
        );
    }

    /// Percent-encode everything but letters and digits.
    fn form_encode(text: &str) -> String {
        text.bytes()
            .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
            .collect()
    }

    proptest::proptest! {
        /// The form route refuses exactly what the JSON route refuses, for the
        /// same reasons, and accepts the same event.
        #[test]
        fn the_form_and_json_forms_are_checked_alike(event_id in "\\PC{0,300}", content in "\\PC{0,30}") {
            let limits = Limits { min_content_length: 2, max_content_length: 20, require_author: false };
            let form = format!("event_id={}&content={}", form_encode(&event_id), form_encode(&content));
            let from_form = form_event(form.as_bytes(), &limits);
            let sample = Event::sample("");
            let json = serde_json::json!({"event_id": event_id, "content": content, "event_type": sample.event_type,
                "platform": sample.platform, "user_id": sample.user_id});
            let from_json = schema::parse_event(json.to_string().as_bytes(), &limits, 1)
                .map_err(schema::EventRefused::into_field_errors);
            match (from_form, from_json) {
                (Ok(a), Ok(b)) => proptest::prop_assert_eq!((a.event_id, a.content), (b.event_id, b.content)),
                (Err(a), Err(b)) => {
                    let codes = |v: &serde_json::Value| -> Vec<String> {
                        v["violations"].as_array().unwrap().iter().map(|x| format!("{}:{}", x["field"], x["code"])).collect()
                    };
                    let b: Vec<String> = b.iter().map(|x| format!("\"{}\":\"{}\"", x.field, x.code)).collect();
                    proptest::prop_assert_eq!(codes(&a.details.unwrap()), b);
                }
                (a, b) => proptest::prop_assert!(false, "form {:?} but JSON {:?}", a.map(|e| e.event_id), b.map(|e| e.event_id)),
            }
        }

        #[test]
        fn any_form_body_gets_an_answer(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let limits = Limits { min_content_length: 1, max_content_length: 20, require_author: false };
            let _ = form_event(&bytes, &limits);
        }
    }
}
