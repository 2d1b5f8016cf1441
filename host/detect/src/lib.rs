//! `palisade-detect`: detection, from an event's text to its prediction.
//!
//! - `classify`: the trained classifier (features, training, artifact, hot slot).
//! - `embed`: sentence embeddings with ONNX Runtime (CPU or CUDA), and their Redis cache.
//! - `vectors`: the vector stores (flat and IVF files, past-events window, Qdrant).
//! - `similarity`: from nearest labelled examples to an embedding score and label mix.
//! - `predict`: the decision policy and the prediction it makes of stage results.
//! - `cascade`: one event's stage results through the cascade to its prediction
//!   (what screening and `palisade eval` both call).
//! - `toxicity`: the toxicity side model (tox-block, a BiLSTM run natively), whose
//!   scores the classifier takes as features.
//! - `scores`: predictions against labels (precision, recall, F1, confusion).
//!
//! It depends on `palisade-core`, `palisade-plugins` (the rule stage's results)
//! and `palisade-streams` (the embedding cache); it serves no HTTP and reads no
//! configuration: callers hand it plain settings.

pub mod cascade;
pub mod classify;
pub mod embed;
pub mod predict;
pub mod scores;
pub mod similarity;
pub mod toxicity;
pub mod vectors;
