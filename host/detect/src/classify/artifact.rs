//! The classifier artifact on disk: a folder with `classifier.json` (what it is:
//! version, categories, feature shape, thresholds, training files with digests
//! and row counts, cross-validation figures, the embedding model it needs) and
//! `weights.bin` (the used hash buckets with their IDF, the weight matrix and
//! intercepts, little-endian) and, when trained with a sentence-embedding model,
//! `embedding.bin` (the embedding head, `head`), and when trained with the
//! toxicity side model, `toxicity.bin` (a copy of it). `classifier.json` holds the
//! sha256 of each: a truncated or altered file is refused, never half-loaded.
//! Written to a temporary folder then renamed, so a reader sees all or nothing.

use super::CATEGORIES;
use super::features::FeatureParams;
use super::head::{HEAD_FILE, Head, HeadMeta};
use crate::toxicity::{self, Toxicity};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const META_FILE: &str = "classifier.json";
pub const WEIGHTS_FILE: &str = "weights.bin";
const MAGIC: &[u8; 8] = b"PLSDCLF1";
/// Bumped whenever features or the file layout change: older artifacts are
/// refused (retrain), and an older build refuses a newer artifact. 3: the
/// toxicity side model's columns.
pub const FORMAT: u32 = 3;
/// The format of an artifact without the toxicity side model: the one before
/// it, so a build from before reads it too (a binary rolled back keeps the model).
pub const FORMAT_WITHOUT_TOXICITY: u32 = 2;
/// The formats this build reads.
const READS: [u32; 2] = [FORMAT_WITHOUT_TOXICITY, FORMAT];

/// A training file as the artifact records it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TrainingFile {
    pub path: String,
    pub sha256: String,
    pub rows: usize,
}

/// Out-of-fold figures of one category (at its threshold).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CategoryFigures {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Area under the precision–recall curve of its probability (average precision).
    pub pr_auc: f64,
    pub support: usize,
    pub threshold: f32,
}

/// One point of the cross-validation grid.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GridPoint {
    pub c: f64,
    pub class_weight: String,
    pub macro_f1: f64,
    pub weighted_f1: f64,
}

/// What cross-validation on the training data chose, and how well it did.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CvFigures {
    pub folds: usize,
    pub grid: Vec<GridPoint>,
    pub chosen: GridPoint,
    /// Out-of-fold figures of the chosen point, with the calibrated thresholds.
    pub categories: BTreeMap<String, CategoryFigures>,
    pub macro_f1: f64,
    pub weighted_f1: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Meta {
    pub format: u32,
    /// Content-derived: the first 12 hex digits of the weights' sha256 (with the
    /// embedding head: of the sha256 of both files' bytes).
    pub version: String,
    pub created: String,
    pub categories: Vec<String>,
    pub features: FeatureParams,
    pub min_df: u32,
    /// Whether the rule stage's verdict is an input (then the heuristic plugins must run first).
    pub rule_features: bool,
    /// The sentence-embedding model the weights expect, when they use one.
    pub embedding_model: Option<String>,
    pub thresholds: BTreeMap<String, f32>,
    /// The risk (1 − P(`LOW_RISK`)) from which an event is high risk whatever
    /// category carries it: F1-optimal out of fold for "risky or not", sources
    /// weighted alike. Absent (an artifact from before it): only the
    /// per-category thresholds route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub any_flag: Option<f32>,
    /// How the thresholds were chosen (e.g. "F1-optimal out of fold", "precision ≥ 0.90 out of fold").
    pub threshold_rule: String,
    pub training: Vec<TrainingFile>,
    pub rows_by_label: BTreeMap<String, usize>,
    pub cv: Option<CvFigures>,
    pub weights_sha256: String,
    pub columns: usize,
    /// The embedding head (`embedding_model` names its model); absent: n-grams only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding_head: Option<HeadMeta>,
    /// The toxicity side model whose scores are dense columns after the rule
    /// features (`toxicity.bin`); absent: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toxicity: Option<ToxicityMeta>,
}

