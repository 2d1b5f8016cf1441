//! The one error answer every route gives: a status and the JSON body
//! `{ "error": code, "message": …, "details": … }` (plus `Retry-After` where a
//! retry helps). Messages say what to do; they never carry internals or keys.

use super::schema::FieldError;
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    pub details: Option<Value>,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), details: None, retry_after: None }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// Add a `Retry-After` header (seconds).
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// 400 `malformed_json`: the body is not JSON, with where it broke.
    pub fn malformed(line: usize, column: usize, message: &str) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::MalformedJson,
            format!("the body is not valid JSON: {message}"),
        )
        .with_details(json!({ "line": line, "column": column }))
    }

    /// 422 `validation_failed`: the event's problems, one per field.
    pub fn invalid(errors: &[FieldError]) -> Self {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::ValidationFailed,
            format!("{} problem(s) with the event", errors.len()),
        )
        .with_details(json!({ "violations": errors }))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.code.as_str(), "message": self.message });
        if let Some(d) = self.details {
            body["details"] = d;
        }
        let mut response = (self.status, Json(body)).into_response();
        // For middleware that counts answers by code (`count_refusals`).
        response.extensions_mut().insert(self.code);
        if let Some(s) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        response
    }
}

/// Every machine-readable code an error answer can carry (`"error"` in the
/// body). `openapi.json` lists them all (`x-error-codes`, checked by a test),
/// so a client can match on them; a new one is added here, there, and to the
/// route's documented answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorCode {
    AdapterFailed,
    AdapterRefused,
    AuditUnavailable,
    Backpressure,
    BacktestFailed,
    BacktestNotFound,
    BacktestRunning,
    BadRequest,
    BatchTooLarge,
    BodyTimeout,
    BodyTooLarge,
    CandidateUnloadable,
    ClassifierFiles,
    ClassifierRefused,
    ContentRefused,
    EmptyBatch,
    GateFailed,
    GateRefused,
    HeadersTooLarge,
    InternalError,
    InvalidBatch,
    InvalidJson,
    InvalidPluginName,
    InvalidRequest,
    LabelNotFound,
    LabelsUnavailable,
    MalformedBody,
    MalformedForm,
    MalformedJson,
    MethodNotAllowed,
    NoClassifier,
    NoPreviousVersion,
    NoShadows,
    NotFound,
    OutcomeUnknown,
    PlatformNotConfigured,
    PlatformRateLimited,
    PlatformRefused,
    PlatformUnreachable,
    PluginFiles,
    PluginNotFound,
    PromoteFailed,
    RateLimited,
    ReasonRequired,
    RedisUnavailable,
    Refused,
    ReloadFailed,
    RollbackFailed,
    ScreeningFailed,
    ShadowFiles,
    ShadowNotFound,
    SignatureRejected,
    TooManyConnections,
    Unauthorized,
    UnknownPlatform,
    Unprocessable,
    UnsupportedMediaType,
    UriTooLong,
    ValidationFailed,
}

impl ErrorCode {
    /// Every code, in alphabetical order.
    pub const ALL: [ErrorCode; 59] = [
        ErrorCode::AdapterFailed,
        ErrorCode::AdapterRefused,
        ErrorCode::AuditUnavailable,
        ErrorCode::Backpressure,
        ErrorCode::BacktestFailed,
        ErrorCode::BacktestNotFound,
        ErrorCode::BacktestRunning,
        ErrorCode::BadRequest,
        ErrorCode::BatchTooLarge,
        ErrorCode::BodyTimeout,
        ErrorCode::BodyTooLarge,
        ErrorCode::CandidateUnloadable,
        ErrorCode::ClassifierFiles,
        ErrorCode::ClassifierRefused,
        ErrorCode::ContentRefused,
        ErrorCode::EmptyBatch,
        ErrorCode::GateFailed,
        ErrorCode::GateRefused,
        ErrorCode::HeadersTooLarge,
        ErrorCode::InternalError,
        ErrorCode::InvalidBatch,
        ErrorCode::InvalidJson,
        ErrorCode::InvalidPluginName,
        ErrorCode::InvalidRequest,
        ErrorCode::LabelNotFound,
        ErrorCode::LabelsUnavailable,
        ErrorCode::MalformedBody,
        ErrorCode::MalformedForm,
        ErrorCode::MalformedJson,
        ErrorCode::MethodNotAllowed,
        ErrorCode::NoClassifier,
        ErrorCode::NoPreviousVersion,
        ErrorCode::NoShadows,
        ErrorCode::NotFound,
        ErrorCode::OutcomeUnknown,
        ErrorCode::PlatformNotConfigured,
        ErrorCode::PlatformRateLimited,
        ErrorCode::PlatformRefused,
        ErrorCode::PlatformUnreachable,
        ErrorCode::PluginFiles,
        ErrorCode::PluginNotFound,
        ErrorCode::PromoteFailed,
        ErrorCode::RateLimited,
        ErrorCode::ReasonRequired,
        ErrorCode::RedisUnavailable,
        ErrorCode::Refused,
        ErrorCode::ReloadFailed,
        ErrorCode::RollbackFailed,
        ErrorCode::ScreeningFailed,
        ErrorCode::ShadowFiles,
        ErrorCode::ShadowNotFound,
        ErrorCode::SignatureRejected,
        ErrorCode::TooManyConnections,
        ErrorCode::Unauthorized,
        ErrorCode::UnknownPlatform,
        ErrorCode::Unprocessable,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::UriTooLong,
        ErrorCode::ValidationFailed,
    ];

