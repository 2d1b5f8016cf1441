//! Risk screening (`:8002`): the rule stage (`rules`), the embedding stage
//! (`similarity`: nearest labelled examples), the combined prediction
//! (`predict`), the Redis consumer that screens and routes `events:raw`
//! (`consumer`), shadow candidates compared on live batches (`shadow`, `compare`),
//! the admin routes (`admin`), and the synchronous HTTP routes and
//! `GET /v1/metrics` here. The rule stage itself is `plugins::rules` (pre-post screening shares it).
//! This module must not import another service (`ingest`, `platforms`).

mod admin;
pub mod backtest;
pub mod campaign;
pub mod compare;
pub mod consumer;
mod rescreen;
pub mod shadow;

use crate::api::auth::{RequireKey, protect};
use crate::api::{Accept, Checked, ReadsBody};
use crate::config::Band;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use palisade_core::ErrorCode;
use palisade_core::audit::AuditSink;
use palisade_core::schema::{self, BatchBody, Limits};
use palisade_core::telemetry::faults::Faults;
use palisade_core::telemetry::names::*;
use palisade_core::{ApiError, BodyLimits, Event, now_ms};
use palisade_detect::classify::slot::Slot;
use palisade_detect::classify::{Classifier, Scored};
use palisade_detect::embed::Embedder;
use palisade_detect::embed::cache::EmbeddingCache;
use palisade_detect::predict::{self, DecisionPolicy, Prediction};
use palisade_detect::vectors::{Neighbour, VectorStore};
use palisade_detect::{cascade, similarity};
use palisade_plugins::{PluginHost, rules, validators};
use palisade_streams::Backlog;
use palisade_streams::labels::LabelStream;
use prometheus::{Histogram, HistogramOpts, IntCounterVec, Opts, Registry};
use rayon::prelude::*;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;

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

    fn routed(&self, predictions: &[Prediction], dead: usize) {
        let high = predictions.iter().filter(|p| p.high_risk).count() as u64;
        self.events.with_label_values(&["reasoning_queue"]).inc_by(high);
        self.events.with_label_values(&["low_risk"]).inc_by(predictions.len() as u64 - high);
        self.dead_lettered(dead);
    }

    fn dead_lettered(&self, n: usize) {
        self.events.with_label_values(&["dead_letter"]).inc_by(n as u64);
    }
}

/// The embedding stage: a model, its cache, the labelled examples it is compared
/// with, and the past events each new one is compared with (then joins).
pub struct Similarity {
    pub embedder: Arc<Embedder>,
    pub cache: Option<EmbeddingCache>,
    pub exemplars: Arc<dyn VectorStore>,
    /// Neighbours per event.
    pub k: usize,
    /// Past screened events (`None`: not kept).
    pub events: Option<Arc<dyn VectorStore>>,
    /// Similar past events per event.
    pub past_k: usize,
}

impl Similarity {
    /// Vectors of each text: from the cache where it has them, the model for the rest.
    pub fn vectors(
        &self,
        texts: &[&str],
        metrics: &ScreenMetrics,
    ) -> Result<Vec<Vec<f32>>, palisade_detect::embed::EmbedError> {
        let Some(cache) = &self.cache else { return self.embedder.embed(texts) };
        let mut vectors = cache.get(texts);
        let missing: Vec<usize> = (0..texts.len()).filter(|i| vectors[*i].is_none()).collect();
        metrics.cache.with_label_values(&["hit"]).inc_by((texts.len() - missing.len()) as u64);
        metrics.cache.with_label_values(&["miss"]).inc_by(missing.len() as u64);
        if !missing.is_empty() {
            let fresh = self.embedder.embed(&missing.iter().map(|i| texts[*i]).collect::<Vec<_>>())?;
            cache.put(&missing.iter().zip(&fresh).map(|(i, v)| (texts[*i], v.as_slice())).collect::<Vec<_>>());
            for (i, v) in missing.into_iter().zip(fresh) {
                vectors[i] = Some(v);
            }
        }
        Ok(vectors.into_iter().map(Option::unwrap_or_default).collect())
    }