/// What `classifier.json` records of the toxicity side model.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ToxicityMeta {
    pub model: String,
    /// Its scores, in column order.
    pub features: Vec<String>,
    /// Classes whose scores these columns do not move (their weights held at 0).
    pub kept_out_of: Vec<String>,
    pub sha256: String,
}

/// An artifact in memory.
#[derive(Debug, Clone)]
pub struct Artifact {
    pub meta: Meta,
    /// Hash bucket of each hashed column, in column order.
    pub buckets: Vec<u32>,
    pub idf: Vec<f32>,
    /// `w[column * classes + class]` over hashed then dense columns.
    pub w: Vec<f32>,
    pub b: Vec<f32>,
    pub head: Option<Head>,
    pub toxicity: Option<Arc<Toxicity>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("no classifier at {path}: {source} (run `palisade train … --out {path}` or scripts/setup)")]
    Missing { path: PathBuf, source: std::io::Error },
    #[error("classifier at {path} is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error(
        "classifier at {path} was trained with embedding model {trained}, but the configured model is {configured}: retrain it with `palisade train` or configure that model"
    )]
    ModelMismatch { path: PathBuf, trained: String, configured: String },
}

fn corrupt(path: &Path, reason: impl Into<String>) -> ArtifactError {
    ArtifactError::Corrupt { path: path.to_path_buf(), reason: reason.into() }
}