    /// The code on the wire (`validation_failed`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::AdapterFailed => "adapter_failed",
            ErrorCode::AdapterRefused => "adapter_refused",
            ErrorCode::AuditUnavailable => "audit_unavailable",
            ErrorCode::Backpressure => "backpressure",
            ErrorCode::BacktestFailed => "backtest_failed",
            ErrorCode::BacktestNotFound => "backtest_not_found",
            ErrorCode::BacktestRunning => "backtest_running",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::BatchTooLarge => "batch_too_large",
            ErrorCode::BodyTimeout => "body_timeout",
            ErrorCode::BodyTooLarge => "body_too_large",
            ErrorCode::CandidateUnloadable => "candidate_unloadable",
            ErrorCode::ClassifierFiles => "classifier_files",
            ErrorCode::ClassifierRefused => "classifier_refused",
            ErrorCode::ContentRefused => "content_refused",
            ErrorCode::EmptyBatch => "empty_batch",
            ErrorCode::GateFailed => "gate_failed",
            ErrorCode::GateRefused => "gate_refused",
            ErrorCode::HeadersTooLarge => "headers_too_large",
            ErrorCode::InternalError => "internal_error",
            ErrorCode::InvalidBatch => "invalid_batch",
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::InvalidPluginName => "invalid_plugin_name",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::LabelNotFound => "label_not_found",
            ErrorCode::LabelsUnavailable => "labels_unavailable",
            ErrorCode::MalformedBody => "malformed_body",
            ErrorCode::MalformedForm => "malformed_form",
            ErrorCode::MalformedJson => "malformed_json",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::NoClassifier => "no_classifier",
            ErrorCode::NoPreviousVersion => "no_previous_version",
            ErrorCode::NoShadows => "no_shadows",
            ErrorCode::NotFound => "not_found",
            ErrorCode::OutcomeUnknown => "outcome_unknown",
            ErrorCode::PlatformNotConfigured => "platform_not_configured",
            ErrorCode::PlatformRateLimited => "platform_rate_limited",
            ErrorCode::PlatformRefused => "platform_refused",
            ErrorCode::PlatformUnreachable => "platform_unreachable",
            ErrorCode::PluginFiles => "plugin_files",
            ErrorCode::PluginNotFound => "plugin_not_found",
            ErrorCode::PromoteFailed => "promote_failed",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::ReasonRequired => "reason_required",
            ErrorCode::RedisUnavailable => "redis_unavailable",
            ErrorCode::Refused => "refused",
            ErrorCode::ReloadFailed => "reload_failed",
            ErrorCode::RollbackFailed => "rollback_failed",
            ErrorCode::ScreeningFailed => "screening_failed",
            ErrorCode::ShadowFiles => "shadow_files",
            ErrorCode::ShadowNotFound => "shadow_not_found",
            ErrorCode::SignatureRejected => "signature_rejected",
            ErrorCode::TooManyConnections => "too_many_connections",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::UnknownPlatform => "unknown_platform",
            ErrorCode::Unprocessable => "unprocessable",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::UriTooLong => "uri_too_long",
            ErrorCode::ValidationFailed => "validation_failed",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl serde::Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}
