//! Per-plugin Prometheus metrics: calls, events, errors by kind, call latency,
//! quarantines and reloads. Labels are plugin names (bounded by the plugin
//! directory) and fixed outcome words.

use palisade_core::telemetry::names::*;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

#[derive(Clone)]
pub struct PluginMetrics {
    pub calls: IntCounterVec,
    pub events: IntCounterVec,
    pub errors: IntCounterVec,
    pub latency: HistogramVec,
    pub quarantines: IntCounterVec,
    /// 1 while a plugin is quarantined, else 0.
    pub quarantined: IntGaugeVec,
    pub reloads: IntCounterVec,
}

impl PluginMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let counter = |name: &str, help: &str, labels: &[&str]| {
            palisade_core::telemetry::counter_vec(registry, name, help, labels)
        };
        let latency = HistogramVec::new(
            HistogramOpts::new(PLUGIN_CALL_DURATION, "Wall time of one batched plugin call.")
                .buckets(vec![1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 0.1, 1.0]),
            &[PLUGIN],
        )?;
        registry.register(Box::new(latency.clone()))?;
        let quarantined =
            IntGaugeVec::new(Opts::new(PLUGIN_QUARANTINED, "1 while the plugin is quarantined, else 0."), &[PLUGIN])?;
        registry.register(Box::new(quarantined.clone()))?;
        Ok(PluginMetrics {
            quarantined,
            calls: counter(PLUGIN_CALLS, "Batched calls into a plugin.", &[PLUGIN])?,
            events: counter(PLUGIN_EVENTS, "Events passed to a plugin.", &[PLUGIN])?,
            errors: counter(
                PLUGIN_ERRORS,
                "Failed plugin calls by kind (trap, timeout, memory, instantiate, contract).",
                &[PLUGIN, ERROR],
            )?,
            latency,
            quarantines: counter(PLUGIN_QUARANTINES, "Times a plugin was quarantined.", &[PLUGIN])?,
            reloads: counter(
                PLUGIN_RELOADS,
                "Plugin loads by outcome (loaded, failed, rolled_back, removed).",
                &[PLUGIN, OUTCOME],
            )?,
        })
    }
}
