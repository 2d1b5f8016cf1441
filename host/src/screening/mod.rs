//! Risk screening. For now the rule stage only: every active heuristic plugin
//! scores a batch in one call each, and their verdicts combine into one rule score.
//! Embeddings, similarity and routing build on this (issue 4).

pub mod rules;
