//! Platform adapters as the ingestion service (`:8001`) serves them:
//! - `POST /v1/platforms/{platform}/webhook`: the raw body and headers go to the
//!   adapter plugin that speaks for `{platform}`; its events take the ingest batch
//!   path (checks, validators, dedup, produce), its direct reply (a challenge, a
//!   PONG) goes back as written. No `api-key`: platforms sign their requests and the
//!   adapter checks the signature (a failed check is 401, another refusal 400).
//! - `POST /v1/platforms/{platform}/posts` and `/actions` (`api-key`): a bot's post or
//!   moderation action, optionally screened by the heuristic plugins first, is
//!   formatted by the adapter, sent by [`sender`], and the platform's answer is read
//!   back by the adapter.
//!
//! The host does all network I/O; adapters only verify, parse and format. This
//! module must not touch Redis or import another service: events go through the
//! [`Intake`] seam, which the ingest service implements.

pub mod metrics;
pub mod sender;

use crate::api::auth::{RequireKey, protect};
use crate::api::{Accept, RequestId, read_body, read_limited};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use metrics::AdapterMetrics;
use palisade_core::BodyLimits;
use palisade_core::intake::Intake;
use palisade_core::schema::{self, IncomingEvent};
use palisade_core::{ApiError, ErrorCode, Event, now_ms};
use palisade_plugins::bindings::{AdapterError, Moderation, Outbound, OutboundAction, OutboundPost};
use palisade_plugins::{CallError, Plugin, PluginHost, PluginKind, rules};
use sender::{SendError, Sender};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// What the platform routes share.
pub struct Platforms {
    /// Where webhook events go (the ingest pipeline).
    pub intake: Arc<dyn Intake>,
    pub plugins: Arc<PluginHost>,
    pub sender: Sender,
    pub metrics: AdapterMetrics,
    pub api_keys: Arc<Vec<String>>,
    /// Pre-post screening: a post whose heuristic score is above this is refused.
    pub prepost_threshold: Option<f32>,
    /// `WEBHOOK_MAX_BODY_BYTES`: a larger webhook is refused (413) before any
    /// adapter sees it (platforms send kilobytes).
    pub webhook_max_bytes: usize,
}

/// Posts and actions (keyed); webhooks (open: the adapter checks the platform's signature).
pub fn router(platforms: Arc<Platforms>) -> Router {
    let keyed = Router::new()
        .route("/v1/platforms/{platform}/posts", post(post_message))
        .route("/v1/platforms/{platform}/actions", post(act));
    protect(keyed, RequireKey::api(platforms.api_keys.clone()))
        .route("/v1/platforms/{platform}/webhook", post(webhook))
        .with_state(platforms)
}

/// Adapter refusals that mean "this request is not from who it claims": 401.
const SIGNATURE_CODES: &[&str] = &["missing_signature", "invalid_signature", "stale_timestamp", "invalid_timestamp"];

impl Platforms {
    /// The active adapter that speaks for `platform`, or 404.
    fn adapter(&self, platform: &str) -> Result<Arc<Plugin>, ApiError> {
        self.plugins
            .active(PluginKind::PlatformAdapter)
            .into_iter()
            .find(|(_, v)| v.platform().is_ok_and(|name| name == platform))
            .map(|(p, _)| p)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    ErrorCode::UnknownPlatform,
                    format!("no active adapter plugin speaks for `{platform}` (GET /v1/admin/plugins lists them)"),
                )
            })
    }

    fn count_webhook(&self, platform: &str, outcome: &str) {
        self.metrics.webhooks.with_label_values(&[platform, outcome]).inc();
    }

    fn count_outbound(&self, platform: &str, kind: &str, outcome: &str) {
        self.metrics.outbound.with_label_values(&[platform, kind, outcome]).inc();
    }
}

fn adapter_failed(e: CallError) -> ApiError {
    ApiError::new(StatusCode::BAD_GATEWAY, ErrorCode::AdapterFailed, e.to_string())
}

