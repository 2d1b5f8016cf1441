//! Training rows' embeddings saved in a file beside an artifact, keyed by the
//! SHA-256 of the text, so that training again (`palisade train … --add 40
//! rows`) embeds only the rows it has not seen. One model per file: a file of
//! another model or size is not read.
//!
//! Format: a header line `palisade-row-embeddings 1 MODEL DIM\n`, then records
//! of 32 hash bytes and DIM little-endian f32. Written to a temporary file and
//! renamed; a torn tail is ignored. This module reads and writes that file and
//! calls the embedder for the misses; it knows nothing of training.

use super::Embedder;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const MAGIC: &str = "palisade-row-embeddings 1";

/// Vectors by the SHA-256 of their text, for one model.
pub struct SavedEmbeddings {
    model: String,
    dim: usize,
    by_text: HashMap<[u8; 32], Vec<f32>>,
}

/// Where the embeddings of the artifact in `dir` are kept: `DIR.row-embeddings`,
/// beside the folder (promotions and rollbacks move the folder, not this file).
pub fn path_beside(dir: &Path) -> PathBuf {
    let mut name = dir.as_os_str().to_owned();
    name.push(".row-embeddings");
    PathBuf::from(name)
}

fn hash(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

impl SavedEmbeddings {
    /// The vectors of `model` (of `dim` numbers) found in `files`; a missing
    /// file, or one of another model, adds nothing.
    pub fn load(files: &[PathBuf], model: &str, dim: usize) -> Self {
        let mut saved = SavedEmbeddings { model: model.to_string(), dim, by_text: HashMap::new() };
        for file in files {
            if let Ok(bytes) = std::fs::read(file) {
                saved.read(&bytes);
            }
        }
        saved
    }

    fn read(&mut self, bytes: &[u8]) {
        let Some(end) = bytes.iter().position(|b| *b == b'\n') else { return };
        let header = String::from_utf8_lossy(&bytes[..end]);
        if header != format!("{MAGIC} {} {}", self.model, self.dim) {
            return;
        }
        let record = 32 + 4 * self.dim;
        for r in bytes[end + 1..].chunks_exact(record) {
            let key: [u8; 32] = r[..32].try_into().expect("32 bytes");
            let vector = r[32..].chunks_exact(4).map(|f| f32::from_le_bytes(f.try_into().expect("4 bytes"))).collect();
            self.by_text.insert(key, vector);
        }
    }

    /// How many texts it holds.
    pub fn len(&self) -> usize {
        self.by_text.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_text.is_empty()
    }

    /// The vector of every text, in order: saved ones as they are, the others
    /// embedded by `embed` (called once, with every text not saved) and kept.
    /// Returns the vectors and how many texts were embedded.
    pub fn embed_missing(
        &mut self,
        texts: &[&str],
        embed: impl FnOnce(&[&str]) -> anyhow::Result<Vec<Vec<f32>>>,
    ) -> anyhow::Result<(Vec<Vec<f32>>, usize)> {
        let keys: Vec<[u8; 32]> = texts.iter().map(|t| hash(t)).collect();
        let mut missing: Vec<(&str, [u8; 32])> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (text, key) in texts.iter().zip(&keys) {
            if !self.by_text.contains_key(key) && seen.insert(*key) {
                missing.push((text, *key));
            }
        }
        if !missing.is_empty() {
            let vectors = embed(&missing.iter().map(|(text, _)| *text).collect::<Vec<_>>())?;
            for ((_, key), vector) in missing.iter().zip(vectors) {
                anyhow::ensure!(vector.len() == self.dim, "the model gave {} numbers, not {}", vector.len(), self.dim);
                self.by_text.insert(*key, vector);
            }
        }
        Ok((keys.iter().map(|k| self.by_text[k].clone()).collect(), missing.len()))
    }

    /// Write the vectors of `texts` (those it holds) to `path`, replacing it.
    pub fn save(&self, path: &Path, texts: &[&str]) -> std::io::Result<()> {
        let mut out = format!("{MAGIC} {} {}\n", self.model, self.dim).into_bytes();
        let mut written = std::collections::HashSet::new();
        for text in texts {
            let key = hash(text);
            if let Some(vector) = self.by_text.get(&key).filter(|_| written.insert(key)) {
                out.extend_from_slice(&key);
                vector.iter().for_each(|f| out.extend_from_slice(&f.to_le_bytes()));
            }
        }
        let tmp = path.with_extension("row-embeddings.tmp");
        std::fs::write(&tmp, out)?;
        std::fs::rename(&tmp, path)
    }
}

/// Embed `texts` with `embedder`, reading and then replacing the saved vectors
/// at `keep` (and reading those at `also`, e.g. the active model's): the
/// vectors in order and how many texts the model had to embed.
pub fn embed_with_saved(
    embedder: &Embedder,
    texts: &[&str],
    keep: &Path,
    also: &[PathBuf],
    what: &str,
) -> anyhow::Result<(Vec<Vec<f32>>, usize)> {
    let files: Vec<PathBuf> = std::iter::once(keep.to_path_buf()).chain(also.iter().cloned()).collect();
    let mut saved = SavedEmbeddings::load(&files, &embedder.model_id, embedder.dim);
    let (vectors, embedded) =
        saved.embed_missing(texts, |missing| crate::vectors::bank::embed_texts(embedder, missing, what))?;
    saved.save(keep, texts).map_err(|e| anyhow::anyhow!("{}: {e}", keep.display()))?;
    Ok((vectors, embedded))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake(texts: &[&str]) -> anyhow::Result<Vec<Vec<f32>>> {
        Ok(texts.iter().map(|t| vec![t.len() as f32, 0.5]).collect())
    }

    #[test]
    fn only_texts_not_saved_are_embedded_and_a_file_of_another_model_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clf.row-embeddings");
        let mut saved = SavedEmbeddings::load(std::slice::from_ref(&path), "m", 2);
        let (v, n) = saved.embed_missing(&["a", "bb", "a"], fake).unwrap();
        assert_eq!((v, n), (vec![vec![1.0, 0.5], vec![2.0, 0.5], vec![1.0, 0.5]], 2));
        saved.save(&path, &["a", "bb", "a"]).unwrap();

        let mut again = SavedEmbeddings::load(std::slice::from_ref(&path), "m", 2);
        assert_eq!(again.len(), 2);
        let mut calls = Vec::new();
        let (v, n) = again
            .embed_missing(&["bb", "ccc", "a"], |m| {
                calls.push(m.len());
                fake(m)
            })
            .unwrap();
        assert_eq!((v[1].clone(), n, calls), (vec![3.0, 0.5], 1, vec![1]));

        assert!(SavedEmbeddings::load(std::slice::from_ref(&path), "other", 2).is_empty());
        assert!(SavedEmbeddings::load(std::slice::from_ref(&path), "m", 3).is_empty());
        // A torn tail: the whole records before it are read.
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        assert_eq!(SavedEmbeddings::load(&[path], "m", 2).len(), 1);
    }

    #[test]
    fn the_file_sits_beside_the_artifact_folder() {
        assert_eq!(path_beside(Path::new("var/classifier")), PathBuf::from("var/classifier.row-embeddings"));
    }
}
