//! Exact cosine search over normalised vectors kept in one contiguous buffer,
//! persisted as an append-only file: every upsert appends its items (a later
//! record with the same id wins on load), so adding a few vectors never rewrites
//! the whole file. Search is exact (`dot::dots` over every row) until the store
//! reaches `Ann::min_rows`; from there an IVF index (`ivf.rs`) narrows each query
//! to the rows of its nearest lists.
//!
//! File format (little endian): magic `PLSV2\0`, u32 dim, then records until the
//! end: u32 len + id, u32 len + label, u32 len + text, dim × f32. A record cut
//! short by a crash is dropped on load.

use super::dot::dots;
use super::ivf::{Ann, Ivf, top_k};
use super::{Item, Neighbour, VectorError, VectorStore};
use std::collections::HashMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

const MAGIC: &[u8; 6] = b"PLSV2\0";

#[derive(Default)]
struct Inner {
    dim: usize,
    ids: Vec<Arc<str>>,
    labels: Vec<Arc<str>>,
    texts: Vec<Arc<str>>,
    vectors: Vec<f32>,
    index: HashMap<String, usize>,
    ann: Option<Ann>,
    ivf: Option<Ivf>,
}

pub struct FlatStore {
    path: Option<PathBuf>,
    inner: RwLock<Inner>,
    /// The open append log (file-backed stores only).
    log: Mutex<Option<BufWriter<std::fs::File>>>,
}

impl FlatStore {
    /// An empty in-memory store.
    pub fn memory() -> Self {
        FlatStore { path: None, inner: RwLock::new(Inner::default()), log: Mutex::new(None) }
    }

    /// Open (or start) the store persisted at `path`.
    pub fn open(path: &Path) -> Result<Self, VectorError> {
        let store = FlatStore::memory();
        if path.exists() {
            store.insert(read_file(path)?)?;
        }
        Ok(FlatStore { path: Some(path.to_path_buf()), ..store })
    }

    /// Search approximately from `ann.min_rows` rows on (`None`: always exactly).
    pub fn with_ann(self, ann: Option<Ann>) -> Self {
        {
            let mut s = self.inner.write().expect("vector lock");
            s.ann = ann.filter(|a| a.min_rows > 0 && a.probes > 0);
            s.ivf = None;
            s.reindex();
        }
        self
    }

    /// The vector of row `i` (rows in insertion order).
    pub fn vector(&self, i: usize) -> Vec<f32> {
        let s = self.inner.read().expect("vector lock");
        s.vectors[i * s.dim..(i + 1) * s.dim].to_vec()
    }

    /// Whether searches go through the approximate index now.
    pub fn is_indexed(&self) -> bool {
        self.inner.read().expect("vector lock").ivf.is_some()
    }

    fn insert(&self, items: Vec<Item>) -> Result<(), VectorError> {
        let mut s = self.inner.write().expect("vector lock");
        for item in items {
            s.insert(item)?;
        }
        s.reindex();
        Ok(())
    }

    /// Append items to the file, writing the header first when the file is new.
    fn append(&self, items: &[Item], dim: usize) -> Result<(), VectorError> {
        let Some(path) = &self.path else { return Ok(()) };
        let err = |e: std::io::Error| VectorError::File { path: path.display().to_string(), message: e.to_string() };
        let mut log = self.log.lock().expect("vector log lock");
        if log.is_none() {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(err)?;
            }
            let file = std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(err)?;
            let fresh = file.metadata().map_err(err)?.len() == 0;
            let mut w = BufWriter::new(file);
            if fresh {
                w.write_all(MAGIC).map_err(err)?;
                w.write_all(&(dim as u32).to_le_bytes()).map_err(err)?;
            }
            *log = Some(w);
        }
        let w = log.as_mut().expect("log open");
        for item in items {
            for text in [&item.id, &item.label, &item.text] {
                w.write_all(&(text.len() as u32).to_le_bytes()).map_err(err)?;
                w.write_all(text.as_bytes()).map_err(err)?;
            }
            for x in &item.vector {
                w.write_all(&x.to_le_bytes()).map_err(err)?;
            }
        }
        w.flush().map_err(err)
    }
}

