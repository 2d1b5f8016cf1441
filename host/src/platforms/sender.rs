//! Sends the HTTP requests adapters describe to the platform's API: the base URL
//! and bot token come from config (`{PLATFORM}_API_BASE`, `{PLATFORM}_BOT_TOKEN`;
//! the token replaces `{token}` in header values, so it never enters a plugin),
//! a 429 is waited out (`Retry-After`, Discord's `X-RateLimit-Reset-After` or
//! `retry_after` in the body) when the wait is within bounds, and 5xx answers and
//! network errors are retried with exponential backoff up to the attempt limit.
//! It does not interpret answers: the adapter's `parse-response` does.

use super::metrics::AdapterMetrics;
use crate::config::PlatformApi;
use palisade_plugins::bindings::{HttpRequest, PlatformResponse};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What the platform answered, and after how many tries.
pub struct Sent {
    pub response: PlatformResponse,
    pub attempts: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("no API base URL for `{platform}`: set {key}")]
    NoBase { platform: String, key: String },
    #[error("the `{platform}` adapter sends a bot token and none is configured: set {key}")]
    NoToken { platform: String, key: String },
    #[error("the adapter described an unusable request: {0}")]
    BadRequest(String),
    #[error("the platform is rate limiting: retry after {retry_after_s} s")]
    RateLimited { retry_after_s: u64, attempts: u32 },
    #[error("the platform could not be reached after {attempts} attempt(s): {message}")]
    Unreachable { message: String, attempts: u32 },
}

pub struct Sender {
    client: reqwest::Client,
    apis: BTreeMap<String, PlatformApi>,
    max_attempts: u32,
    max_wait: Duration,
    backoff: Duration,
    metrics: AdapterMetrics,
}

/// Placeholder adapters put in a header value where the bot token goes.
pub const TOKEN_PLACEHOLDER: &str = "{token}";

impl Sender {
    pub fn new(
        apis: BTreeMap<String, PlatformApi>,
        timeout: Duration,
        max_attempts: u32,
        max_wait: Duration,
        backoff: Duration,
        metrics: AdapterMetrics,
    ) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("Palisade/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Sender { client, apis, max_attempts: max_attempts.max(1), max_wait, backoff, metrics })
    }

    pub async fn send(&self, platform: &str, request: HttpRequest) -> Result<Sent, SendError> {
        let key = |suffix: &str| format!("{}{suffix}", platform.to_ascii_uppercase());
        let api = self.apis.get(platform).filter(|a| !a.base.is_empty());
        let api = api.ok_or_else(|| SendError::NoBase { platform: platform.into(), key: key("_API_BASE") })?;
        if !request.path.starts_with('/') || request.path.contains("://") {
            return Err(SendError::BadRequest(format!("path `{}` must start with `/`", request.path)));
        }
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|_| SendError::BadRequest(format!("`{}` is not an HTTP method", request.method)))?;
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, value) in &request.headers {
            let value = if value.contains(TOKEN_PLACEHOLDER) {
                let token = api
                    .token
                    .as_ref()
                    .ok_or_else(|| SendError::NoToken { platform: platform.into(), key: key("_BOT_TOKEN") })?;
                value.replace(TOKEN_PLACEHOLDER, token.expose())
            } else {
                value.clone()
            };
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| SendError::BadRequest(format!("`{name}` is not a header name")))?;
            // The message names the header only: its value may hold the token.
            let mut value = reqwest::header::HeaderValue::from_str(&value)
                .map_err(|_| SendError::BadRequest(format!("the value of header `{name}` is not valid")))?;
            value.set_sensitive(name == reqwest::header::AUTHORIZATION);
            headers.append(name, value);
        }
        let url = format!("{}{}", api.base, request.path);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let started = Instant::now();
            let sent = self
                .client
                .request(method.clone(), &url)
                .headers(headers.clone())
                .body(request.body.clone())
                .send()
                .await;
            let response = match sent {
                Ok(r) => read(r).await,
                Err(e) => Err(e),
            };
            self.metrics.platform_latency.with_label_values(&[platform]).observe(started.elapsed().as_secs_f64());
            let response = match response {
                Ok(r) => r,
                Err(e) if attempt < self.max_attempts => {
                    tracing::warn!(platform, attempt, error = %e.without_url(), "platform unreachable; retrying");
                    self.retry(platform, "network", self.backoff_for(attempt)).await;
                    continue;
                }
                Err(e) => {
                    return Err(SendError::Unreachable { message: e.without_url().to_string(), attempts: attempt });
                }
            };
            match response.status {
                429 => {
                    let wait = retry_after(&response);
                    if wait > self.max_wait || attempt >= self.max_attempts {
                        return Err(SendError::RateLimited {
                            retry_after_s: wait.as_secs_f64().ceil().max(1.0) as u64,
                            attempts: attempt,
                        });
                    }
                    self.retry(platform, "rate_limited", wait).await;
                }
                500..=599 if attempt < self.max_attempts => {
                    self.retry(platform, "server_error", self.backoff_for(attempt)).await;
                }
                _ => return Ok(Sent { response, attempts: attempt }),
            }
        }
    }

    fn backoff_for(&self, attempt: u32) -> Duration {
        self.backoff.saturating_mul(1 << (attempt - 1).min(10)).min(Duration::from_secs(10))
    }

    async fn retry(&self, platform: &str, reason: &'static str, wait: Duration) {
        self.metrics.retries.with_label_values(&[platform, reason]).inc();
        tokio::time::sleep(wait).await;
    }
}

async fn read(r: reqwest::Response) -> Result<PlatformResponse, reqwest::Error> {
    let status = r.status().as_u16();
    let headers = r
        .headers()
        .iter()
        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_string(), v.to_string())))
        .collect();
    let body = r.bytes().await?.to_vec();
    Ok(PlatformResponse { status, headers, body })
}

/// How long a 429 asks us to wait: `Retry-After` (seconds), Discord's
/// `X-RateLimit-Reset-After`, or `retry_after` in a JSON body; 1 s when none says.
fn retry_after(r: &PlatformResponse) -> Duration {
    let header = |name: &str| {
        r.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).and_then(|(_, v)| v.trim().parse::<f64>().ok())
    };
    let body = || serde_json::from_slice::<serde_json::Value>(&r.body).ok()?.get("retry_after")?.as_f64();
    let seconds = header("retry-after").or_else(|| header("x-ratelimit-reset-after")).or_else(body).unwrap_or(1.0);
    Duration::from_secs_f64(seconds.clamp(0.0, 86_400.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(headers: &[(&str, &str)], body: &str) -> PlatformResponse {
        PlatformResponse {
            status: 429,
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn retry_after_from_header_discord_header_or_body() {
        assert_eq!(retry_after(&answer(&[("Retry-After", "2")], "")), Duration::from_secs(2));
        assert_eq!(retry_after(&answer(&[("X-RateLimit-Reset-After", "0.25")], "")), Duration::from_millis(250));
        assert_eq!(retry_after(&answer(&[], r#"{"retry_after": 0.5}"#)), Duration::from_millis(500));
        assert_eq!(retry_after(&answer(&[], "")), Duration::from_secs(1));
    }
}