    fn find(&self, events: &[Event], metrics: &ScreenMetrics) -> Result<Found, palisade_detect::embed::EmbedError> {
        let texts: Vec<&str> = events.iter().map(|e| e.content.as_str()).collect();
        let vectors =
            palisade_core::span!("embed", events = events.len()).in_scope(|| self.vectors(&texts, metrics))?;
        let _knn = palisade_core::span!("knn", events = events.len()).entered();
        let examples = if self.exemplars.is_empty() {
            vec![Vec::new(); events.len()]
        } else {
            search_split(self.exemplars.as_ref(), &vectors, self.k)
        };
        let past = match &self.events {
            Some(store) if !store.is_empty() => search_split(store.as_ref(), &vectors, self.past_k),
            _ => vec![Vec::new(); events.len()],
        };
        Ok(Found { examples, past, vectors })
    }

    /// Remember screened events (id, category, text, vector) for later comparisons.
    fn remember(&self, predictions: &[Prediction], vectors: Vec<Vec<f32>>) {
        let Some(store) = &self.events else { return };
        let items = predictions
            .iter()
            .zip(vectors)
            .filter(|(_, v)| !v.is_empty())
            .map(|(p, vector)| palisade_detect::vectors::Item {
                id: p.event.event_id.clone(),
                label: p.category.to_string(),
                text: capped(&p.event.content, PAST_TEXT_MAX_BYTES).to_string(),
                vector,
            })
            .collect();
        if let Err(e) = store.upsert(items) {
            tracing::warn!(error = %e, "could not remember screened events");
        }
    }
}

/// Most bytes of a past event's text kept beside its vector (the window's memory
/// bound: `SIMILAR_EVENTS_MAX` × (this + 4 × the model's dimension) bytes).
pub const PAST_TEXT_MAX_BYTES: usize = 1024;

