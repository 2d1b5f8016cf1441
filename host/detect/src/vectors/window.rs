//! A bounded collection of recent items — past events — in two embedded
//! segments (`{name}.{generation}.vec`, each a [`FlatStore`] with its index).
//! New items go to the newer segment; once it holds half the window, the older
//! segment's file is deleted and a fresh segment starts. Memory, disk and search
//! cost stay bounded by the window (a store that only grew would, at a steady
//! intake, run out of memory and make every search slower); the price is that the
//! oldest half-window is forgotten at once. Searches ask both segments and merge.
//! A segment file that cannot be read is moved aside and started empty
//! ([`FlatStore::open_or_set_aside`]): past events are only context.

use super::flat::FlatStore;
use super::ivf::Ann;
use super::{Item, Neighbour, VectorError, VectorStore};
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

pub struct Window {
    dir: PathBuf,
    name: String,
    /// Items per segment before the older one is dropped (half the window).
    half: usize,
    ann: Option<Ann>,
    segments: RwLock<Segments>,
}

struct Segments {
    older: Option<Segment>,
    newer: Segment,
}

struct Segment {
    generation: u64,
    store: Arc<FlatStore>,
}

impl Window {
    /// Open the segments of `name` in `dir` (the two newest; older ones are
    /// deleted), keeping at most `max_rows` items. A pre-window `{name}.vec` is
    /// taken as generation 0.
    pub fn open(dir: &Path, name: &str, max_rows: usize, ann: Option<Ann>) -> Result<Self, VectorError> {
        let err = |e: std::io::Error| VectorError::file(dir, e);
        let legacy = dir.join(format!("{name}.vec"));
        if legacy.exists() {
            std::fs::rename(&legacy, segment_path(dir, name, 0)).map_err(err)?;
        }
        let mut generations: Vec<u64> = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    let file = e.file_name().into_string().ok()?;
                    file.strip_prefix(&format!("{name}."))?.strip_suffix(".vec")?.parse().ok()
                })
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(err(e)),
        };
        generations.sort_unstable();
        while generations.len() > 2 {
            let gone = generations.remove(0);
            std::fs::remove_file(segment_path(dir, name, gone)).map_err(err)?;
        }
        let mut segments: Vec<Segment> =
            generations.into_iter().map(|g| open_segment(dir, name, g, ann)).collect::<Result<_, _>>()?;
        let newer = match segments.pop() {
            Some(s) => s,
            None => open_segment(dir, name, 0, ann)?,
        };
        Ok(Window {
            dir: dir.to_path_buf(),
            name: name.into(),
            half: max_rows.div_ceil(2).max(1),
            ann,
            segments: RwLock::new(Segments { older: segments.pop(), newer }),
        })
    }

    fn stores(&self) -> Vec<Arc<FlatStore>> {
        let s = self.segments.read().unwrap_or_else(PoisonError::into_inner);
        s.older.iter().map(|o| o.store.clone()).chain([s.newer.store.clone()]).collect()
    }
}

fn segment_path(dir: &Path, name: &str, generation: u64) -> PathBuf {
    dir.join(format!("{name}.{generation}.vec"))
}

fn open_segment(dir: &Path, name: &str, generation: u64, ann: Option<Ann>) -> Result<Segment, VectorError> {
    // Past events are context: a segment that cannot be read is set aside, not fatal.
    let store = FlatStore::open_or_set_aside(&segment_path(dir, name, generation))?.with_ann(ann);
    Ok(Segment { generation, store: Arc::new(store) })
}

impl VectorStore for Window {
    fn upsert(&self, items: Vec<Item>) -> Result<(), VectorError> {
        let newer = self.segments.read().unwrap_or_else(PoisonError::into_inner).newer.store.clone();
        newer.upsert(items)?;
        if newer.len() < self.half {
            return Ok(());
        }
        // Rotate: the newer segment becomes the older one; the old older one is gone.
        let mut s = self.segments.write().unwrap_or_else(PoisonError::into_inner);
        if !Arc::ptr_eq(&s.newer.store, &newer) {
            return Ok(()); // another upsert rotated first
        }
        let fresh = open_segment(&self.dir, &self.name, s.newer.generation + 1, self.ann)?;
        let retired = std::mem::replace(&mut s.newer, fresh);
        if let Some(gone) = s.older.replace(retired) {
            let path = segment_path(&self.dir, &self.name, gone.generation);
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), error = %e, "could not delete a retired past-events segment");
            }
        }
        Ok(())
    }

    fn search(&self, query: &[f32], k: usize) -> Vec<Neighbour> {
        self.search_many(&[query.to_vec()], k).pop().unwrap_or_default()
    }

    fn search_many(&self, queries: &[Vec<f32>], k: usize) -> Vec<Vec<Neighbour>> {
        let mut found = vec![Vec::new(); queries.len()];
        for store in self.stores() {
            for (all, more) in found.iter_mut().zip(store.search_many(queries, k)) {
                all.extend(more);
            }
        }
        for all in &mut found {
            all.sort_by(|a, b| b.similarity.total_cmp(&a.similarity));
            all.truncate(k);
        }
        found
    }

    fn len(&self) -> usize {
        self.stores().iter().map(|s| s.len()).sum()
    }

    fn persist(&self) -> Result<(), VectorError> {
        self.stores().iter().try_for_each(|s| s.persist())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, x: f32) -> Item {
        let v = [x, (1.0 - x * x).max(0.0).sqrt()];
        Item { id: id.into(), label: "LOW_RISK".into(), text: format!("text {id}"), vector: v.to_vec() }
    }

    #[test]
    fn the_window_keeps_the_newest_items_across_a_restart() {
        let dir = std::env::temp_dir().join(format!("palisade-window-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let window = Window::open(&dir, "events", 4, None).unwrap();
        for i in 0..7 {
            window.upsert(vec![item(&format!("e{i}"), i as f32 / 10.0)]).unwrap();
            assert!(window.len() <= 4, "at most the window: {}", window.len());
        }
        window.persist().unwrap();
        // Rotations after e1, e3, e5: e4 e5 (older) and e6 (newer) are kept.
        let ids = |w: &Window| {
            let mut ids: Vec<String> = w.search(&[1.0, 0.0], 10).iter().map(|n| n.id.to_string()).collect();
            ids.sort();
            ids
        };
        assert_eq!(ids(&window), ["e4", "e5", "e6"]);
        assert_eq!(window.search(&[1.0, 0.0], 1)[0].id.as_ref(), "e6", "nearest first across segments");
        drop(window);
        let files = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(files, 2, "retired segments are deleted");
        let again = Window::open(&dir, "events", 4, None).unwrap();
        assert_eq!(ids(&again), ["e4", "e5", "e6"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
