//! Request rate limits, one layer over a whole service (`governor`'s keyed GCRA
//! limiters), answered 429 `rate_limited` with `Retry-After`:
//!
//! - **Per key** (`RATE_LIMIT_PER_KEY` requests/s, off by default): for each
//!   configured API or admin key; unknown keys never get a bucket of their own,
//!   so a flood of made-up keys cannot grow the table.
//! - **Per client IP** (`RATE_LIMIT_PER_IP`, off by default: clients behind one
//!   proxy share an address).
//! - **Refused keys per client IP** (`AUTH_FAILURES_PER_IP`, 20/s by default):
//!   each 401 spends from the address's budget; once spent, requests from the
//!   address without a valid key get 429 until it refills. A request with a
//!   valid key is never refused by this budget: behind one proxy or NAT, a
//!   wrong-key flood must not lock out every client (keys are long and random,
//!   so the budget cuts the flood's cost, not a guesser's odds).
//!
//! Probes (`/health`, `/ready`, `/metrics`) are never limited. The client IP
//! comes from the listener ([`super::server::Peer`]); without one (in-process
//! tests) only the per-key limit applies. Keys are compared in constant time.

use super::server::Peer;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use palisade_core::ApiError;
use palisade_core::ErrorCode;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The settings (requests per second; 0: off).
#[derive(Debug, Clone, Copy, Default)]
pub struct RateLimits {
    pub per_key: u32,
    pub per_ip: u32,
    pub auth_failures_per_ip: u32,
}

/// Above this many addresses, idle buckets are dropped (`retain_recent`).
const MAX_TRACKED: usize = 100_000;

#[derive(Clone)]
pub struct Limiter(Arc<Inner>);

struct Inner {
    keys: Vec<String>,
    per_key: Option<DefaultKeyedRateLimiter<usize>>,
    per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    failures: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// Addresses whose refused-key budget is spent, and until when.
    locked: std::sync::Mutex<std::collections::HashMap<IpAddr, std::time::Instant>>,
    clock: DefaultClock,
}

fn limiter<K: std::hash::Hash + Eq + Clone>(per_second: u32) -> Option<DefaultKeyedRateLimiter<K>> {
    NonZeroU32::new(per_second).map(|n| DefaultKeyedRateLimiter::keyed(Quota::per_second(n)))
}

impl Limiter {
    /// `keys`: every key the service accepts (API and admin).
    pub fn new(limits: RateLimits, keys: Vec<String>) -> Self {
        Limiter(Arc::new(Inner {
            keys,
            per_key: limiter(limits.per_key),
            per_ip: limiter(limits.per_ip),
            failures: limiter(limits.auth_failures_per_ip),
            locked: Default::default(),
            clock: DefaultClock::default(),
        }))
    }

    fn refuse(&self, not_until: &governor::NotUntil<<DefaultClock as Clock>::Instant>, what: &str) -> ApiError {
        too_many(what, not_until.wait_time_from(self.0.clock.now()))
    }

    /// Which configured key this is, compared in constant time against each.
    fn key_index(&self, presented: &[u8]) -> Option<usize> {
        let mut found = None;
        for (i, key) in self.0.keys.iter().enumerate() {
            if bool::from(key.as_bytes().ct_eq(presented)) {
                found = Some(i);
            }
        }
        found
    }

    /// Whether this request may go on (before its route runs).
    fn admit(&self, ip: Option<IpAddr>, key: Option<&[u8]>) -> Result<(), ApiError> {
        let inner = &self.0;
        let index = key.and_then(|k| self.key_index(k));
        if let Some(ip) = ip
            && index.is_none()
        {
            let mut locked = inner.locked.lock().expect("lockout lock");
            match locked.get(&ip).map(|until| until.saturating_duration_since(std::time::Instant::now())) {
                Some(wait) if !wait.is_zero() => return Err(too_many("refused keys from this address", wait)),
                Some(_) => {
                    locked.remove(&ip);
                }
                None => {}
            }
        }
        if let (Some(ip), Some(per_ip)) = (ip, &inner.per_ip) {
            per_ip.check_key(&ip).map_err(|n| self.refuse(&n, "requests from this address"))?;
            if per_ip.len() > MAX_TRACKED {
                per_ip.retain_recent();
            }
        }
        if let (Some(index), Some(per_key)) = (index, &inner.per_key) {
            per_key.check_key(&index).map_err(|n| self.refuse(&n, "requests with this key"))?;
        }
        Ok(())
    }

