//! Ingestion metrics: Prometheus families and the JSON summary of `/v1/metrics`.

use crate::api::HttpMetrics;
use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use serde_json::{Value, json};

#[derive(Clone)]
pub struct IngestMetrics {
    pub events: IntCounterVec,
    pub rejections: IntCounterVec,
    pub http: HttpMetrics,
    pub backpressure: IntCounter,
    pub redis_errors: IntCounter,
    pub queue_depth: IntGauge,
}

const OUTCOMES: [&str; 4] = ["received", "accepted", "duplicate", "rejected"];

impl IngestMetrics {
    pub fn register(r: &Registry, http: HttpMetrics) -> prometheus::Result<Self> {
        let events = IntCounterVec::new(
            Opts::new("palisade_ingest_events_total", "Events by outcome: received, accepted, duplicate, rejected."),
            &["outcome"],
        )?;
        let rejections = IntCounterVec::new(
            Opts::new("palisade_ingest_rejections_total", "Rejected events by error code."),
            &["code"],
        )?;
        let backpressure =
            IntCounter::new("palisade_ingest_backpressure_total", "Requests refused with 503 for backpressure.")?;
        let redis_errors =
            IntCounter::new("palisade_ingest_redis_errors_total", "Requests refused because Redis failed.")?;
        let queue_depth = IntGauge::new("palisade_ingest_queue_depth", "Backlog of events:raw (group lag + pending).")?;
        r.register(Box::new(events.clone()))?;
        r.register(Box::new(rejections.clone()))?;
        r.register(Box::new(backpressure.clone()))?;
        r.register(Box::new(redis_errors.clone()))?;
        r.register(Box::new(queue_depth.clone()))?;
        for o in OUTCOMES {
            events.with_label_values(&[o]);
        }
        Ok(IngestMetrics { events, rejections, http, backpressure, redis_errors, queue_depth })
    }

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
            let h = self.http.latency.with_label_values(&[route]);
            latency.insert(
                route.into(),
                json!({ "count": h.get_sample_count(), "p50_ms": quantile(&h, 0.5) * 1e3, "p99_ms": quantile(&h, 0.99) * 1e3 }),
            );
        }
        json!({
            "received": ev("received"),
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

/// A quantile estimated from histogram buckets (linear within the bucket).
fn quantile(h: &prometheus::Histogram, q: f64) -> f64 {
    use prometheus::core::Collector;
    let families = h.collect();
    let Some(m) = families.first().and_then(|f| f.get_metric().first()) else { return 0.0 };
    let hist = m.get_histogram();
    let total = hist.get_sample_count() as f64;
    if total == 0.0 {
        return 0.0;
    }
    let target = q * total;
    let (mut prev_bound, mut prev_count) = (0.0, 0.0);
    for b in hist.get_bucket() {
        let (bound, count) = (b.upper_bound(), b.cumulative_count() as f64);
        if count >= target {
            let share = if count > prev_count { (target - prev_count) / (count - prev_count) } else { 0.0 };
            return prev_bound + share * (bound - prev_bound);
        }
        (prev_bound, prev_count) = (bound, count);
    }
    prev_bound
}
