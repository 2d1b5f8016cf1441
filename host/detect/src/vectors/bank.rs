//! The labelled example bank: reading labelled JSONL (`{"id", "text", "label"}`,
//! the format of `shared/data/*.jsonl`) and embedding it into a collection.

use super::{Item, VectorStore};
use crate::embed::Embedder;
use std::path::Path;

/// One labelled row.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct Labelled {
    #[serde(default)]
    pub id: String,
    pub text: String,
    pub label: String,
    /// Where the row comes from (`../shared/data`'s `source`), when the file says.
    #[serde(default)]
    pub source: String,
}

/// Read labelled rows from JSONL files; a bad line is an error naming file and line.
pub fn read(files: &[impl AsRef<Path>]) -> anyhow::Result<Vec<Labelled>> {
    let mut rows = Vec::new();
    for file in files {
        let file = file.as_ref();
        let text = std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let row: Labelled =
                serde_json::from_str(line).map_err(|e| anyhow::anyhow!("{}:{}: {e}", file.display(), n + 1))?;
            rows.push(row);
        }
    }
    Ok(rows)
}

/// Embed rows (with a progress bar) and return their vectors, in order.
pub fn embed_rows(embedder: &Embedder, rows: &[Labelled], what: &str) -> anyhow::Result<Vec<Vec<f32>>> {
    embed_texts(embedder, &rows.iter().map(|r| r.text.as_str()).collect::<Vec<_>>(), what)
}

/// Embed texts (with a progress bar) and return their vectors, in order.
pub fn embed_texts(embedder: &Embedder, texts: &[&str], what: &str) -> anyhow::Result<Vec<Vec<f32>>> {
    let progress = palisade_core::progress::bar(what, texts.len() as u64);
    let mut out = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(256) {
        out.extend(embedder.embed(chunk)?);
        progress.inc(chunk.len() as u64);
    }
    progress.finish();
    Ok(out)
}

/// Embed labelled rows into `store` and persist it.
pub fn import(embedder: &Embedder, store: &dyn VectorStore, rows: Vec<Labelled>) -> anyhow::Result<usize> {
    let vectors = embed_rows(embedder, &rows, "embedding examples")?;
    let n = rows.len();
    let items = rows
        .into_iter()
        .zip(vectors)
        .map(|(r, vector)| Item { id: r.id, label: r.label, text: r.text, vector })
        .collect();
    store.upsert(items)?;
    store.persist()?;
    Ok(n)
}
