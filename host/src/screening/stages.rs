//! The embedding stage's I/O: vectors from the cache or the model, nearest
//! labelled examples and past events, and remembering a batch (the decision
//! over what it finds is `palisade_detect::cascade`).

use super::metrics::ScreenMetrics;
use palisade_core::Event;
use palisade_detect::embed::Embedder;
use palisade_detect::embed::cache::EmbeddingCache;
use palisade_detect::predict::Prediction;
use palisade_detect::vectors::{Neighbour, VectorStore};
use rayon::prelude::*;
use std::sync::Arc;

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

    pub(super) fn find(
        &self,
        events: &[Event],
        metrics: &ScreenMetrics,
    ) -> Result<Found, palisade_detect::embed::EmbedError> {
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
    pub(super) fn remember(&self, predictions: &[Prediction], vectors: Vec<Vec<f32>>) {
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
pub(super) struct Found {
    pub(super) examples: Vec<Vec<Neighbour>>,
    pub(super) past: Vec<Vec<Neighbour>>,
    pub(super) vectors: Vec<Vec<f32>>,
}

impl Found {
    pub(super) fn nothing(n: usize) -> Self {
        Found { examples: vec![Vec::new(); n], past: vec![Vec::new(); n], vectors: Vec::new() }
    }

    /// Results for a subset (`at[i]` is the batch position of subset item `i`),
    /// spread over a batch of `n` with nothing found for the others.
    pub(super) fn spread(self, at: &[usize], n: usize) -> Self {
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
