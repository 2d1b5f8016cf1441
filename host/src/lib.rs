//! Palisade: a trust-and-safety event platform. Two services (ingestion :8001,
//! screening :8002) on a native host; validators, heuristic rules and platform
//! adapters are WebAssembly components (`plugins`).
//!
//! - `config`, `telemetry`, `progress`: settings, logs/metrics, progress bars.
//! - `event`: the normalised event type.
//! - `plugins`: the WebAssembly plugin platform.
//! - `ingest`, `streams`: ingestion routes; Redis streams, dedup and produce.
//! - `platforms`: adapter webhooks in, bot posts and actions out.
//! - `screening`, `embed`, `vectors`, `eval`: risk screening, embeddings, vector
//!   search, offline evaluation.
//! - `api`: HTTP errors, auth, common and admin routes.
//! - `app`: assembling and serving it all; `loadgen`: the load generator.

pub mod api;
pub mod app;
pub mod config;
pub mod embed;
pub mod eval;
pub mod event;
pub mod ingest;
pub mod loadgen;
pub mod platforms;
pub mod plugins;
pub mod progress;
pub mod screening;
pub mod streams;
pub mod telemetry;
pub mod vectors;
