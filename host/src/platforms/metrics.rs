//! Per-adapter Prometheus metrics: webhooks by outcome, posts and actions by
//! outcome, platform request latency and retries. Labels are platform names
//! (bounded by the adapters loaded: unknown platforms are counted as `unknown`)
//! and fixed outcome words; never a secret, a body or an id.

use palisade_core::telemetry::names::*;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Registry};

#[derive(Clone)]
pub struct AdapterMetrics {
    /// `{platform, outcome}`: accepted, duplicate, rejected, replied, refused, signature_rejected, failed.
    pub webhooks: IntCounterVec,
    /// `{platform, kind, outcome}`: kind post|action; outcome delivered, refused, screened_out,
    /// platform_error, rate_limited, unreachable, not_configured, failed.
    pub outbound: IntCounterVec,
    /// `{platform}`: wall time of each HTTP request to the platform.
    pub platform_latency: HistogramVec,
    /// `{platform, reason}`: rate_limited, server_error, network.
    pub retries: IntCounterVec,
}

impl AdapterMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let counter = |name: &str, help: &str, labels: &[&str]| {
            palisade_core::telemetry::counter_vec(registry, name, help, labels)
        };
        let platform_latency = HistogramVec::new(
            HistogramOpts::new(ADAPTER_REQUEST_DURATION, "Wall time of one request to a platform API.")
                .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            &[PLATFORM],
        )?;
        registry.register(Box::new(platform_latency.clone()))?;
        Ok(AdapterMetrics {
            webhooks: counter(ADAPTER_WEBHOOKS, "Platform webhooks by outcome.", &[PLATFORM, OUTCOME])?,
            outbound: counter(
                ADAPTER_OUTBOUND,
                "Bot posts and moderation actions sent through adapters, by outcome.",
                &[PLATFORM, KIND, OUTCOME],
            )?,
            platform_latency,
            retries: counter(ADAPTER_RETRIES, "Requests to a platform sent again, by reason.", &[PLATFORM, REASON])?,
        })
    }
}
