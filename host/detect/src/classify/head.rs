//! The embedding head: a multinomial linear model over the sentence embedding,
//! fitted by `palisade train` beside the n-gram model when a sentence-embedding
//! model is configured. It is mixed into the n-gram model's probabilities
//! (`share`) for the events that are embedded anyway (those in the cascade's
//! band, or every event with `CASCADE=off`), and thresholds calibrated on the
//! mixed out-of-fold probabilities decide those events. The embedding carries
//! meaning the n-grams miss, which is where a source the model never saw gains.
//! Owns the head's fit and its weights file (`embedding.bin`); must not load a
//! model, embed text or touch Redis.

use super::CATEGORIES;
use super::solver::{self, Problem, Row, Settings};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const HEAD_FILE: &str = "embedding.bin";
const MAGIC: &[u8; 8] = b"PLSDEMB1";
/// The head's share of a mixed score (the n-gram model keeps the rest).
pub const SHARE: f32 = 0.5;
/// Inverse regularisation strength of the head's fit: strong, so it generalises
/// beyond the training sources rather than memorising them.
pub const C: f64 = 1.0;

type Probs = [f32; CATEGORIES.len()];

/// What `classifier.json` records of the head.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HeadMeta {
    /// The sentence-embedding model whose vectors it reads.
    pub model: String,
    pub dim: usize,
    pub share: f32,
    pub c: f64,
    /// Thresholds for mixed scores (out of fold, the same rule as the n-gram model's).
    pub thresholds: BTreeMap<String, f32>,
    /// The any-flag threshold for mixed scores (see `Meta::any_flag`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub any_flag: Option<f32>,
    /// Out-of-fold figures of the mix at those thresholds, beside the n-gram model's alone.
    pub macro_f1: f64,
    pub weighted_f1: f64,
    pub sha256: String,
}

/// The head's weights: `w[dim * classes + class]`, then the intercepts.
#[derive(Debug, Clone, PartialEq)]
pub struct Head {
    pub dim: usize,
    pub w: Vec<f32>,
    pub b: Vec<f32>,
}

/// An embedding as a solver row (every column present).
fn dense(v: &[f32]) -> Row {
    v.iter().enumerate().map(|(j, x)| (j as u32, *x)).collect()
}

impl Head {
    /// Fit on `vectors` (one per row) with the given sample weights.
    pub fn fit(vectors: &[&[f32]], labels: &[u8], weights: &[f32], max_iter: usize) -> Head {
        let dim = vectors.first().map_or(0, |v| v.len());
        let rows: Vec<Row> = vectors.iter().map(|v| dense(v)).collect();
        let problem = Problem { rows: &rows, labels, weights, columns: dim, classes: CATEGORIES.len(), frozen: &[] };
        let fit = solver::fit(&problem, Settings { c: C, max_iter, ..Settings::default() }, None);
        Head { dim, w: fit.w, b: fit.b }
    }

    /// Class probabilities of one embedding (a wrong-sized vector scores nothing: `None`).
    pub fn probabilities(&self, v: &[f32]) -> Option<Probs> {
        if v.len() != self.dim {
            return None;
        }
        let mut out: Probs = self.b.as_slice().try_into().ok()?;
        for (x, w) in v.iter().zip(self.w.chunks_exact(CATEGORIES.len())) {
            out.iter_mut().zip(w).for_each(|(o, w)| *o += w * x);
        }
        solver::softmax(&mut out);
        Some(out)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(12 + 4 * (self.w.len() + self.b.len()));
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.dim as u32).to_le_bytes());
        for v in self.w.iter().chain(&self.b) {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    /// Parse `embedding.bin`; the reason when it is not one of `dim` columns.
    pub fn from_bytes(bytes: &[u8], dim: usize) -> Result<Head, String> {
        if bytes.len() < 12 || &bytes[..8] != MAGIC {
            return Err("not a Palisade embedding-head file".into());
        }
        let stored = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")) as usize;
        let classes = CATEGORIES.len();
        let want = 12 + 4 * (dim * classes + classes);
        if stored != dim || bytes.len() != want {
            return Err(format!(
                "{} bytes of {stored} columns where classifier.json says {dim} ({want} bytes)",
                bytes.len()
            ));
        }
        let floats: Vec<f32> =
            bytes[12..].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect();
        let (w, b) = floats.split_at(dim * classes);
        Ok(Head { dim, w: w.to_vec(), b: b.to_vec() })
    }
}

/// `(1 − share) · ngram + share · head`, per category.
pub fn mix(ngram: &Probs, head: &Probs, share: f32) -> Probs {
    std::array::from_fn(|k| (1.0 - share) * ngram[k] + share * head[k])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_learns_directions_and_survives_its_file() {
        // Two classes told apart by the sign of the first coordinate.
        let vectors: Vec<Vec<f32>> =
            (0..60).map(|i| if i % 2 == 0 { vec![1.0, 0.1 * (i % 5) as f32] } else { vec![-1.0, 0.2] }).collect();
        let labels: Vec<u8> = (0..60).map(|i| if i % 2 == 0 { 0 } else { 4 }).collect();
        let refs: Vec<&[f32]> = vectors.iter().map(Vec::as_slice).collect();
        let head = Head::fit(&refs, &labels, &vec![1.0; 60], 200);
        let p = head.probabilities(&[-1.0, 0.0]).expect("two columns");
        assert!(p[4] > 0.5 && p[0] < 0.5, "{p:?}");
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        assert_eq!(head.probabilities(&[1.0, 0.0, 0.0]), None, "a vector of another model's size");
        let back = Head::from_bytes(&head.to_bytes(), 2).expect("round trip");
        assert_eq!(back, head);
        let err = Head::from_bytes(&head.to_bytes()[..20], 2).unwrap_err();
        assert!(err.contains("bytes"), "{err}");
        assert!(Head::from_bytes(&head.to_bytes(), 3).is_err(), "another dimension is refused");
    }

    #[test]
    fn mixing_keeps_a_distribution() {
        let a = [0.7, 0.3, 0.0, 0.0, 0.0, 0.0, 0.0];
        let b = [0.1, 0.0, 0.0, 0.0, 0.9, 0.0, 0.0];
        let m = mix(&a, &b, 0.5);
        assert!((m.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!((m[4] - 0.45).abs() < 1e-6 && (m[0] - 0.4).abs() < 1e-6);
    }
}