async fn webhook(
    State(s): State<Arc<Platforms>>,
    Extension(rid): Extension<RequestId>,
    Path(platform): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let adapter = s.adapter(&platform).inspect_err(|_| s.count_webhook("unknown", "unknown_platform"))?;
    let limits = BodyLimits { max_bytes: s.webhook_max_bytes, ..s.intake.body_limits() };
    let bytes = read_limited(body, limits).await.inspect_err(|_| s.count_webhook(&platform, "too_large"))?;
    let header_list: Vec<(String, String)> =
        headers.iter().filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_string(), v.to_string()))).collect();
    let inbound = adapter
        .with_adapter(|v| v.parse_inbound(&header_list, &bytes))
        .map_err(|e| {
            s.count_webhook(&platform, "failed");
            adapter_failed(e)
        })?
        .map_err(|e| {
            let signature = SIGNATURE_CODES.contains(&e.code.as_str());
            let (status, code, outcome) = if signature {
                (StatusCode::UNAUTHORIZED, ErrorCode::SignatureRejected, "signature_rejected")
            } else {
                (StatusCode::BAD_REQUEST, ErrorCode::AdapterRefused, "refused")
            };
            s.count_webhook(&platform, outcome);
            ApiError::new(status, code, e.message).with_details(json!({ "code": e.code }))
        })?;
    let received = now_ms();
    let answer = if inbound.events.is_empty() {
        None
    } else {
        let ids = inbound.events.iter().map(|e| Some(json!(e.event_id))).collect();
        let limits = s.intake.limits();
        let results = inbound
            .events
            .into_iter()
            .map(|e| schema::normalize(IncomingEvent::from(Event::from(e)), limits, received))
            .collect();
        let answer = s.intake.admit(results, ids, &rid.0, received).await?;
        let outcome = match (answer.accepted(), answer.duplicates()) {
            (a, _) if a > 0 => "accepted",
            (_, d) if d > 0 => "duplicate",
            _ => "rejected",
        };
        s.count_webhook(&platform, outcome);
        Some(answer)
    };
    Ok(match (inbound.reply, answer) {
        (Some(reply), answer) => {
            if answer.is_none() {
                s.count_webhook(&platform, "replied");
            }
            let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
            let mut response = (status, reply.body).into_response();
            for (k, v) in reply.headers {
                if let (Ok(k), Ok(v)) = (header::HeaderName::try_from(k), header::HeaderValue::try_from(v)) {
                    response.headers_mut().insert(k, v);
                }
            }
            response
        }
        (None, Some(answer)) => answer.into_response(),
        (None, None) => {
            s.count_webhook(&platform, "ignored");
            (StatusCode::OK, Json(json!({ "accepted": 0, "duplicates": 0, "rejected": 0, "items": [] })))
                .into_response()
        }
    })
}

/// `POST /v1/platforms/{platform}/posts`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PostBody {
    channel_id: String,
    content: String,
    reply_to: Option<String>,
    idempotency_key: Option<String>,
}

/// `POST /v1/platforms/{platform}/actions`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionBody {
    channel_id: String,
    action: Action,
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum Action {
    DeleteMessage { message_id: String },
    TimeoutUser { user_id: String, seconds: u32 },
    BanUser { user_id: String },
    AddReaction { message_id: String, emoji: String },
}

async fn post_message(
    State(s): State<Arc<Platforms>>,
    Path(platform): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let p: PostBody = read_json(&s, &headers, body).await?;
    let adapter = s.adapter(&platform)?;
    if let Some(threshold) = s.prepost_threshold {
        screen_before_posting(&s, &platform, &p, threshold)?;
    }
    let post = Outbound::Post(OutboundPost {
        channel_id: p.channel_id,
        content: p.content,
        reply_to: p.reply_to,
        idempotency_key: p.idempotency_key,
    });
    deliver(&s, &platform, "post", &adapter, post).await
}

async fn act(
    State(s): State<Arc<Platforms>>,
    Path(platform): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let a: ActionBody = read_json(&s, &headers, body).await?;
    let adapter = s.adapter(&platform)?;
    let action = match a.action {
        Action::DeleteMessage { message_id } => Moderation::DeleteMessage(message_id),
        Action::TimeoutUser { user_id, seconds } => Moderation::TimeoutUser((user_id, seconds)),
        Action::BanUser { user_id } => Moderation::BanUser(user_id),
        Action::AddReaction { message_id, emoji } => Moderation::AddReaction((message_id, emoji)),
    };
    let request = Outbound::Action(OutboundAction { channel_id: a.channel_id, action, reason: a.reason });
    deliver(&s, &platform, "action", &adapter, request).await
}

