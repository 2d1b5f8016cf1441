//! The validator stage: every active validator plugin over events that passed
//! the native checks (one call per plugin for the whole batch). Every route that
//! takes events runs it — ingest (JSON, batches, webhooks) and screening (JSON,
//! form, batches) — so an event refused on one is refused on all. A faulting
//! validator costs only its own verdict: the events are checked without it.

use super::{PluginHost, PluginKind, to_wit};
use palisade_core::Event;
use palisade_core::schema::FieldError;

/// Each event's policy violations (empty: none), in order.
pub fn validate(host: &PluginHost, events: &[Event]) -> Vec<Vec<FieldError>> {
    let mut out = vec![Vec::new(); events.len()];
    let validators = host.active(PluginKind::Validator);
    if validators.is_empty() || events.is_empty() {
        return out;
    }
    let wit = to_wit(events);
    for (plugin, _) in validators {
        match plugin.validate(&wit) {
            Ok(results) => {
                for (errors, violations) in out.iter_mut().zip(results) {
                    errors.extend(violations.into_iter().map(|v| FieldError {
                        field: v.field,
                        code: v.code,
                        message: v.message,
                    }));
                }
            }
            Err(e) => tracing::warn!(error = %e, "validator skipped"),
        }
    }
    out
}