/// `text`'s first `max` bytes, cut at a character boundary.
fn capped(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// `store.search_many` with the batch split across the rayon pool's threads.
fn search_split(store: &dyn VectorStore, vectors: &[Vec<f32>], k: usize) -> Vec<Vec<Neighbour>> {
    let chunk = vectors.len().div_ceil(rayon::current_num_threads()).max(1);
    vectors.par_chunks(chunk).flat_map_iter(|part| store.search_many(part, k)).collect()
}

/// What the embedding stage found for one batch: nearest labelled examples and
/// past events per event, and the vectors (to remember the batch by).
struct Found {
    examples: Vec<Vec<Neighbour>>,
    past: Vec<Vec<Neighbour>>,
    vectors: Vec<Vec<f32>>,
}

impl Found {
    fn nothing(n: usize) -> Self {
        Found { examples: vec![Vec::new(); n], past: vec![Vec::new(); n], vectors: Vec::new() }
    }

    /// Results for a subset (`at[i]` is the batch position of subset item `i`),
    /// spread over a batch of `n` with nothing found for the others.
    fn spread(self, at: &[usize], n: usize) -> Self {
        let mut all = Found { examples: vec![Vec::new(); n], past: vec![Vec::new(); n], vectors: vec![Vec::new(); n] };
        for (i, examples) in at.iter().zip(self.examples) {
            all.examples[*i] = examples;
        }
        for (i, past) in at.iter().zip(self.past) {
            all.past[*i] = past;
        }
        for (i, vector) in at.iter().zip(self.vectors) {
            all.vectors[*i] = vector;
        }
        all
    }
}

/// Screens batches of events: every stage, one call per plugin per batch.
pub struct Screener {
    pub plugins: Arc<PluginHost>,
    pub similarity: Option<Similarity>,
    pub policy: DecisionPolicy,
    pub metrics: ScreenMetrics,
    /// `SCREENING_FAST_PATH`: a rule score at which the rules alone decide (the
    /// embedding is skipped; risk = the rule score, flag `fast_path`); `None`: off.
    /// (Weighted scoring only: with a classifier the cascade decides.)
    pub fast_path: Option<f32>,
    /// The trained classifier (`SCORING=classifier`); `None`: weighted scoring.
    pub classifier: Option<Arc<Slot>>,
    /// Counts the accounts posting each text (`CAMPAIGN_MIN_ACCOUNTS`); `None`: off.
    pub campaigns: Option<campaign::Campaigns>,
    /// The cascade: events whose classifier risk lies in this band reach the
    /// embedding stage; `None` (`CASCADE=off`): every event does.
    pub cascade_band: Option<Band>,
    /// Share of the neighbours' label mix in an embedded event's scores.
    pub knn_weight: f32,
    /// Shadow candidates scored beside the active rules (never routing).
    pub shadows: Option<Arc<shadow::Shadows>>,
}

impl Screener {
    fn find(&self, events: &[Event]) -> Found {
        match &self.similarity {
            Some(sim) => sim.find(events, &self.metrics).unwrap_or_else(|e| {
                tracing::error!(error = %e, "embedding failed; screening this batch with rules only");
                Found::nothing(events.len())
            }),
            None => Found::nothing(events.len()),
        }
    }

    /// The embedding stage for the events at positions `at` only (ascending),
    /// spread over the whole batch.
    fn find_some(&self, events: &[Event], at: &[usize]) -> Found {
        match at.len() {
            0 => Found::nothing(events.len()),
            n if n == events.len() => self.find(events),
            _ => {
                let subset: Vec<Event> = at.iter().map(|i| events[*i].clone()).collect();
                self.find(&subset).spread(at, events.len())
            }
        }
    }

    /// Screen a batch (in the current span: each stage gets a child span when
    /// traces are on), counting the categories predicted.
    pub fn screen(&self, events: Vec<Event>) -> Vec<Prediction> {
        if events.is_empty() {
            return Vec::new();
        }
        let mut predictions = match &self.classifier {
            Some(slot) => self.screen_classified(slot.get(), events),
            None => self.screen_weighted(events),
        };
        if let Some(campaigns) = &self.campaigns {
            campaigns.mark(&mut predictions);
        }
        for p in &predictions {
            self.metrics.categories.with_label_values(&[p.category]).inc();
        }
        predictions
    }

    /// Rules and the embedding stage, mixed by `weights` (`SCORING=weighted`).
    fn screen_weighted(&self, events: Vec<Event>) -> Vec<Prediction> {
        let started = Instant::now();
        let rules =
            || palisade_core::span!("rules", events = events.len()).in_scope(|| rules::score(&self.plugins, &events));
        let (rule_results, found) = match self.fast_path {
            // The rule stage and the embedding stage are independent: run them side by
            // side on the rayon pool (the cache lookup waits on Redis while the rules compute).
            None => {
                let parent = tracing::Span::current();
                rayon::join(rules, || parent.in_scope(|| self.find(&events)))
            }
            // Fast path: rules first; events they score at or above the bar skip the model.
            Some(bar) => {
                let rule_results = rules();
                let slow: Vec<usize> = (0..events.len()).filter(|i| rule_results[*i].score < bar).collect();
                let found = self.find_some(&events, &slow);
                (rule_results, found)
            }
        };
        let model_id = self.similarity.as_ref().map(|s| s.embedder.model_id.clone());
        let elapsed = started.elapsed();
        let per_event_ms = elapsed.as_secs_f64() * 1e3 / events.len() as f64;
        self.metrics.batch_latency.observe(elapsed.as_secs_f64());
        let predictions: Vec<Prediction> = events
            .into_iter()
            .zip(rule_results)
            .zip(found.examples.into_iter().zip(found.past))
            .map(|((event, r), (near, past))| {
                let fast = self.fast_path.is_some_and(|bar| r.score >= bar);
                let mut p = predict::predict(event, r, similarity::embedding_score(&near), self.policy);
                if fast {
                    p.flags.retain(|f| f != "heuristics_only");
                    p.flags.push("fast_path".into());
                }
                p.similar = near;
                p.similar_events = past;
                p.model_id = model_id.clone();
                p.latency_ms = per_event_ms;
                self.metrics.risk.observe(p.risk_score as f64);
                p
            })
            .collect();
        if let Some(sim) = &self.similarity {
            sim.remember(&predictions, found.vectors);
        }
        predictions
    }
}

impl Screener {
    /// The cascade: rules, then the classifier on every event, then the embedding
    /// stage only for events whose risk is in the band; the classifier's embedding
    /// head (when it has one) is mixed into their scores, then their neighbours'
    /// label mix (`knn_weight`, scaled by how close the nearest example is), before
    /// the thresholds decide.
    fn screen_classified(&self, classifier: Arc<Classifier>, events: Vec<Event>) -> Vec<Prediction> {
        let started = Instant::now();
        let rule_results =
            palisade_core::span!("rules", events = events.len()).in_scope(|| rules::score(&self.plugins, &events));
        let scored: Vec<Scored> = palisade_core::span!("classifier", events = events.len())
            .in_scope(|| events.par_iter().zip(&rule_results).map(|(e, r)| classifier.score(&e.content, r)).collect());
        let n = events.len() as u64;
        self.metrics.stages.with_label_values(&["rules"]).inc_by(n);
        self.metrics.stages.with_label_values(&["classifier"]).inc_by(n);
        let band: Vec<usize> = match &self.similarity {
            None => Vec::new(),
            Some(_) => (0..events.len()).filter(|i| cascade::in_band(self.cascade_band, scored[*i].risk())).collect(),
        };
        self.metrics.stages.with_label_values(&["embedding"]).inc_by(band.len() as u64);
        let Found { examples, past, vectors } = self.find_some(&events, &band);
        let embedded: Vec<bool> = {
            let mut e = vec![false; events.len()];
            band.iter().for_each(|i| e[*i] = true);
            e
        };
        // Events outside the band have no vector and no neighbours.
        let no_vector: &[f32] = &[];
        let vector = |i: usize| vectors.get(i).map_or(no_vector, Vec::as_slice);
        if let Some(shadows) = self.shadows.as_ref().filter(|s| s.any()) {
            let verdict = |i: usize, r: &rules::RuleResult, mut s: Scored, c: &Classifier| {
                if embedded[i] {
                    let found = cascade::Embedded { vector: vector(i), neighbours: &examples[i] };
                    cascade::blend(c, &mut s, found, self.knn_weight);
                }
                let (category, risk, _) = predict::decide(r, &s, &self.policy);
                compare::Verdict { category, risk }
            };
            let active: Vec<_> =
                (0..events.len()).map(|i| verdict(i, &rule_results[i], scored[i].clone(), &classifier)).collect();
            let _span = palisade_core::span!("shadow", events = events.len()).entered();
            shadows.observe(&events, &rule_results, &active, &classifier, |i, r, c| {
                verdict(i, r, c.score(&events[i].content, r), c)
            });
        }
        let model_id = self.similarity.as_ref().map(|s| s.embedder.model_id.clone());
        let elapsed = started.elapsed();
        let per_event_ms = elapsed.as_secs_f64() * 1e3 / events.len() as f64;
        self.metrics.batch_latency.observe(elapsed.as_secs_f64());
        let predictions: Vec<Prediction> = events
            .into_iter()
            .zip(rule_results)
            .zip(scored)
            .zip(examples.into_iter().zip(past))
            .enumerate()
            .map(|(i, (((event, r), s), (near, past)))| {
                let found = embedded[i].then(|| cascade::Embedded { vector: vector(i), neighbours: &near });
                let mut p = cascade::cascade(event, r, s, found, &classifier, self.knn_weight, &self.policy);
                if p.high_risk {
                    p.top_ngrams = classifier.contributions(&p.event.content, p.category, 5);
                }
                p.similar = near;
                p.similar_events = past;
                p.model_id = if embedded[i] { model_id.clone() } else { None };
                p.latency_ms = per_event_ms;
                self.metrics.risk.observe(p.risk_score as f64);
                p
            })
            .collect();
        if let Some(sim) = &self.similarity {
            sim.remember(&predictions, vectors);
        }
        predictions
    }
}

/// What screening lends plugins granted `similar` or `classify`: its example bank
/// and classifier (held weakly: the plugin runtime must not keep a screener alive).
struct Lent(std::sync::Weak<Screener>);

impl palisade_plugins::lending::Semantic for Lent {
    fn similar(
        &self,
        texts: &[String],
        k: usize,
    ) -> Result<Vec<Vec<palisade_plugins::lending::LentNeighbour>>, String> {
        let screener = self.0.upgrade();
        let Some((s, sim)) = screener.as_ref().and_then(|s| Some((s, s.similarity.as_ref()?))) else {
            return Ok(vec![Vec::new(); texts.len()]);
        };
        if sim.exemplars.is_empty() {
            return Ok(vec![Vec::new(); texts.len()]);
        }
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let vectors = sim.vectors(&refs, &s.metrics).map_err(|e| format!("embedding failed: {e}"))?;
        Ok(sim
            .exemplars
            .search_many(&vectors, k)
            .into_iter()
            .map(|ns| {
                ns.into_iter()
                    .map(|n| palisade_plugins::lending::LentNeighbour {
                        id: n.id.to_string(),
                        label: n.label.to_string(),
                        similarity: n.similarity,
                    })
                    .collect()
            })
            .collect())
    }

    fn classify(&self, texts: &[String]) -> Option<Vec<Vec<f32>>> {
        let screener = self.0.upgrade()?;
        let classifier = screener.classifier.as_ref()?.get();
        let none = rules::RuleResult::none();
        Some(texts.iter().map(|t| classifier.score(t, &none).scores.to_vec()).collect())
    }
}

impl Screener {
    /// Lend this screener's example bank and classifier to the plugins
    /// (`host.similar`, `host.classify`), in place of any earlier screener's.
    pub fn lend_to_plugins(self: &Arc<Self>) {
        self.plugins.runtime().lending.set_semantic(Arc::new(Lent(Arc::downgrade(self))));
    }
}

/// State of the synchronous screening routes and the JSON summary.
pub struct ScreenApi {
    pub screener: Arc<Screener>,
    pub api_keys: Arc<Vec<String>>,
    pub limits: Limits,
    pub body: palisade_core::BodyLimits,
    pub max_batch_events: usize,
    /// Keys whose answers carry similar past events' text (`SIMILAR_EVENTS_TEXT_KEYS`).
    pub past_text_keys: Arc<Vec<String>>,
    /// The `events:raw` backlog (the summary's queue lag).
    pub backlog: Arc<dyn Backlog>,
    /// Keys for `/v1/admin/classifier…` and `/v1/admin/labels`.
    pub admin_api_keys: Arc<Vec<String>>,
    /// Where reviewer labels go (`None`: no Redis behind this router).
    pub labels: Option<LabelStream>,
    /// Where promotions and discards of shadow candidates are recorded.
    pub audit: Option<Arc<dyn AuditSink>>,
    /// Where a classifier rollback is published for the other replicas.
    pub control: Option<Arc<palisade_streams::control::ControlStream>>,
    /// Backtest jobs (`POST /v1/admin/backtests`).
    pub backtests: Arc<crate::screening::backtest::jobs::Jobs>,
    /// Where stream backtests read history.
    pub history: crate::screening::backtest::History,
}

/// The screening routes (keyed) and `GET /v1/metrics` (open).
pub fn router(api: Arc<ScreenApi>) -> Router {
    let keyed =
        Router::new().route("/v1/risk/screen", post(screen_one)).route("/v1/risk/screen-batch", post(screen_batch));
    protect(keyed, RequireKey::api(api.api_keys.clone()))
        .merge(protect(admin::routes(), RequireKey::admin(api.admin_api_keys.clone())))
        .route("/v1/metrics", get(summary))
        .with_state(api)
}

impl ScreenApi {
    /// The validator plugins over checked events: the 422 answer for the first
    /// refused one (with `details.index` in a batch), as ingest would refuse it.
    fn policy_violations(&self, events: &[Event]) -> Option<ApiError> {
        let results = validators::validate(&self.screener.plugins, events);
        let (index, violations) = results.into_iter().enumerate().find(|(_, v)| !v.is_empty())?;
        let mut error = ApiError::invalid(&violations);
        if events.len() > 1 {
            error.details = Some(json!({ "index": index, "error": error.details.take() }));
        }
        Some(error)
    }

    /// Predictions as a JSON array, serialised once; similar past events carry
    /// their text only for a key in `SIMILAR_EVENTS_TEXT_KEYS`.
    fn answer(&self, headers: &HeaderMap, predictions: &[Prediction]) -> Vec<Value> {
        let Value::Array(mut answers) = json!(predictions) else { return Vec::new() };
        let key = headers.get("api-key").map(|k| k.as_bytes()).unwrap_or_default();
        if self.past_text_keys.iter().any(|k| bool::from(subtle::ConstantTimeEq::ct_eq(k.as_bytes(), key))) {
            for (answer, p) in answers.iter_mut().zip(predictions) {
                let Some(past) = answer["similar_events"].as_array_mut() else { continue };
                for (n, found) in past.iter_mut().zip(&p.similar_events) {
                    n["text"] = Value::from(found.text.as_ref());
                }
            }
        }
        answers
    }

    /// Screen on a blocking thread; a panic there answers 500 `screening_failed`
    /// (counted, and `/ready` turns `degraded`), never an empty answer.
    async fn run(&self, events: Vec<Event>) -> Result<Vec<Prediction>, ApiError> {
        let screener = self.screener.clone();
        let n = events.len() as u64;
        // The stages' spans stay under this request's span.
        let span = tracing::Span::current();
        let out = tokio::task::spawn_blocking(move || span.in_scope(|| screener.screen(events))).await.map_err(|e| {
            let message = self.screener.metrics.faults.join_failed("screen", e);
            ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::ScreeningFailed,
                format!("screening failed on this server ({message}); the event was not screened: retry, and report it if it lasts"),
            )
        })?;
        self.screener.metrics.events.with_label_values(&["caller"]).inc_by(n);
        Ok(out)
    }
}

