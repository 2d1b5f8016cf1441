//! API keys as a route layer: a service wraps the routes that need a key in
//! [`protect`], so a handler never checks keys itself and a route outside the
//! protected group is open on purpose (health, readiness, metrics, docs,
//! signed platform webhooks). Keys are compared in constant time (`subtle`).

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use palisade_core::ApiError;
use palisade_core::ErrorCode;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The keys a group of routes accepts, and the setting they come from.
#[derive(Clone)]
pub struct RequireKey {
    keys: Arc<Vec<String>>,
    setting: &'static str,
}

impl RequireKey {
    /// The event APIs' keys (`API_KEYS`).
    pub fn api(keys: Arc<Vec<String>>) -> Self {
        RequireKey { keys, setting: "API_KEYS" }
    }

    /// The admin routes' keys (`ADMIN_API_KEYS`).
    pub fn admin(keys: Arc<Vec<String>>) -> Self {
        RequireKey { keys, setting: "ADMIN_API_KEYS" }
    }

    /// 401 when the `api-key` header is absent or wrong, or no key is configured.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let refuse = |message: String| ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, message);
        if self.keys.is_empty() {
            return Err(refuse(format!(
                "no {} configured on this server: set it to enable these routes",
                self.setting
            )));
        }
        let Some(presented) = headers.get("api-key") else {
            return Err(refuse("missing `api-key` header".into()));
        };
        if key_matches(presented.as_bytes(), &self.keys) { Ok(()) } else { Err(refuse("invalid API key".into())) }
    }
}

/// Every key is compared (no early exit), each in constant time.
fn key_matches(presented: &[u8], keys: &[String]) -> bool {
    keys.iter().fold(subtle::Choice::from(0), |any, key| any | key.as_bytes().ct_eq(presented)).into()
}

/// `router`'s routes, each refusing a request without one of `keys` before its handler runs.
pub fn protect<S: Clone + Send + Sync + 'static>(router: Router<S>, keys: RequireKey) -> Router<S> {
    router.route_layer(axum::middleware::from_fn_with_state(keys, require_key))
}

async fn require_key(State(keys): State<RequireKey>, request: Request, next: Next) -> Response {
    match keys.check(request.headers()) {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_exactly() {
        let keys = vec!["secret-1".to_string(), "other".to_string()];
        assert!(key_matches(b"secret-1", &keys));
        assert!(key_matches(b"other", &keys));
        assert!(!key_matches(b"secret-", &keys));
        assert!(!key_matches(b"secret-12", &keys));
        assert!(!key_matches(b"", &keys));
    }
}
