//! Vector collections behind one trait: labelled examples (`exemplars`) and past
//! events (`events`). The embedded backend (`flat`) is cosine search over
//! normalised vectors — exact, or through an IVF index (`ivf`) once a collection
//! is large — persisted to one file per collection. Embedding text is
//! `embed`'s job; turning neighbours into a score is `screening`'s.

pub mod bank;
pub mod flat;
pub mod ivf;

use serde::Serialize;

/// One stored vector with what it stands for.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub id: String,
    /// A category wire name (`SPAM`, `LOW_RISK`, …) for exemplars; the screened category for events.
    pub label: String,
    pub text: String,
    pub vector: Vec<f32>,
}

/// A neighbour found by a search.
#[derive(Debug, Clone, Serialize)]
pub struct Neighbour {
    pub id: String,
    pub label: String,
    pub text: String,
    pub similarity: f32,
}

#[derive(Debug, thiserror::Error)]
pub enum VectorError {
    #[error("vector file {path}: {message}")]
    File { path: String, message: String },
    #[error("vector of dimension {got} does not fit a collection of dimension {want}")]
    Dimension { got: usize, want: usize },
}

pub trait VectorStore: Send + Sync {
    /// Add or replace items (by id).
    fn upsert(&self, items: Vec<Item>) -> Result<(), VectorError>;
    /// The `k` most similar items to a normalised query, most similar first.
    fn search(&self, query: &[f32], k: usize) -> Vec<Neighbour>;
    /// [`VectorStore::search`] for many queries (backends batch it where they can).
    fn search_many(&self, queries: &[Vec<f32>], k: usize) -> Vec<Vec<Neighbour>> {
        queries.iter().map(|q| self.search(q, k)).collect()
    }
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Write to disk (a no-op for stores that persist as they go).
    fn persist(&self) -> Result<(), VectorError>;
}