impl ReadsBody for ScreenApi {
    fn accepts(&self) -> Accept {
        Accept::JsonOrForm
    }

    fn body_limits(&self) -> BodyLimits {
        self.body
    }
}

/// The seed's form: `event_id` and `content` (and optionally the other event
/// fields); `event_type`, `platform` and `user_id` default to the sample's. The
/// body is decoded as a browser encodes a form (`serde_urlencoded`: `+` is a
/// space, `%XX` a byte; an escape that is not one stays as written, bytes that
/// are not UTF-8 become U+FFFD), and the fields become a JSON object checked by
/// the JSON route's own path (`schema::parse_event`), so an unknown field, a bad
/// value or a length is refused alike.
fn form_event(bytes: &[u8], limits: &Limits) -> Result<Event, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(bytes).map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::MalformedForm, format!("the form body does not decode: {e}"))
    })?;
    let sample = Event::sample("");
    let mut fields = serde_json::Map::new();
    for (k, v) in [("event_type", sample.event_type), ("platform", sample.platform), ("user_id", sample.user_id)] {
        fields.insert(k.into(), Value::String(v));
    }
    fields.extend(pairs.into_iter().map(|(k, v)| (k, Value::String(v))));
    let json = Value::Object(fields).to_string();
    schema::parse_event(json.as_bytes(), limits, now_ms()).map_err(ApiError::from)
}

