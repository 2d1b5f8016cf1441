//! The host's shared vocabulary: the normalised [`Event`] and its JSON form
//! (`schema`: parsing, native checks, the dedup key), the one error answer
//! ([`ApiError`]), and the seam through which platform webhooks hand events to
//! ingestion ([`intake::Intake`]), and the audit seam ([`audit::AuditSink`]).
//!
//! Every service depends on this module; it depends on nothing else in the host
//! (checked by `host/tests/layering.rs`).

pub mod audit;
pub mod error;
pub mod event;
pub mod intake;
pub mod schema;

pub use error::ApiError;
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
