//! `palisade-core`: the host's shared vocabulary: the normalised [`Event`] and
//! its JSON form (`schema`: parsing, native checks, the dedup key), the one error
//! answer ([`ApiError`]), the seam through which platform webhooks hand events
//! to ingestion ([`intake::Intake`]), the audit seam ([`audit::AuditSink`]), the
//! backlog seam ([`Backlog`]), and the process's telemetry ([`telemetry`]: logs,
//! traces, every metric name) and progress bars ([`progress`]).
//!
//! Every other host crate depends on this one; it depends on no other host crate
//! (only `palisade-vocab`), and knows no Redis, no wasmtime, no model.

pub mod audit;
pub mod error;
pub mod event;
pub mod intake;
pub mod progress;
pub mod schema;
pub mod telemetry;

pub use error::{ApiError, ErrorCode};
pub use event::{Event, now_ms};

/// How much of a request body a route reads, and how long it waits for it.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// `MAX_BODY_BYTES`: past it, 413.
    pub max_bytes: usize,
    /// `BODY_TIMEOUT_MS`: past it, 408.
    pub timeout: std::time::Duration,
}

/// A boxed, sendable future (what the object-safe seams return).
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// The screening backlog of `events:raw` as last seen, and whether Redis answered
/// (read by `/ready`, the gauges and the JSON summaries; `palisade-streams`
/// implements it over Redis).
pub trait Backlog: Send + Sync {
    /// Events not yet screened (group lag + pending).
    fn backlog(&self) -> u64;
    /// Whether the last look at Redis succeeded.
    fn redis_ok(&self) -> bool;
}