impl Inner {
    fn insert(&mut self, item: Item) -> Result<(), VectorError> {
        if self.dim == 0 {
            self.dim = item.vector.len();
        }
        if item.vector.len() != self.dim {
            return Err(VectorError::Dimension { got: item.vector.len(), want: self.dim });
        }
        let dim = self.dim;
        match self.index.get(&item.id).copied() {
            Some(i) => {
                if let Some(ivf) = &mut self.ivf {
                    ivf.update(i, &item.vector);
                }
                self.labels[i] = item.label.into();
                self.texts[i] = item.text.into();
                self.vectors[i * dim..(i + 1) * dim].copy_from_slice(&item.vector);
            }
            None => {
                let i = self.ids.len();
                if let Some(ivf) = &mut self.ivf {
                    ivf.add(i, &item.vector);
                }
                self.index.insert(item.id.clone(), i);
                self.ids.push(item.id.into());
                self.labels.push(item.label.into());
                self.texts.push(item.text.into());
                self.vectors.extend_from_slice(&item.vector);
            }
        }
        Ok(())
    }

    /// (Re)build the index when the store first reaches `min_rows`, and again each
    /// time it has doubled since (new rows join their nearest list in between).
    fn reindex(&mut self) {
        let Some(ann) = self.ann else { return };
        let n = self.ids.len();
        if n >= ann.min_rows && self.ivf.as_ref().is_none_or(|ivf| n >= 2 * ivf.trained_at) {
            let started = std::time::Instant::now();
            self.ivf = Some(Ivf::build(&self.vectors, self.dim));
            tracing::info!(rows = n, ms = started.elapsed().as_millis() as u64, "vector index built");
        }
    }

    /// The `k` best rows for each query: exact, or over the probed lists.
    fn best(&self, queries: &[f32], k: usize) -> Vec<Vec<(f32, usize)>> {
        let dim = self.dim;
        match (&self.ivf, self.ann) {
            (Some(ivf), Some(ann)) => ivf.search(queries, &self.vectors, ann.probes, k),
            _ => {
                let mut scores = Vec::new();
                dots(&queries.chunks_exact(dim).collect::<Vec<_>>(), &self.vectors, dim, &mut scores);
                let n = self.ids.len();
                scores
                    .chunks_exact(n)
                    .map(|row| top_k(row.iter().copied().enumerate().map(|(i, s)| (s, i)), k))
                    .collect()
            }
        }
    }
}

impl VectorStore for FlatStore {
    fn upsert(&self, items: Vec<Item>) -> Result<(), VectorError> {
        let dim = {
            let s = self.inner.read().expect("vector lock");
            if s.dim == 0 { items.first().map_or(0, |i| i.vector.len()) } else { s.dim }
        };
        if let Some(bad) = items.iter().find(|i| i.vector.len() != dim) {
            return Err(VectorError::Dimension { got: bad.vector.len(), want: dim });
        }
        self.append(&items, dim)?;
        self.insert(items)
    }

    fn search(&self, query: &[f32], k: usize) -> Vec<Neighbour> {
        self.search_many(&[query.to_vec()], k).pop().unwrap_or_default()
    }

    /// Exact: the batch's dot products with every row (`dot::dots`), then a top-k per
    /// query. Indexed: the probed lists' rows per query.
    fn search_many(&self, queries: &[Vec<f32>], k: usize) -> Vec<Vec<Neighbour>> {
        let s = self.inner.read().expect("vector lock");
        if s.dim == 0 || k == 0 || s.ids.is_empty() || queries.iter().any(|q| q.len() != s.dim) {
            return vec![Vec::new(); queries.len()];
        }
        let flat: Vec<f32> = queries.iter().flatten().copied().collect();
        s.best(&flat, k).into_iter().map(|best| s.neighbours(best)).collect()
    }

    fn len(&self) -> usize {
        self.inner.read().expect("vector lock").ids.len()
    }