    /// A 401 was answered to `ip`: spend from its budget; 429 once it is spent.
    fn refused_key(&self, ip: IpAddr) -> Option<ApiError> {
        let failures = self.0.failures.as_ref()?;
        if failures.len() > MAX_TRACKED {
            failures.retain_recent();
        }
        let not_until = failures.check_key(&ip).err()?;
        let wait = not_until.wait_time_from(self.0.clock.now());
        let mut locked = self.0.locked.lock().expect("lockout lock");
        if locked.len() > MAX_TRACKED {
            let now = std::time::Instant::now();
            locked.retain(|_, until| *until > now);
        }
        locked.insert(ip, std::time::Instant::now() + wait);
        Some(too_many("refused keys from this address", wait))
    }
}

fn too_many(what: &str, wait: std::time::Duration) -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::RateLimited,
        format!("too many {what}; retry after the Retry-After delay"),
    )
    .with_retry_after(wait.as_secs_f64().ceil().max(1.0) as u64)
}

/// The layer: `axum::middleware::from_fn_with_state(limiter, limit)`.
pub async fn limit(State(limiter): State<Limiter>, request: Request, next: Next) -> Response {
    if matches!(request.uri().path(), "/health" | "/ready" | "/metrics") {
        return next.run(request).await;
    }
    let ip = request.extensions().get::<Peer>().map(|p| p.0.ip());
    let key = request.headers().get("api-key").cloned();
    if let Err(refusal) = limiter.admit(ip, key.as_ref().map(|k| k.as_bytes())) {
        return refusal.into_response();
    }
    let response = next.run(request).await;
    match ip {
        Some(ip) if response.status() == StatusCode::UNAUTHORIZED => match limiter.refused_key(ip) {
            Some(refusal) => refusal.into_response(),
            None => response,
        },
        _ => response,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spent_failure_budget_refuses_wrong_keys_and_never_a_valid_one() {
        let l = Limiter::new(RateLimits { auth_failures_per_ip: 3, ..Default::default() }, vec!["k".into()]);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..3 {
            assert!(l.admit(Some(ip), Some(b"wrong")).is_ok());
            assert!(l.refused_key(ip).is_none());
        }
        assert!(l.refused_key(ip).is_some(), "the fourth refusal within a second is a 429");
        for guess in [Some(b"wrong".as_slice()), Some(b"k2"), None] {
            let e = l.admit(Some(ip), guess).unwrap_err();
            assert_eq!((e.status, e.code), (StatusCode::TOO_MANY_REQUESTS, ErrorCode::RateLimited));
        }
        assert!(l.admit(Some(ip), Some(b"k")).is_ok(), "a valid key from the locked address is served");
        assert!(l.admit(Some("10.0.0.2".parse().unwrap()), Some(b"wrong")).is_ok(), "other addresses are not affected");
    }

    #[test]
    fn per_key_limits_count_configured_keys_only() {
        let l = Limiter::new(RateLimits { per_key: 2, ..Default::default() }, vec!["a".into(), "b".into()]);
        assert!(l.admit(None, Some(b"a")).is_ok() && l.admit(None, Some(b"a")).is_ok());
        assert!(l.admit(None, Some(b"a")).is_err());
        assert!(l.admit(None, Some(b"b")).is_ok(), "each key has its own bucket");
        for _ in 0..10 {
            assert!(l.admit(None, Some(b"made-up")).is_ok(), "unknown keys get no bucket (auth refuses them)");
        }
    }
}
