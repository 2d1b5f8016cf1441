//! What screening counts (`palisade_screening_*`): events by destination,
//! batch latency, risk, cache hits, stage counts, classifier reloads, categories,
//! degraded events, caught panics.

use palisade_core::telemetry::faults::Faults;
use palisade_core::telemetry::names::*;
use palisade_detect::predict::Prediction;
use prometheus::{Histogram, HistogramOpts, IntCounterVec, Opts, Registry};

/// Screening metrics.
#[derive(Clone)]
pub struct ScreenMetrics {
    pub events: IntCounterVec,
    pub batch_latency: Histogram,
    pub risk: Histogram,
    pub cache: IntCounterVec,
    /// Events each stage scored (the cascade's saving is `classifier − embedding`).
    pub stages: IntCounterVec,
    /// Classifier reloads and rollbacks by result (reloaded, unchanged, refused, rolled_back).
    pub classifier_reloads: IntCounterVec,
    /// Screened events by predicted category (the category mix).
    pub categories: IntCounterVec,
    /// What became of events screened `degraded` (`rescreen`): queued, review,
    /// rescreened, requeued, dead_letter.
    pub degraded: IntCounterVec,
    /// Panics caught while screening (the process's, shared with `/ready`).
    pub faults: Faults,
}

impl ScreenMetrics {
    pub fn register(r: &Registry, faults: Faults) -> prometheus::Result<Self> {
        let events = IntCounterVec::new(
            Opts::new(
                SCREENING_EVENTS,
                "Screened events by destination: reasoning_queue, low_risk, dead_letter, caller (HTTP routes).",
            ),
            &[DESTINATION],
        )?;
        let batch_latency = Histogram::with_opts(
            HistogramOpts::new(SCREENING_BATCH_DURATION, "Time to screen one batch (all stages).")
                .buckets(vec![1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1.0, 2.5]),
        )?;
        let risk = Histogram::with_opts(
            HistogramOpts::new(SCREENING_RISK, "Distribution of combined risk scores (0–1).")
                .buckets((1..=10).map(|i| i as f64 / 10.0).collect()),
        )?;
        r.register(Box::new(events.clone()))?;
        r.register(Box::new(batch_latency.clone()))?;
        let cache = IntCounterVec::new(
            Opts::new(SCREENING_CACHE, "Embedding cache lookups by result (hit, miss)."),
            &[RESULT],
        )?;
        let stages = IntCounterVec::new(
            Opts::new(SCREENING_STAGE_EVENTS, "Events scored by each screening stage (rules, classifier, embedding)."),
            &[STAGE],
        )?;
        let classifier_reloads = IntCounterVec::new(
            Opts::new(
                CLASSIFIER_RELOADS,
                "Classifier reloads and rollbacks by result (refused: the old one kept serving).",
            ),
            &[RESULT],
        )?;
        r.register(Box::new(risk.clone()))?;
        r.register(Box::new(cache.clone()))?;
        r.register(Box::new(stages.clone()))?;
        let categories = IntCounterVec::new(
            Opts::new(SCREENING_CATEGORIES, "Screened events by predicted category (streams and HTTP routes)."),
            &[CATEGORY],
        )?;
        r.register(Box::new(classifier_reloads.clone()))?;
        r.register(Box::new(categories.clone()))?;
        let degraded = IntCounterVec::new(
            Opts::new(
                SCREENING_DEGRADED,
                "Events screened degraded (a rule plugin's part missing), by what became of them: queued (to be \
                 screened again), review (routed high for review), rescreened (screened whole and routed again), \
                 requeued, dead_letter.",
            ),
            &[OUTCOME],
        )?;
        r.register(Box::new(degraded.clone()))?;
        Ok(ScreenMetrics {
            events,
            batch_latency,
            risk,
            cache,
            stages,
            classifier_reloads,
            categories,
            degraded,
            faults,
        })
    }

    pub(super) fn routed(&self, predictions: &[Prediction], dead: usize) {
        let high = predictions.iter().filter(|p| p.high_risk).count() as u64;
        self.events.with_label_values(&["reasoning_queue"]).inc_by(high);
        self.events.with_label_values(&["low_risk"]).inc_by(predictions.len() as u64 - high);
        self.dead_lettered(dead);
    }

    pub(super) fn dead_lettered(&self, n: usize) {
        self.events.with_label_values(&["dead_letter"]).inc_by(n as u64);
    }
}