async fn screen_one(
    State(s): State<Arc<ScreenApi>>,
    headers: HeaderMap,
    Checked { bytes, form, .. }: Checked,
) -> Result<Json<Value>, ApiError> {
    let event = if form { form_event(&bytes, &s.limits)? } else { schema::parse_event(&bytes, &s.limits, now_ms())? };
    if let Some(refused) = s.policy_violations(std::slice::from_ref(&event)) {
        return Err(refused);
    }
    let out = s.run(vec![event]).await?;
    Ok(Json(s.answer(&headers, &out).pop().unwrap_or_default()))
}

async fn screen_batch(
    State(s): State<Arc<ScreenApi>>,
    headers: HeaderMap,
    Checked { bytes, .. }: Checked,
) -> Result<Json<Value>, ApiError> {
    let batch = BatchBody::parse(&bytes, s.max_batch_events)?;
    let mut events = Vec::with_capacity(batch.events.len());
    for (index, raw) in batch.events.iter().enumerate() {
        let event = schema::parse_event(raw.get().as_bytes(), &s.limits, now_ms()).map_err(|refused| {
            let mut e = ApiError::from(refused);
            e.details = Some(json!({ "index": index, "error": e.details.take() }));
            e
        })?;
        events.push(event);
    }
    if let Some(refused) = s.policy_violations(&events) {
        return Err(refused);
    }
    let out = s.run(events).await?;
    let predictions = Value::Array(s.answer(&headers, &out));
    Ok(Json(Value::Object([("predictions".to_string(), predictions)].into_iter().collect())))
}

