//! The audit seam: who changed what screens events, from which version to which.
//! The plugin host and the admin routes write [`AuditEntry`]s through an
//! [`AuditSink`]; `streams::audit` keeps them in Redis (`events:audit`). An entry
//! names the admin key only by its id ([`key_id`]), never the key.

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// A version of a plugin (or of the classifier): its version string and content hash.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VersionRef {
    pub version: String,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    pub at_ms: u64,
    /// install, reload, load_failed, remove, rollback, enable, disable, quarantine,
    /// promote, discard, shadow_install, classifier_reload, classifier_rollback.
    pub action: &'static str,
    /// `key:<id>` (an admin key), `watcher`, `host` (start-up, automatic), `cli`.
    pub actor: String,
    /// The plugin's name, or `classifier`.
    pub subject: String,
    pub old: Option<VersionRef>,
    pub new: Option<VersionRef>,
    /// What the change rested on (gate or shadow figures) or why it happened (a fault).
    pub detail: Value,
}

impl AuditEntry {
    pub fn new(action: &'static str, actor: &str, subject: &str) -> Self {
        AuditEntry {
            at_ms: super::now_ms(),
            action,
            actor: actor.to_string(),
            subject: subject.to_string(),
            old: None,
            new: None,
            detail: Value::Null,
        }
    }

    pub fn versions(mut self, old: Option<VersionRef>, new: Option<VersionRef>) -> Self {
        (self.old, self.new) = (old, new);
        self
    }

    pub fn detail(mut self, detail: Value) -> Self {
        self.detail = detail;
        self
    }
}

/// Where audit entries go. Recording must not block or fail the change itself.
pub trait AuditSink: Send + Sync {
    fn record(&self, entry: AuditEntry);
}

/// The actor name of an admin key: `key:` and the first 12 hex digits of its sha256.
pub fn key_id(key: &str) -> String {
    format!("key:{}", &hex::encode(Sha256::digest(key.as_bytes()))[..12])
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_key_id_names_the_key_without_revealing_it() {
        let id = super::key_id("admin-key");
        assert!(id.starts_with("key:") && id.len() == 16, "{id}");
        assert!(!id.contains("admin"));
        assert_ne!(id, super::key_id("admin-key2"));
    }
}
