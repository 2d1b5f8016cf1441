//! Per-plugin Prometheus metrics: calls, events, errors by kind, call latency,
//! quarantines and reloads. Labels are plugin names (bounded by the plugin
//! directory) and fixed outcome words.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Registry};

#[derive(Clone)]
pub struct PluginMetrics {
    pub calls: IntCounterVec,
    pub events: IntCounterVec,
    pub errors: IntCounterVec,
    pub latency: HistogramVec,
    pub quarantines: IntCounterVec,
    pub reloads: IntCounterVec,
}

impl PluginMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let counter =
            |name: &str, help: &str, labels: &[&str]| crate::telemetry::counter_vec(registry, name, help, labels);
        let latency = HistogramVec::new(
            HistogramOpts::new("palisade_plugin_call_duration_seconds", "Wall time of one batched plugin call.")
                .buckets(vec![1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 0.1, 1.0]),
            &["plugin"],
        )?;
        registry.register(Box::new(latency.clone()))?;
        Ok(PluginMetrics {
            calls: counter("palisade_plugin_calls_total", "Batched calls into a plugin.", &["plugin"])?,
            events: counter("palisade_plugin_events_total", "Events passed to a plugin.", &["plugin"])?,
            errors: counter(
                "palisade_plugin_errors_total",
                "Failed plugin calls by kind (trap, timeout, memory, instantiate, contract).",
                &["plugin", "error"],
            )?,
            latency,
            quarantines: counter("palisade_plugin_quarantines_total", "Times a plugin was quarantined.", &["plugin"])?,
            reloads: counter(
                "palisade_plugin_reloads_total",
                "Plugin loads by outcome (loaded, failed, rolled_back, removed).",
                &["plugin", "outcome"],
            )?,
        })
    }
}