impl Artifact {
    fn weights_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + 8 * self.buckets.len() + 4 * (self.w.len() + self.b.len()));
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.buckets.len() as u32).to_le_bytes());
        out.extend_from_slice(&(self.meta.columns as u32).to_le_bytes());
        for v in &self.buckets {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for v in self.idf.iter().chain(&self.w).chain(&self.b) {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    /// Write into `dir` (created or replaced whole); fills in `version` and `weights_sha256`.
    pub fn save(&mut self, dir: &Path) -> anyhow::Result<()> {
        let bytes = self.weights_bytes();
        let digest = hex::encode(Sha256::digest(&bytes));
        let head = self.head.as_ref().map(Head::to_bytes);
        let tox = self.toxicity.as_ref().map(|t| t.bytes.as_slice());
        self.meta.version = match (&head, tox) {
            (None, None) => digest[..12].to_string(),
            _ => {
                let mut all = Sha256::new().chain_update(&bytes);
                head.iter().for_each(|h| all.update(h));
                tox.iter().for_each(|t| all.update(t));
                hex::encode(all.finalize())[..12].to_string()
            }
        };
        self.meta.weights_sha256 = digest;
        match (&head, self.meta.embedding_head.as_mut()) {
            (Some(h), Some(m)) => m.sha256 = hex::encode(Sha256::digest(h)),
            (None, None) => {}
            _ => anyhow::bail!("an embedding head needs both its weights and its description"),
        }
        match (&self.toxicity, self.meta.toxicity.as_mut()) {
            (Some(t), Some(m)) => m.sha256 = t.sha256.clone(),
            (None, None) => {}
            _ => anyhow::bail!("a toxicity side model needs both its file and its description"),
        }
        let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent)?;
        let staging = parent.join(format!(".{}.tmp", dir.file_name().and_then(|n| n.to_str()).unwrap_or("classifier")));
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir_all(&staging)?;
        std::fs::write(staging.join(WEIGHTS_FILE), &bytes)?;
        if let Some(h) = &head {
            std::fs::write(staging.join(HEAD_FILE), h)?;
        }
        if let Some(t) = tox {
            std::fs::write(staging.join(toxicity::FILE), t)?;
        }
        std::fs::write(staging.join(META_FILE), serde_json::to_vec_pretty(&self.meta)?)?;
        if dir.exists() {
            let old = parent.join(format!(".{}.old", dir.file_name().and_then(|n| n.to_str()).unwrap_or("c")));
            let _ = std::fs::remove_dir_all(&old);
            std::fs::rename(dir, &old)?;
            std::fs::rename(&staging, dir)?;
            let _ = std::fs::remove_dir_all(&old);
        } else {
            std::fs::rename(&staging, dir)?;
        }
        Ok(())
    }

    /// Read and check an artifact folder. `embedding_model`: the configured
    /// model's id, refused if the artifact was trained with another one.
    pub fn load(dir: &Path, embedding_model: Option<&str>) -> Result<Artifact, ArtifactError> {
        let read = |name: &str| {
            std::fs::read(dir.join(name)).map_err(|source| ArtifactError::Missing { path: dir.join(name), source })
        };
        let meta: Meta = serde_json::from_slice(&read(META_FILE)?)
            .map_err(|e| corrupt(&dir.join(META_FILE), format!("not a classifier description: {e}")))?;
        if !READS.contains(&meta.format) {
            return Err(corrupt(dir, format!("format {} (this build reads formats {READS:?})", meta.format)));
        }
        if meta.categories.iter().map(String::as_str).ne(CATEGORIES) {
            return Err(corrupt(dir, format!("categories {:?}, expected {CATEGORIES:?}", meta.categories)));
        }
        if let (Some(trained), Some(configured)) = (&meta.embedding_model, embedding_model)
            && trained != configured
        {
            return Err(ArtifactError::ModelMismatch {
                path: dir.to_path_buf(),
                trained: trained.clone(),
                configured: configured.to_string(),
            });
        }
        let bytes = read(WEIGHTS_FILE)?;
        let path = dir.join(WEIGHTS_FILE);
        if hex::encode(Sha256::digest(&bytes)) != meta.weights_sha256 {
            return Err(corrupt(&path, "sha256 differs from classifier.json's weights_sha256"));
        }
        if bytes.len() < 16 || &bytes[..8] != MAGIC {
            return Err(corrupt(&path, "not a Palisade weights file"));
        }
        let word = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
        let (hashed, columns) = (word(8) as usize, word(12) as usize);
        let classes = CATEGORIES.len();
        let want = 16 + 8 * hashed + 4 * (columns * classes + classes);
        if bytes.len() != want || columns != meta.columns || hashed > columns {
            return Err(corrupt(&path, format!("{} bytes where its shape needs {want}", bytes.len())));
        }
        let buckets: Vec<u32> = (0..hashed).map(|i| word(16 + 4 * i)).collect();
        let floats = |from: usize, n: usize| -> Vec<f32> {
            (0..n).map(|i| f32::from_le_bytes(bytes[from + 4 * i..from + 4 * i + 4].try_into().expect("4"))).collect()
        };
        let at = 16 + 4 * hashed;
        let idf = floats(at, hashed);
        let w = floats(at + 4 * hashed, columns * classes);
        let b = floats(at + 4 * hashed + 4 * columns * classes, classes);
        if buckets.iter().any(|b| *b as usize >= meta.features.buckets()) {
            return Err(corrupt(&path, "a hash bucket outside the feature space"));
        }
        let head = match &meta.embedding_head {
            None => None,
            Some(h) => {
                let path = dir.join(HEAD_FILE);
                let bytes = read(HEAD_FILE)?;
                if hex::encode(Sha256::digest(&bytes)) != h.sha256 {
                    return Err(corrupt(&path, "sha256 differs from classifier.json's embedding_head.sha256"));
                }
                Some(Head::from_bytes(&bytes, h.dim).map_err(|reason| corrupt(&path, reason))?)
            }
        };
        let toxicity = match &meta.toxicity {
            None => None,
            Some(t) => {
                let path = dir.join(toxicity::FILE);
                let bytes = read(toxicity::FILE)?;
                if hex::encode(Sha256::digest(&bytes)) != t.sha256 {
                    return Err(corrupt(&path, "sha256 differs from classifier.json's toxicity.sha256"));
                }
                Some(Arc::new(Toxicity::from_bytes(bytes).map_err(|reason| corrupt(&path, reason))?))
            }
        };
        Ok(Artifact { meta, buckets, idf, w, b, head, toxicity })
    }
}
