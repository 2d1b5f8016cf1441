//! Palisade: a trust-and-safety event platform. Two services (ingestion :8001,
//! screening :8002) on a native host; validators, heuristic rules and platform
//! adapters are WebAssembly components (`plugins`).
//!
//! - `core`: the event, its JSON form and checks, the error answer, the intake seam
//!   (depends on nothing else here).
//! - `config`, `telemetry`, `progress`: settings, logs/metrics names, progress bars.
//! - `plugins`: the WebAssembly plugin platform and the rule stage.
//! - `ingest`, `streams`: ingestion routes; Redis streams, dedup and produce.
//! - `platforms`: adapter webhooks in, bot posts and actions out.
//! - `screening`, `embed`, `vectors`, `classify`, `eval`: risk screening,
//!   embeddings, vector search, the trained classifier, offline evaluation.
//! - `api`: HTTP plumbing: auth layer, request context, common and admin routes.
//! - `entity_labels`: labels on users and channels (`/v1/labels`), read by plugins.
//! - `app`: assembling and serving it all; `loadgen`: the load generator.
//!
//! Layers (arrows point at what a module may use; `host/tests/layering.rs` checks them):
//! services (`ingest`, `screening`, `platforms`) → `api`, `plugins`, `streams`,
//! `embed`, `vectors`, `classify`, `entity_labels` → `core`. No service imports another: they meet only
//! through the stream (and platforms hand events to ingestion through `core::intake`).

pub mod api;
pub mod app;
pub mod backtest;
pub mod classify;
pub mod config;
pub mod core;
pub mod embed;
pub mod entity_labels;
pub mod eval;
pub mod ingest;
pub mod loadgen;
pub mod platforms;
pub mod plugins;
pub mod progress;
pub mod screening;
pub mod streams;
pub mod telemetry;
pub mod vectors;
