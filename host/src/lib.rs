//! Palisade: a trust-and-safety event platform. Two services (ingestion :8001,
//! screening :8002) on a native host; validators, heuristic rules and platform
//! adapters are WebAssembly components (`plugins`).
//!
//! - `config`, `telemetry`: settings and logs/metrics.
//! - `event`: the normalised event type.
//! - `plugins`: the WebAssembly plugin platform.
//! - `screening`: risk screening (the rule stage so far).
//! - `api`: HTTP errors, auth, common and admin routes.
//! - `app`: assembling and serving it all.

pub mod api;
pub mod app;
pub mod config;
pub mod embed;
pub mod eval;
pub mod event;
pub mod ingest;
pub mod loadgen;
pub mod plugins;
pub mod progress;
pub mod screening;
pub mod streams;
pub mod telemetry;
pub mod vectors;