/// Content type, size, JSON syntax (400) and shape (422) of an outbound request.
async fn read_json<T: serde::de::DeserializeOwned>(
    s: &Platforms,
    headers: &HeaderMap,
    body: Body,
) -> Result<T, ApiError> {
    let checked = read_body(headers, body, Accept::Json, s.intake.body_limits()).await?;
    schema::parse_body(&checked.bytes, ErrorCode::InvalidRequest, "see /openapi.json for the request's fields")
}

/// Refuse a bot's post whose heuristic score is above the threshold, with the verdict.
fn screen_before_posting(s: &Platforms, platform: &str, p: &PostBody, threshold: f32) -> Result<(), ApiError> {
    let event = Event {
        event_id: p.idempotency_key.clone().unwrap_or_else(|| "pre-post".into()),
        event_type: "bot_post".into(),
        platform: platform.into(),
        user_id: "bot".into(),
        author_id: None,
        channel_id: Some(p.channel_id.clone()),
        content: p.content.clone(),
        timestamp_ms: now_ms(),
        metadata: Vec::new(),
    };
    let verdict = rules::score(&s.plugins, std::slice::from_ref(&event)).remove(0);
    if verdict.score <= threshold {
        return Ok(());
    }
    s.count_outbound(platform, "post", "screened_out");
    let hits: Vec<&str> = verdict.verdicts.iter().flat_map(|v| v.hits.iter().map(|h| h.rule.as_str())).collect();
    Err(ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::ContentRefused,
        format!("the post scores {:.2} ({}), above the threshold {threshold}", verdict.score, verdict.category),
    )
    .with_details(
        json!({ "score": verdict.score, "category": verdict.category, "threshold": threshold, "hits": hits }),
    ))
}

/// Format with the adapter, send, and read the platform's answer with the adapter.
async fn deliver(
    s: &Platforms,
    platform: &str,
    kind: &'static str,
    adapter: &Plugin,
    request: Outbound,
) -> Result<Response, ApiError> {
    let count = |outcome: &str| s.count_outbound(platform, kind, outcome);
    let refused = |e: AdapterError| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::AdapterRefused, e.message)
            .with_details(json!({ "code": e.code }))
    };
    let http = adapter
        .with_adapter(|v| v.format_outbound(&request))
        .map_err(|e| {
            count("failed");
            adapter_failed(e)
        })?
        .map_err(|e| {
            count("refused");
            refused(e)
        })?;
    let sent = s.sender.send(platform, http).await.map_err(|e| {
        let (status, code, outcome) = match &e {
            SendError::NoBase { .. } | SendError::NoToken { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::PlatformNotConfigured, "not_configured")
            }
            SendError::BadRequest(_) => (StatusCode::BAD_GATEWAY, ErrorCode::AdapterFailed, "failed"),
            SendError::RateLimited { .. } => {
                (StatusCode::TOO_MANY_REQUESTS, ErrorCode::PlatformRateLimited, "rate_limited")
            }
            SendError::Unreachable { .. } => (StatusCode::BAD_GATEWAY, ErrorCode::PlatformUnreachable, "unreachable"),
        };
        count(outcome);
        let error = ApiError::new(status, code, e.to_string());
        match e {
            SendError::RateLimited { retry_after_s, attempts } => {
                error.with_retry_after(retry_after_s).with_details(json!({ "attempts": attempts }))
            }
            SendError::Unreachable { attempts, .. } => error.with_details(json!({ "attempts": attempts })),
            _ => error,
        }
    })?;
    let status = sent.response.status;
    let delivery = adapter
        .with_adapter(|v| v.parse_response(&sent.response))
        .map_err(|e| {
            count("failed");
            adapter_failed(e)
        })?
        .map_err(|e| {
            count("platform_error");
            ApiError::new(StatusCode::BAD_GATEWAY, ErrorCode::PlatformRefused, format!("{platform}: {}", e.message))
                .with_details(json!({ "code": e.code, "platform_status": status, "attempts": sent.attempts }))
        })?;
    count("delivered");
    Ok(Json(json!({ "platform": platform, "id": delivery.id, "platform_status": status, "attempts": sent.attempts }))
        .into_response())
}