/// `GET /v1/metrics`: what the seed's troubleshooting reads (`.avg_latency_ms`).
async fn summary(State(s): State<Arc<ScreenApi>>) -> Json<Value> {
    let m = &s.screener.metrics;
    let routed = |d: &str| m.events.with_label_values(&[d]).get();
    let (hits, misses) = (m.cache.with_label_values(&["hit"]).get(), m.cache.with_label_values(&["miss"]).get());
    let screened: u64 = ["reasoning_queue", "low_risk", "caller"].iter().map(|d| routed(d)).sum();
    let batch_seconds = m.batch_latency.get_sample_sum();
    let batched_events = m.risk.get_sample_count(); // one risk observation per screened event
    Json(json!({
        "events_screened": screened,
        "routed": {
            "reasoning_queue": routed("reasoning_queue"),
            "low_risk": routed("low_risk"),
            "dead_letter": routed("dead_letter"),
        },
        "screened_by_http": routed("caller"),
        "avg_latency_ms": if batched_events == 0 { 0.0 } else { batch_seconds * 1e3 / batched_events as f64 },
        "batches": m.batch_latency.get_sample_count(),
        "batch_p50_ms": palisade_core::telemetry::quantile(&m.batch_latency, 0.5) * 1e3,
        "batch_p99_ms": palisade_core::telemetry::quantile(&m.batch_latency, 0.99) * 1e3,
        "queue_lag": s.backlog.backlog(),
        "redis_ok": s.backlog.redis_ok(),
        "cache_hit_rate": if hits + misses == 0 { 0.0 } else { hits as f64 / (hits + misses) as f64 },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields_decode() {
        let limits = Limits { min_content_length: 1, max_content_length: 20, require_author: false };
        let e = form_event(b"event_id=e-0&content=hi+there%21%e2%9C%93", &limits).unwrap();
        assert_eq!(e.content, "hi there!\u{2713}");
        // As a browser's form parser: a stray `%` stays as written, bytes that are
        // not UTF-8 become U+FFFD.
        for (raw, want) in [("%zz", "%zz"), ("50%2", "50%2"), ("%ff%fe", "\u{fffd}\u{fffd}")] {
            let e = form_event(format!("event_id=e-0&content={raw}").as_bytes(), &limits).unwrap();
            assert_eq!(e.content, want, "{raw}");
        }
        let e = form_event(b"event_id=e-1&content=you+idiot", &limits).unwrap();
        assert_eq!((e.event_id.as_str(), e.content.as_str()), ("e-1", "you idiot"));
        assert_eq!(form_event(b"content=x", &limits).unwrap_err().code, "validation_failed");
        // Unknown fields are refused as the JSON route refuses them, however many.
        let unknown = form_event(b"event_id=e-1&content=hi&contnet=x", &limits).unwrap_err();
        assert_eq!(unknown.details.unwrap()["violations"][0]["code"], "unknown_field");
        let many: String = (0..100_000).map(|i| format!("&f{i}=x")).collect();
        let unknown = form_event(format!("event_id=e-1&content=hi{many}").as_bytes(), &limits).unwrap_err();
        assert_eq!(unknown.status, axum::http::StatusCode::UNPROCESSABLE_ENTITY);
        // The same limits as JSON: content length and id size.
        let long = form_event(b"event_id=e-2&content=far+too+long+for+these+limits", &limits).unwrap_err();
        assert_eq!(long.details.unwrap()["violations"][0]["code"], "too_long");
        let id = format!("event_id={}&content=hi", "x".repeat(300));
        assert_eq!(
            form_event(id.as_bytes(), &limits).unwrap_err().details.unwrap()["violations"][0]["code"],
            "too_long"
        );
    }

    /// Percent-encode everything but letters and digits.
    fn form_encode(text: &str) -> String {
        text.bytes()
            .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
            .collect()
    }

    proptest::proptest! {
        /// The form route refuses exactly what the JSON route refuses, for the
        /// same reasons, and accepts the same event.
        #[test]
        fn the_form_and_json_forms_are_checked_alike(event_id in "\\PC{0,300}", content in "\\PC{0,30}") {
            let limits = Limits { min_content_length: 2, max_content_length: 20, require_author: false };
            let form = format!("event_id={}&content={}", form_encode(&event_id), form_encode(&content));
            let from_form = form_event(form.as_bytes(), &limits);
            let sample = Event::sample("");
            let json = serde_json::json!({"event_id": event_id, "content": content, "event_type": sample.event_type,
                "platform": sample.platform, "user_id": sample.user_id});
            let from_json = schema::parse_event(json.to_string().as_bytes(), &limits, 1)
                .map_err(schema::EventRefused::into_field_errors);
            match (from_form, from_json) {
                (Ok(a), Ok(b)) => proptest::prop_assert_eq!((a.event_id, a.content), (b.event_id, b.content)),
                (Err(a), Err(b)) => {
                    let codes = |v: &serde_json::Value| -> Vec<String> {
                        v["violations"].as_array().unwrap().iter().map(|x| format!("{}:{}", x["field"], x["code"])).collect()
                    };
                    let b: Vec<String> = b.iter().map(|x| format!("\"{}\":\"{}\"", x.field, x.code)).collect();
                    proptest::prop_assert_eq!(codes(&a.details.unwrap()), b);
                }
                (a, b) => proptest::prop_assert!(false, "form {:?} but JSON {:?}", a.map(|e| e.event_id), b.map(|e| e.event_id)),
            }
        }

        #[test]
        fn any_form_body_gets_an_answer(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let limits = Limits { min_content_length: 1, max_content_length: 20, require_author: false };
            let _ = form_event(&bytes, &limits);
        }
    }
}
