//! Ingestion metrics: Prometheus families and the JSON summary of `/v1/metrics`.

use crate::api::HttpMetrics;
use palisade_core::telemetry::names::*;
use palisade_core::telemetry::quantile;
use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use serde_json::{Value, json};

#[derive(Clone)]
pub struct IngestMetrics {
    pub received: IntCounter,
    /// `{outcome}`: accepted, duplicate, rejected (they sum to what was received).
    pub events: IntCounterVec,
    pub rejections: IntCounterVec,
    pub http: HttpMetrics,
    pub backpressure: IntCounter,
    pub redis_errors: IntCounter,
    pub queue_depth: IntGauge,
}

const OUTCOMES: [&str; 3] = ["accepted", "duplicate", "rejected"];

impl IngestMetrics {
    /// `queue_depth` is the process's gauge ([`palisade_core::telemetry::gauges::Gauges`]).
    pub fn register(r: &Registry, http: HttpMetrics, queue_depth: IntGauge) -> prometheus::Result<Self> {
        let received = IntCounter::new(INGEST_RECEIVED, "Events received (each also counted once by outcome).")?;
        let events = IntCounterVec::new(
            Opts::new(INGEST_EVENTS, "Received events by outcome: accepted, duplicate, rejected."),
            &[OUTCOME],
        )?;
        let rejections = IntCounterVec::new(
            Opts::new(
                INGEST_REJECTIONS,
                "Refused events (by the code of their first problem) and refused requests of the event and platform routes (by error code; not 401s).",
            ),
            &[CODE],
        )?;
        let backpressure = IntCounter::new(INGEST_BACKPRESSURE, "Requests refused with 503 for backpressure.")?;
        let redis_errors = IntCounter::new(INGEST_REDIS_ERRORS, "Requests refused because Redis failed.")?;
        r.register(Box::new(received.clone()))?;
        r.register(Box::new(events.clone()))?;
        r.register(Box::new(rejections.clone()))?;
        r.register(Box::new(backpressure.clone()))?;
        r.register(Box::new(redis_errors.clone()))?;
        for o in OUTCOMES {
            events.with_label_values(&[o]);
        }
        Ok(IngestMetrics { received, events, rejections, http, backpressure, redis_errors, queue_depth })
    }

    /// Count `n` received events with `outcome` (accepted, duplicate, rejected).
    pub fn count(&self, outcome: &str, n: usize) {
        self.events.with_label_values(&[outcome]).inc_by(n as u64);
    }

    /// `GET /v1/metrics`.
    pub fn summary(&self) -> Value {
        let mut rejected_by_code = serde_json::Map::new();
        use prometheus::core::Collector;
        for m in self.rejections.collect().iter().flat_map(|f| f.get_metric()) {
            let code = m.get_label().first().map(|l| l.value().to_string()).unwrap_or_default();
            rejected_by_code.insert(code, json!(m.get_counter().get_value() as u64));
        }
        let ev = |o: &str| self.events.with_label_values(&[o]).get();
        let mut latency = serde_json::Map::new();
        for route in ["/v1/events/ingest", "/v1/events/ingest-batch"] {
            let h = self.http.latency(route);
            latency.insert(
                route.into(),
                json!({ "count": h.get_sample_count(), "p50_ms": quantile(&h, 0.5) * 1e3, "p99_ms": quantile(&h, 0.99) * 1e3 }),
            );
        }
        json!({
            "received": self.received.get(),
            "accepted": ev("accepted"),
            "duplicates": ev("duplicate"),
            "rejected": ev("rejected"),
            "rejected_by_code": rejected_by_code,
            "backpressure_refusals": self.backpressure.get(),
            "redis_errors": self.redis_errors.get(),
            "queue_depth": self.queue_depth.get(),
            "latency": latency,
        })
    }
}
