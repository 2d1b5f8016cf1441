//! Risk screening (`:8002`), laid out as the data flows:
//! - in: `consumer` reads `events:raw` as a consumer group (and `rescreen`
//!   screens degraded events again); `http` takes `/v1/risk/screen…`;
//! - stages: the rule stage (`palisade_plugins::rules`), the classifier, and the
//!   embedding stage's I/O (`stages`: cache, model, nearest examples), run by the
//!   `screener`, which hands their results to `palisade_detect::cascade` (the
//!   decision) and marks campaigns (`campaign`);
//! - out: `consumer::route` writes each prediction to `events:reasoning_queue` or
//!   `events:low_risk` (or the dead letters), the HTTP routes answer it;
//! - beside: shadow candidates scored on live batches (`shadow`, `compare`),
//!   backtests (`backtest`), the counters (`metrics`).
//!
//! This module must not import another service (`ingest`, `platforms`).

pub mod backtest;
pub mod campaign;
pub mod compare;
pub mod consumer;
pub mod http;
pub mod metrics;
mod rescreen;
pub mod screener;
pub mod shadow;
pub mod stages;

pub use http::{ScreenApi, router};
pub use metrics::ScreenMetrics;
pub use screener::Screener;
pub use stages::{PAST_TEXT_MAX_BYTES, Similarity};
