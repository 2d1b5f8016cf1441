//! Plugin-facing data, mirroring `wit/palisade.wit` (`types` interface) as plain Rust.
//! The conversion to and from the generated bindings lives in `guest.rs` only.

/// A normalised event, as ingestion produced it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Event {
    pub event_id: String,
    pub event_type: String,
    pub platform: String,
    pub user_id: String,
    pub author_id: Option<String>,
    pub channel_id: Option<String>,
    pub content: String,
    pub timestamp_ms: u64,
    pub metadata: Vec<(String, String)>,
}

impl Event {
    /// Who wrote it, as labels name entities: `user:<author_id>`, or
    /// `user:<user_id>` when the event has no separate author.
    pub fn author_entity(&self) -> String {
        format!("user:{}", self.author_id.as_deref().unwrap_or(&self.user_id))
    }

    /// The entities it is about, as the host names them for labels:
    /// `user:<user_id>`, `user:<author_id>` (when another), `channel:<channel_id>`.
    pub fn entities(&self) -> Vec<String> {
        let mut out = vec![format!("user:{}", self.user_id)];
        if let Some(a) = self.author_id.as_deref().filter(|a| *a != self.user_id) {
            out.push(format!("user:{a}"));
        }
        if let Some(c) = &self.channel_id {
            out.push(format!("channel:{c}"));
        }
        out
    }

    /// A message event with only its content set (handy in tests).
    pub fn message(content: impl Into<String>) -> Self {
        Event {
            event_id: "evt-test".into(),
            event_type: "message".into(),
            platform: "web".into(),
            user_id: "user-1".into(),
            author_id: Some("author-1".into()),
            content: content.into(),
            ..Event::default()
        }
    }

    /// The value of a metadata key, if present.
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// Risk categories: the one enum the host shares (`palisade-vocab`).
pub use palisade_vocab::Category;

/// One rule that fired.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleHit {
    pub rule: String,
    pub weight: f32,
    pub category: Option<Category>,
    pub detail: Option<String>,
}

/// A heuristic's verdict on one event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Verdict {
    pub score: f32,
    pub category: Option<Category>,
    pub hits: Vec<RuleHit>,
}

impl Verdict {
    /// Nothing fired.
    pub fn clean() -> Self {
        Verdict::default()
    }

    /// Build a verdict from hits: the score is the strongest hit plus a little for
    /// each further one (capped at 1), the category is that of the strongest hit.
    pub fn from_hits(hits: Vec<RuleHit>) -> Self {
        let Some(top) = hits.iter().max_by(|a, b| a.weight.total_cmp(&b.weight)) else {
            return Verdict::clean();
        };
        let extra: f32 = hits.iter().map(|h| h.weight).sum::<f32>() - top.weight;
        Verdict { score: (top.weight + 0.25 * extra).clamp(0.0, 1.0), category: top.category, hits }
    }
}

/// One policy violation.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    pub field: String,
    pub code: String,
    pub message: String,
}

impl Violation {
    pub fn new(field: &str, code: &str, message: impl Into<String>) -> Self {
        Violation { field: field.into(), code: code.into(), message: message.into() }
    }
}

/// An HTTP request an adapter describes for the host to send.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HttpRequest {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A reply sent straight back to the webhook caller.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HttpReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What an adapter makes of an inbound webhook.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inbound {
    pub events: Vec<Event>,
    pub reply: Option<HttpReply>,
}

/// Why an adapter refused something; `code` is machine-readable.
#[derive(Debug, Clone, PartialEq)]
pub struct AdapterError {
    pub code: String,
    pub message: String,
}

impl AdapterError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        AdapterError { code: code.into(), message: message.into() }
    }
}

/// A bot's message to post.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutboundPost {
    pub channel_id: String,
    pub content: String,
    pub reply_to: Option<String>,
    pub idempotency_key: Option<String>,
}

/// A moderation action.
#[derive(Debug, Clone, PartialEq)]
pub enum Moderation {
    DeleteMessage(String),
    /// user id, seconds
    TimeoutUser(String, u32),
    BanUser(String),
    /// message id, emoji
    AddReaction(String, String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct OutboundAction {
    pub channel_id: String,
    pub action: Moderation,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outbound {
    Post(OutboundPost),
    Action(OutboundAction),
}

/// The platform's answer to a request the host sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlatformResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What that answer means.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Delivery {
    pub id: Option<String>,
}
