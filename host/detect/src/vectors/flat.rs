//! Exact cosine search over normalised vectors kept in one contiguous buffer,
//! persisted as an append-only file: every upsert appends its items (a later
//! record with the same id wins on load), so adding a few vectors never rewrites
//! the whole file. Search is exact (`dot::dots` over every row) until the store
//! reaches `Ann::min_rows`; from there an IVF index (`ivf.rs`) narrows each query
//! to the rows of its nearest lists.
//!
//! File format (little endian): magic `PLSV2\0`, u32 dim, then records until the
//! end: u32 len + id, u32 len + label, u32 len + text, dim × f32. The header is
//! written with the first record, so it always holds the records' real dimension
//! (an empty upsert writes nothing). On open, a record cut short by a crash (a
//! torn tail) is truncated away before anything is appended, as Redis's
//! `aof-load-truncated` does; a file that cannot be read as a whole (a bad header,
//! a record that is not UTF-8) is an error naming the file, never a panic, and
//! [`FlatStore::open_or_set_aside`] moves such a file aside and starts empty.
//! No lock or slice range can panic on a request path: the rows' dimension is
//! checked before any row is touched, and a poisoned lock is taken as it is.

use super::dot::dots;
use super::ivf::{Ann, Ivf, top_k};
use super::{Item, Neighbour, VectorError, VectorStore};
use std::collections::HashMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

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

    /// Open (or start) the store persisted at `path`. A torn tail is truncated
    /// away (and logged); a file that cannot be read is an error naming it.
    pub fn open(path: &Path) -> Result<Self, VectorError> {
        let store = FlatStore::memory();
        if path.exists() {
            let loaded = read_file(path)?;
            if loaded.whole < loaded.size {
                tracing::warn!(path = %path.display(), kept = loaded.whole, dropped = loaded.size - loaded.whole,
                    "vector file ends in a cut-off record (a crash mid-write); truncating it there");
                let file = std::fs::OpenOptions::new().write(true).open(path);
                file.and_then(|f| f.set_len(loaded.whole).and_then(|_| f.sync_data()))
                    .map_err(|e| VectorError::file(path, e))?;
            }
            store.write().dim = loaded.dim;
            store.insert(loaded.items)?;
        }
        Ok(FlatStore { path: Some(path.to_path_buf()), ..store })
    }

    /// [`FlatStore::open`], except that a file that cannot be read is moved aside
    /// (`NAME.vec.unreadable-SECONDS`, logged) and the store starts empty: for
    /// collections that are only context (past events), where serving without
    /// them beats not starting.
    pub fn open_or_set_aside(path: &Path) -> Result<Self, VectorError> {
        match FlatStore::open(path) {
            Ok(store) => Ok(store),
            Err(VectorError::File { message, .. }) if path.is_file() => {
                let secs =
                    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
                let aside = path.with_extension(format!("vec.unreadable-{secs}"));
                std::fs::rename(path, &aside).map_err(|e| VectorError::file(path, e))?;
                tracing::error!(path = %path.display(), moved_to = %aside.display(), error = %message,
                    "vector file cannot be read; moved it aside and starting this collection empty");
                FlatStore::open(path)
            }
            Err(e) => Err(e),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn log(&self) -> MutexGuard<'_, Option<BufWriter<std::fs::File>>> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Search approximately from `ann.min_rows` rows on (`None`: always exactly).
    pub fn with_ann(self, ann: Option<Ann>) -> Self {
        {
            let mut s = self.write();
            s.ann = ann.filter(|a| a.min_rows > 0 && a.probes > 0);
            s.ivf = None;
            s.reindex();
        }
        self
    }

    /// The vector of row `i` (rows in insertion order; empty past the last row).
    pub fn vector(&self, i: usize) -> Vec<f32> {
        let s = self.read();
        s.vectors.get(i * s.dim..(i + 1) * s.dim).map(<[f32]>::to_vec).unwrap_or_default()
    }

    /// Whether searches go through the approximate index now.
    pub fn is_indexed(&self) -> bool {
        self.read().ivf.is_some()
    }

    fn insert(&self, items: Vec<Item>) -> Result<(), VectorError> {
        let mut s = self.write();
        for item in items {
            s.insert(item)?;
        }
        s.reindex();
        Ok(())
    }

    /// Append items to the file, writing the header first when the file is new.
    fn append(&self, items: &[Item], dim: usize) -> Result<(), VectorError> {
        let Some(path) = &self.path else { return Ok(()) };
        let err = |e: std::io::Error| VectorError::file(path, e);
        let mut log = self.log();
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
        let Some(w) = log.as_mut() else { return Ok(()) };
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
    /// Add or replace one row; a vector of another dimension is refused before
    /// any row is touched.
    fn insert(&mut self, item: Item) -> Result<(), VectorError> {
        if self.dim == 0 {
            self.dim = item.vector.len();
        }
        if item.vector.len() != self.dim || self.dim == 0 {
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
        let Some(first) = items.first() else { return Ok(()) };
        let dim = match self.read().dim {
            0 => first.vector.len(),
            dim => dim,
        };
        if let Some(bad) = items.iter().find(|i| i.vector.len() != dim || dim == 0) {
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
        let s = self.read();
        if s.dim == 0 || k == 0 || s.ids.is_empty() || queries.iter().any(|q| q.len() != s.dim) {
            return vec![Vec::new(); queries.len()];
        }
        let flat: Vec<f32> = queries.iter().flatten().copied().collect();
        s.best(&flat, k).into_iter().map(|best| s.neighbours(best)).collect()
    }

    fn len(&self) -> usize {
        self.read().ids.len()
    }

    fn persist(&self) -> Result<(), VectorError> {
        let Some(path) = &self.path else { return Ok(()) };
        let err = |e: std::io::Error| VectorError::file(path, e);
        if let Some(w) = self.log().as_mut() {
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

/// What a vector file holds: its dimension, its records, and how many of its
/// bytes are whole records (`whole < size`: a torn tail).
struct Loaded {
    dim: usize,
    items: Vec<Item>,
    whole: u64,
    size: u64,
}

fn read_file(path: &Path) -> Result<Loaded, VectorError> {
    let bad = |message: String| VectorError::file(path, message);
    let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let size = bytes.len() as u64;
    if bytes.is_empty() {
        return Ok(Loaded { dim: 0, items: Vec::new(), whole: 0, size });
    }
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(bad("not a Palisade vector file (or one of an older format: import the bank again)".into()));
    }
    let dim = u32::from_le_bytes([bytes[6], bytes[7], bytes[8], bytes[9]]) as usize;
    if dim == 0 {
        if bytes.len() > 10 {
            return Err(bad("its header records dimension 0 but records follow (written by an empty first \
                            upsert of an older Palisade): its records cannot be read"
                .into()));
        }
        // A header alone: start the file again, so the first record writes its real dimension.
        return Ok(Loaded { dim: 0, items: Vec::new(), whole: 0, size });
    }
    let mut at = 10;
    let mut items = Vec::new();
    // `None`: the file ends inside the record (a torn tail).
    let take = |at: &mut usize, n: usize| -> Option<&[u8]> {
        let slice = bytes.get(*at..at.checked_add(n)?)?;
        *at += n;
        Some(slice)
    };
    let string = |at: &mut usize| -> Option<Result<String, String>> {
        let len = take(at, 4)?;
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        Some(String::from_utf8(take(at, len)?.to_vec()).map_err(|_| "a record's text is not UTF-8".to_string()))
    };
    let mut whole = at;
    while at < bytes.len() {
        let record = (|| -> Option<Result<Item, String>> {
            let (id, label, text) = (string(&mut at)?, string(&mut at)?, string(&mut at)?);
            let raw = take(&mut at, dim * 4)?;
            let (id, label, text) = match (id, label, text) {
                (Ok(id), Ok(label), Ok(text)) => (id, label, text),
                (Err(e), ..) | (_, Err(e), _) | (.., Err(e)) => return Some(Err(e)),
            };
            let vector = raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            Some(Ok(Item { id, label, text, vector }))
        })();
        match record {
            Some(Ok(item)) => {
                items.push(item);
                whole = at;
            }
            Some(Err(e)) => return Err(bad(format!("{e} (record at byte {whole}): the file is corrupt"))),
            None => break,
        }
    }
    Ok(Loaded { dim, items, whole: whole as u64, size })
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

    fn dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("palisade-flat-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// An empty first upsert (a batch with nothing embedded) used to write a header
    /// of dimension 0, so every later record misparsed on the next start and the
    /// first upsert after it panicked under the lock.
    #[test]
    fn an_empty_first_upsert_writes_nothing_and_a_restart_reads_every_record() {
        let dir = dir("empty-first");
        let path = dir.join("events.0.vec");
        let store = FlatStore::open(&path).unwrap();
        store.upsert(Vec::new()).unwrap();
        assert!(!path.exists(), "an empty upsert creates no file");
        store.upsert(vec![item("a", "SPAM", [1.0, 0.0]), item("b", "LOW_RISK", [0.0, 1.0])]).unwrap();
        drop(store);
        let again = FlatStore::open(&path).unwrap();
        assert_eq!(again.len(), 2);
        // The same ids again (a redelivery after a restart) replace their rows.
        again.upsert(vec![item("a", "TOXIC", [0.6, 0.8])]).unwrap();
        assert_eq!(again.len(), 2);
        assert_eq!(again.search(&[0.6, 0.8], 1)[0].label.as_ref(), "TOXIC");
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn a_torn_tail_is_truncated_before_new_records_follow_it() {
        let dir = dir("torn");
        let path = dir.join("bank.vec");
        let store = FlatStore::open(&path).unwrap();
        store.upsert(vec![item("a", "SPAM", [1.0, 0.0]), item("b", "LOW_RISK", [0.0, 1.0])]).unwrap();
        drop(store);
        let whole = std::fs::metadata(&path).unwrap().len();
        // A crash mid-write: a third record cut off halfway.
        let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[1, 0, 0, 0, b'c', 4, 0, 0, 0, b'S', b'P']).unwrap();
        drop(f);
        let store = FlatStore::open(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), whole, "the torn record is cut away on open");
        store.upsert(vec![item("d", "TOXIC", [0.6, 0.8])]).unwrap();
        drop(store);
        let again = FlatStore::open(&path).unwrap();
        assert_eq!(again.len(), 3, "the record appended after the tear reads back");
        assert_eq!(again.search(&[0.6, 0.8], 1)[0].id.as_ref(), "d");
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn an_unreadable_file_is_an_error_naming_it_or_is_set_aside() {
        let dir = dir("corrupt");
        // What the old empty first upsert left: a dimension-0 header with records after it.
        // A file of this dimension with these bytes after its header.
        let file = |name: &str, dim: u32, records: &[u8]| {
            let path = dir.join(name);
            std::fs::write(&path, [MAGIC.as_slice(), &dim.to_le_bytes(), records].concat()).unwrap();
            path
        };
        let legacy = file("events.0.vec", 0, &[1, 0, 0, 0, b'a', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x3f]);
        let err = FlatStore::open(&legacy).err().expect("refused").to_string();
        assert!(err.contains("events.0.vec") && err.contains("dimension 0"), "{err}");
        // Garbage in a record (not UTF-8) is corruption, not a torn tail.
        let garbage = file("garbage.vec", 2, &[2, 0, 0, 0, 0xff, 0xfe, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let err = FlatStore::open(&garbage).err().expect("refused").to_string();
        assert!(err.contains("garbage.vec") && err.contains("not UTF-8"), "{err}");
        // As context, the store starts empty and the file is kept aside for a person to look at.
        let store = FlatStore::open_or_set_aside(&legacy).unwrap();
        assert_eq!(store.len(), 0);
        let aside: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("events.0.vec.unreadable-"))
            .collect();
        assert_eq!(aside.len(), 1, "moved aside");
        store.upsert(vec![item("a", "SPAM", [1.0, 0.0])]).unwrap();
        assert_eq!(FlatStore::open(&legacy).unwrap().len(), 1, "a fresh file in its place");
        std::fs::remove_dir_all(dir).ok();
    }
}
