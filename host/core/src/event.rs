//! The normalised event every part of the host passes around (ingestion produces
//! it, plugins and screening read it). Its JSON shape is the seed's.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub event_id: String,
    pub event_type: String,
    pub platform: String,
    pub user_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<String>,
    pub content: String,
    /// Milliseconds since the Unix epoch.
    #[serde(default)]
    pub timestamp_ms: u64,
    /// Flat string metadata (nested JSON values arrive serialised).
    #[serde(default)]
    pub metadata: Vec<(String, String)>,
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl Event {
    /// A message event with this content and fixed sample ids (CLI checks, tests).
    pub fn sample(content: &str) -> Self {
        Event {
            event_id: "sample-1".into(),
            event_type: "message".into(),
            platform: "web".into(),
            user_id: "user-1".into(),
            author_id: Some("author-1".into()),
            channel_id: Some("general".into()),
            content: content.into(),
            timestamp_ms: 0,
            metadata: Vec::new(),
        }
    }
}