    fn persist(&self) -> Result<(), VectorError> {
        let Some(path) = &self.path else { return Ok(()) };
        let err = |e: std::io::Error| VectorError::File { path: path.display().to_string(), message: e.to_string() };
        if let Some(w) = self.log.lock().expect("vector log lock").as_mut() {
            w.flush().map_err(err)?;
            w.get_ref().sync_data().map_err(err)?;
        }
        Ok(())
    }
}

impl Inner {
    fn neighbours(&self, best: Vec<(f32, usize)>) -> Vec<Neighbour> {
        best.into_iter()
            .map(|(similarity, i)| Neighbour {
                id: self.ids[i].clone(),
                label: self.labels[i].clone(),
                text: self.texts[i].clone(),
                similarity,
            })
            .collect()
    }
}

fn read_file(path: &Path) -> Result<Vec<Item>, VectorError> {
    let bad = |message: String| VectorError::File { path: path.display().to_string(), message };
    let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(bad("not a Palisade vector file (or one of an older format: import the bank again)".into()));
    }
    let dim = u32::from_le_bytes([bytes[6], bytes[7], bytes[8], bytes[9]]) as usize;
    let mut at = 10;
    let mut items = Vec::new();
    let take = |at: &mut usize, n: usize| -> Option<&[u8]> {
        let slice = bytes.get(*at..*at + n)?;
        *at += n;
        Some(slice)
    };
    let string = |at: &mut usize| -> Option<String> {
        let len = take(at, 4)?;
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        String::from_utf8(take(at, len)?.to_vec()).ok()
    };
    while at < bytes.len() {
        let record = (|| {
            let (id, label, text) = (string(&mut at)?, string(&mut at)?, string(&mut at)?);
            let raw = take(&mut at, dim * 4)?;
            let vector = raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            Some(Item { id, label, text, vector })
        })();
        match record {
            Some(item) => items.push(item),
            None => {
                tracing::warn!(path = %path.display(), "vector file ends in a cut-off record; ignoring it");
                break;
            }
        }
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, label: &str, v: [f32; 2]) -> Item {
        Item { id: id.into(), label: label.into(), text: format!("text {id}"), vector: v.to_vec() }
    }

    #[test]
    fn nearest_first_upsert_replaces_and_file_round_trips() {
        let dir = std::env::temp_dir().join(format!("palisade-flat-{}", std::process::id()));
        let path = dir.join("bank.vec");
        let store = FlatStore::open(&path).unwrap();
        store
            .upsert(vec![
                item("a", "SPAM", [1.0, 0.0]),
                item("b", "LOW_RISK", [0.0, 1.0]),
                item("c", "TOXIC", [0.6, 0.8]),
            ])
            .unwrap();
        let hits = store.search(&[1.0, 0.0], 2);
        assert_eq!(hits.iter().map(|h| &*h.id).collect::<Vec<_>>(), ["a", "c"]);
        let many = store.search_many(&[vec![1.0, 0.0], vec![0.0, 1.0]], 2);
        assert_eq!(many[0].iter().map(|h| &*h.id).collect::<Vec<_>>(), ["a", "c"]);
        assert_eq!(many[1].iter().map(|h| &*h.id).collect::<Vec<_>>(), ["b", "c"]);
        assert!((many[0][1].similarity - hits[1].similarity).abs() < 1e-6);
        store.upsert(vec![item("a", "SPAM", [0.0, 1.0])]).unwrap();
        assert_eq!(store.len(), 3);
        assert_eq!(store.search(&[1.0, 0.0], 1)[0].id.as_ref(), "c");
        assert!(matches!(
            store.upsert(vec![Item { vector: vec![1.0], ..item("d", "SPAM", [0.0, 0.0]) }]),
            Err(VectorError::Dimension { .. })
        ));
        store.persist().unwrap();
        let again = FlatStore::open(&path).unwrap();
        assert_eq!(again.len(), 3);
        assert_eq!(again.search(&[1.0, 0.0], 1)[0].text.as_ref(), "text c");
        std::fs::remove_dir_all(dir).ok();
    }
}
