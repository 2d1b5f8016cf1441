//! `palisade`: the API layer, the two services (ingestion :8001, screening
//! :8002), the platform adapters' routes and the CLI, over the host's library
//! crates (ARCHITECTURE.md draws the graph; Cargo enforces it):
//! `palisade-core` (the event, errors, seams, telemetry) ← `palisade-plugins`
//! (the WebAssembly plugin platform), `palisade-streams` (Redis) ←
//! `palisade-detect` (classifier, embeddings, vectors, the cascade) ← this crate.
//!
//! - `api`: HTTP plumbing: auth layer, request context, common and admin routes.
//! - `config`: every setting, read once (`palisade config` lists them).
//! - `ingest`, `screening`, `platforms`: the services: ingestion routes; risk
//!   screening (consumer, HTTP routes, shadows, backtests); adapter webhooks in,
//!   bot posts and actions out.
//! - `entity_labels`: labels on users and channels (`/v1/labels`), read by plugins.
//! - `eval`: offline evaluation through detection's own cascade.
//! - `app`: assembling and serving it all; `loadgen`: the load generator.
//! - `commands`: the `palisade` subcommands, one file each (`main.rs` dispatches).
//!
//! No service imports another (`tests/layering.rs`): they meet only through the
//! stream (and platforms hand events to ingestion through `palisade_core::intake`).

pub mod api;
pub mod app;
pub mod commands;
pub mod config;
pub mod entity_labels;
pub mod eval;
pub mod ingest;
pub mod loadgen;
pub mod platforms;
pub mod screening;
