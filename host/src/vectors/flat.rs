//! Exact cosine search over normalised vectors kept in one contiguous buffer,
//! persisted to a single binary file (written to a temporary and renamed).
//! Right for an example bank of tens of thousands; past events beyond that want
//! an approximate index behind the same trait.
//!
//! File format (little endian): magic `PLSV1\0`, u32 dim, u32 count, then per
//! item: u32 len + id, u32 len + label, u32 len + text, dim × f32.

use super::{Item, Neighbour, VectorError, VectorStore};
use std::collections::HashMap;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::RwLock;

const MAGIC: &[u8; 6] = b"PLSV1\0";

#[derive(Default)]
struct Inner {
    dim: usize,
    ids: Vec<String>,
    labels: Vec<String>,
    texts: Vec<String>,
    vectors: Vec<f32>,
    index: HashMap<String, usize>,
}

pub struct FlatStore {
    path: Option<PathBuf>,
    inner: RwLock<Inner>,
}

impl FlatStore {
    /// An empty in-memory store.
    pub fn memory() -> Self {
        FlatStore { path: None, inner: RwLock::new(Inner::default()) }
    }

    /// Open (or start) the store persisted at `path`.
    pub fn open(path: &Path) -> Result<Self, VectorError> {
        let store = FlatStore { path: Some(path.to_path_buf()), inner: RwLock::new(Inner::default()) };
        if path.exists() {
            let items = read_file(path)?;
            store.upsert(items)?;
        }
        Ok(store)
    }
}

impl VectorStore for FlatStore {
    fn upsert(&self, items: Vec<Item>) -> Result<(), VectorError> {
        let mut s = self.inner.write().expect("vector lock");
        for item in items {
            if s.dim == 0 {
                s.dim = item.vector.len();
            }
            if item.vector.len() != s.dim {
                return Err(VectorError::Dimension { got: item.vector.len(), want: s.dim });
            }
            let dim = s.dim;
            match s.index.get(&item.id).copied() {
                Some(i) => {
                    s.labels[i] = item.label;
                    s.texts[i] = item.text;
                    s.vectors[i * dim..(i + 1) * dim].copy_from_slice(&item.vector);
                }
                None => {
                    let i = s.ids.len();
                    s.index.insert(item.id.clone(), i);
                    s.ids.push(item.id);
                    s.labels.push(item.label);
                    s.texts.push(item.text);
                    s.vectors.extend_from_slice(&item.vector);
                }
            }
        }
        Ok(())
    }

    fn search(&self, query: &[f32], k: usize) -> Vec<Neighbour> {
        let s = self.inner.read().expect("vector lock");
        if s.dim == 0 || query.len() != s.dim || k == 0 {
            return Vec::new();
        }
        s.neighbours(top_k(s.vectors.chunks_exact(s.dim).map(|v| dot(v, query)), k))
    }

    /// One matrix product for the whole batch (SIMD GEMM), then a top-k per query.
    fn search_many(&self, queries: &[Vec<f32>], k: usize) -> Vec<Vec<Neighbour>> {
        let s = self.inner.read().expect("vector lock");
        let n = s.ids.len();
        if s.dim == 0 || k == 0 || queries.iter().any(|q| q.len() != s.dim) {
            return vec![Vec::new(); queries.len()];
        }
        let bank = ndarray::ArrayView2::from_shape((n, s.dim), &s.vectors).expect("bank shape");
        let flat: Vec<f32> = queries.iter().flatten().copied().collect();
        let q = ndarray::ArrayView2::from_shape((queries.len(), s.dim), &flat).expect("query shape");
        let scores = q.dot(&bank.t());
        scores.outer_iter().map(|row| s.neighbours(top_k(row.iter().copied(), k))).collect()
    }

    fn len(&self) -> usize {
        self.inner.read().expect("vector lock").ids.len()
    }

