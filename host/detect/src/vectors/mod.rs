//! Vector collections behind one trait: labelled examples (`exemplars`) and past
//! events (`events`). The embedded backend (`flat`) is cosine search over
//! normalised vectors — exact, or through an IVF index (`ivf`) once a collection
//! is large — persisted to one file per collection; past events are kept in a
//! bounded `window` of such stores. Embedding text is
//! `embed`'s job; turning neighbours into a score is `screening`'s.

pub mod bank;
pub mod dot;
pub mod flat;
pub mod ivf;
#[cfg(feature = "qdrant")]
pub mod qdrant;
pub mod window;

use serde::Serialize;
use std::sync::Arc;

/// One stored vector with what it stands for.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub id: String,
    /// A category wire name (`SPAM`, `LOW_RISK`, …) for exemplars; the screened category for events.
    pub label: String,
    pub text: String,
    pub vector: Vec<f32>,
}

/// A neighbour found by a search. Its strings are shared with the store (a batch
/// finds ~1,000 neighbours: no copy of each text).
#[derive(Debug, Clone, Serialize)]
pub struct Neighbour {
    pub id: Arc<str>,
    pub label: Arc<str>,
    pub text: Arc<str>,
    pub similarity: f32,
}

#[derive(Debug, thiserror::Error)]
pub enum VectorError {
    #[error("vector file {path}: {message}")]
    File { path: String, message: String },
    #[error("vector of dimension {got} does not fit a collection of dimension {want}")]
    Dimension { got: usize, want: usize },
}

impl VectorError {
    /// What went wrong with the file (or folder) at `path`.
    pub fn file(path: &std::path::Path, message: impl std::fmt::Display) -> Self {
        VectorError::File { path: path.display().to_string(), message: message.to_string() }
    }
}

/// Where the collections live (from `VECTOR_DIR`, `QDRANT_*`, `ANN_*`).
#[derive(Clone, Default)]
pub struct StoreConfig {
    /// The embedded store's folder.
    pub dir: std::path::PathBuf,
    /// A Qdrant server instead of the embedded store.
    pub qdrant_url: Option<String>,
    pub qdrant_api_key: Option<String>,
    pub qdrant_collection_prefix: String,
    /// Approximate search for large embedded collections (`None`: always exact).
    pub ann: Option<ivf::Ann>,
}

/// The collection `name` (`exemplars`, `events`) as configured: on the Qdrant
/// server at `QDRANT_URL`, else the embedded store `VECTOR_DIR/{name}.vec` (with its
/// IVF index from `ANN_MIN_ROWS`). Where it lives, for messages: the second value.
pub fn open(config: &StoreConfig, name: &str) -> anyhow::Result<(Arc<dyn VectorStore>, String)> {
    if let Some(remote) = qdrant(config, name)? {
        return Ok(remote);
    }
    let path = config.dir.join(format!("{name}.vec"));
    let store = flat::FlatStore::open(&path)
        .map_err(|e| anyhow::anyhow!("{name} {}: {e}", path.display()))?
        .with_ann(config.ann);
    Ok((Arc::new(store), path.display().to_string()))
}

/// Like [`open`], for a collection of recent items that keeps at most `max_rows`
/// of them embedded (`window`: segments `VECTOR_DIR/{name}.{n}.vec`); on Qdrant the
/// server keeps everything.
pub fn open_window(
    config: &StoreConfig,
    name: &str,
    max_rows: usize,
) -> anyhow::Result<(Arc<dyn VectorStore>, String)> {
    if let Some(remote) = qdrant(config, name)? {
        return Ok(remote);
    }
    let store =
        window::Window::open(&config.dir, name, max_rows, config.ann).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    let at = format!("{}/{name}.*.vec (the newest {max_rows})", config.dir.display());
    Ok((Arc::new(store), at))
}

/// The collection on the Qdrant server, when `QDRANT_URL` is set.
fn qdrant(config: &StoreConfig, name: &str) -> anyhow::Result<Option<(Arc<dyn VectorStore>, String)>> {
    let Some(url) = &config.qdrant_url else { return Ok(None) };
    #[cfg(feature = "qdrant")]
    {
        let collection = format!("{}{name}", config.qdrant_collection_prefix);
        let store = qdrant::QdrantStore::connect(url, config.qdrant_api_key.clone(), collection.clone())?;
        Ok(Some((Arc::new(store), format!("{url} collection {collection}"))))
    }
    #[cfg(not(feature = "qdrant"))]
    {
        let _ = name;
        anyhow::bail!(
            "QDRANT_URL is set ({url}) but this binary was built without the `qdrant` feature: rebuild with --features qdrant, or unset QDRANT_URL"
        );
    }
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

#[cfg(test)]
mod tests {
    #[test]
    fn qdrant_url_that_cannot_be_used_stops_start_up_clearly() {
        // Nothing listens on port 1: refused with the feature, and without it the build is named.
        let config = super::StoreConfig {
            qdrant_url: Some("http://127.0.0.1:1".into()),
            qdrant_collection_prefix: "palisade_".into(),
            ..Default::default()
        };
        let err = super::open(&config, "exemplars").err().expect("refused").to_string();
        let expected = if cfg!(feature = "qdrant") {
            "qdrant collection palisade_exemplars"
        } else {
            "without the `qdrant` feature"
        };
        assert!(err.contains(expected), "{err}");
    }
}
