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
    pub code: &'static str,
    pub message: String,
    pub details: Option<Value>,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
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
        ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", format!("the body is not valid JSON: {message}"))
            .with_details(json!({ "line": line, "column": column }))
    }

    /// 422 `validation_failed`: the event's problems, one per field.
    pub fn invalid(errors: &[FieldError]) -> Self {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            format!("{} problem(s) with the event", errors.len()),
        )
        .with_details(json!({ "violations": errors }))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.code, "message": self.message });
        if let Some(d) = self.details {
            body["details"] = d;
        }
        let mut response = (self.status, Json(body)).into_response();
        if let Some(s) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        response
    }
}