    fn persist(&self) -> Result<(), VectorError> {
        let Some(path) = &self.path else { return Ok(()) };
        let s = self.inner.read().expect("vector lock");
        let err = |e: std::io::Error| VectorError::File { path: path.display().to_string(), message: e.to_string() };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let tmp = path.with_extension("tmp");
        {
            let mut w = BufWriter::new(std::fs::File::create(&tmp).map_err(err)?);
            w.write_all(MAGIC).map_err(err)?;
            w.write_all(&(s.dim as u32).to_le_bytes()).map_err(err)?;
            w.write_all(&(s.ids.len() as u32).to_le_bytes()).map_err(err)?;
            for i in 0..s.ids.len() {
                for text in [&s.ids[i], &s.labels[i], &s.texts[i]] {
                    w.write_all(&(text.len() as u32).to_le_bytes()).map_err(err)?;
                    w.write_all(text.as_bytes()).map_err(err)?;
                }
                for x in &s.vectors[i * s.dim..(i + 1) * s.dim] {
                    w.write_all(&x.to_le_bytes()).map_err(err)?;
                }
            }
            w.flush().map_err(err)?;
        }
        std::fs::rename(&tmp, path).map_err(err)
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

/// The `k` best (score, index) pairs, best first (a small sorted list: k is small).
fn top_k(scores: impl Iterator<Item = f32>, k: usize) -> Vec<(f32, usize)> {
    let mut best: Vec<(f32, usize)> = Vec::with_capacity(k + 1);
    for (i, sim) in scores.enumerate() {
        if best.len() < k || sim > best[best.len() - 1].0 {
            let at = best.partition_point(|(b, _)| *b >= sim);
            best.insert(at, (sim, i));
            best.truncate(k);
        }
    }
    best
}

/// Dot product with eight independent accumulators, so the compiler can keep
/// them in SIMD registers (a plain `zip().sum()` is sequential in float order).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

fn read_file(path: &Path) -> Result<Vec<Item>, VectorError> {
    let bad = |message: String| VectorError::File { path: path.display().to_string(), message };
    let mut r = BufReader::new(std::fs::File::open(path).map_err(|e| bad(e.to_string()))?);
    let mut exact = |buf: &mut [u8]| r.read_exact(buf).map_err(|e| bad(format!("truncated: {e}")));
    let mut magic = [0u8; 6];
    exact(&mut magic)?;
    if &magic != MAGIC {
        return Err(bad("not a Palisade vector file".into()));
    }
    let u32_ = |exact: &mut dyn FnMut(&mut [u8]) -> Result<(), VectorError>| -> Result<usize, VectorError> {
        let mut b = [0u8; 4];
        exact(&mut b)?;
        Ok(u32::from_le_bytes(b) as usize)
    };
    let (dim, count) = (u32_(&mut exact)?, u32_(&mut exact)?);
    let mut items = Vec::with_capacity(count);
    for _ in 0..count {
        let mut strings = [String::new(), String::new(), String::new()];
        for s in &mut strings {
            let mut bytes = vec![0u8; u32_(&mut exact)?];
            exact(&mut bytes)?;
            *s = String::from_utf8(bytes).map_err(|e| bad(e.to_string()))?;
        }
        let mut raw = vec![0u8; dim * 4];
        exact(&mut raw)?;
        let vector = raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        let [id, label, text] = strings;
        items.push(Item { id, label, text, vector });
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
        assert_eq!(hits.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(), ["a", "c"]);
        let many = store.search_many(&[vec![1.0, 0.0], vec![0.0, 1.0]], 2);
        assert_eq!(many[0].iter().map(|h| h.id.as_str()).collect::<Vec<_>>(), ["a", "c"]);
        assert_eq!(many[1].iter().map(|h| h.id.as_str()).collect::<Vec<_>>(), ["b", "c"]);
        assert!((many[0][1].similarity - hits[1].similarity).abs() < 1e-6);
        store.upsert(vec![item("a", "SPAM", [0.0, 1.0])]).unwrap();
        assert_eq!(store.len(), 3);
        assert_eq!(store.search(&[1.0, 0.0], 1)[0].id, "c");
        assert!(matches!(
            store.upsert(vec![Item { vector: vec![1.0], ..item("d", "SPAM", [0.0, 0.0]) }]),
            Err(VectorError::Dimension { .. })
        ));
        store.persist().unwrap();
        let again = FlatStore::open(&path).unwrap();
        assert_eq!(again.len(), 3);
        assert_eq!(again.search(&[1.0, 0.0], 1)[0].text, "text c");
        std::fs::remove_dir_all(dir).ok();
    }
}
