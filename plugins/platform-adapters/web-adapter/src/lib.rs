//! Web platform adapter: Palisade's generic JSON webhook, for sites and services
//! with no adapter of their own.
//!
//! Inbound (`/v1/platforms/web/webhook`): one event object, or `{"events": [ … ]}`,
//! in the shape of `/v1/events/ingest` (`event_id`, `user_id`, `content`; optional
//! `event_type` — default `message` —, `platform` — default `web` —, `author_id`,
//! `channel_id`, `timestamp` in Unix ms, `metadata` with string/number/bool values).
//! Every request must be signed with Palisade's scheme (`X-Palisade-Timestamp`,
//! `X-Palisade-Signature: sha256=…`) under the `secret` setting; without a secret
//! the adapter refuses everything unless `allow_unsigned = true` (private networks).
//!
//! Outbound: `POST /posts` and `POST /actions` on `WEB_API_BASE`, JSON bodies, with
//! `Authorization: Bearer {token}` and an `Idempotency-Key` header when given; the
//! answer's `id` is the delivery id.

use palisade_sdk::signing;
use palisade_sdk::{
    Adapter, AdapterError, Delivery, Event, HttpRequest, Inbound, Moderation, Outbound, PlatformResponse, Settings,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};

pub struct Web {
    secret: Option<String>,
    allow_unsigned: bool,
    max_age_s: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WebEvent {
    event_id: String,
    #[serde(default = "message")]
    event_type: String,
    #[serde(default = "web")]
    platform: String,
    user_id: String,
    author_id: Option<String>,
    channel_id: Option<String>,
    content: String,
    timestamp: Option<u64>,
    #[serde(default)]
    metadata: Map<String, Value>,
}

fn message() -> String {
    "message".into()
}
fn web() -> String {
    "web".into()
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Body {
    Batch { events: Vec<WebEvent> },
    One(Box<WebEvent>),
}

impl Adapter for Web {
    fn new(settings: &Settings) -> Result<Self, String> {
        Ok(Web {
            secret: settings.get("secret").filter(|s| !s.is_empty()),
            allow_unsigned: settings.bool_or("allow_unsigned", false)?,
            max_age_s: settings.usize_or("max_signature_age_s", 300)? as u64,
        })
    }

    fn platform(&self) -> String {
        "web".into()
    }

    fn parse_inbound(&self, headers: &[(String, String)], body: &[u8]) -> Result<Inbound, AdapterError> {
        match &self.secret {
            Some(secret) => signing::verify_palisade(headers, body, secret, self.max_age_s)?,
            None if self.allow_unsigned => {}
            None => {
                return Err(AdapterError::new(
                    "not_configured",
                    "set WEB_WEBHOOK_SECRET (the adapter's `secret` setting), or `allow_unsigned = true` on a private network",
                ));
            }
        }
        let parsed: Body = serde_json::from_slice(body).map_err(|e| {
            AdapterError::new(
                "invalid_payload",
                format!("expected an event object or {{\"events\": [ … ]}} (see docs/adapters.md): {e}"),
            )
        })?;
        let events = match parsed {
            Body::Batch { events } => events,
            Body::One(event) => vec![*event],
        };
        Ok(Inbound { events: events.into_iter().map(to_event).collect(), reply: None })
    }

    fn format_outbound(&self, request: &Outbound) -> Result<HttpRequest, AdapterError> {
        let mut headers = vec![
            ("authorization".to_string(), "Bearer {token}".to_string()),
            ("content-type".into(), "application/json".into()),
        ];
        let (path, body) = match request {
            Outbound::Post(p) => {
                if let Some(key) = &p.idempotency_key {
                    headers.push(("idempotency-key".into(), key.clone()));
                }
                let body = json!({ "channel_id": p.channel_id, "content": p.content, "reply_to": p.reply_to });
                ("/posts", body)
            }
            Outbound::Action(a) => {
                let action = match &a.action {
                    Moderation::DeleteMessage(m) => json!({ "type": "delete_message", "message_id": m }),
                    Moderation::TimeoutUser(u, s) => json!({ "type": "timeout_user", "user_id": u, "seconds": s }),
                    Moderation::BanUser(u) => json!({ "type": "ban_user", "user_id": u }),
                    Moderation::AddReaction(m, e) => json!({ "type": "add_reaction", "message_id": m, "emoji": e }),
                };
                ("/actions", json!({ "channel_id": a.channel_id, "action": action, "reason": a.reason }))
            }
        };
        Ok(HttpRequest { method: "POST".into(), path: path.into(), headers, body: body.to_string().into_bytes() })
    }

    fn parse_response(&self, response: &PlatformResponse) -> Result<Delivery, AdapterError> {
        let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        match response.status {
            200..=299 => Ok(Delivery { id: body.get("id").and_then(Value::as_str).map(String::from) }),
            401 | 403 => {
                Err(AdapterError::new("invalid_token", format!("the site refused the token ({})", response.status)))
            }
            s => Err(AdapterError::new("platform_error", format!("the site answered {s}"))),
        }
    }
}

fn to_event(e: WebEvent) -> Event {
    let metadata = e
        .metadata
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            (k, v)
        })
        .collect();
    Event {
        event_id: e.event_id,
        event_type: e.event_type,
        platform: e.platform,
        user_id: e.user_id,
        author_id: e.author_id,
        channel_id: e.channel_id,
        content: e.content,
        timestamp_ms: e.timestamp.unwrap_or(0),
        metadata,
    }
}

palisade_sdk::export_adapter!(Web);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::OutboundPost;
    use palisade_sdk::testing::Harness;

    #[test]
    fn one_event_or_a_batch() {
        let h = Harness::<Web>::adapter(&[("allow_unsigned", "true")]).unwrap();
        let one = h
            .plugin
            .parse_inbound(&[], br#"{"event_id":"w1","user_id":"u","content":"hi","metadata":{"n":1}}"#)
            .unwrap();
        assert_eq!(one.events[0].platform, "web");
        assert_eq!(one.events[0].meta("n"), Some("1"));
        let batch = br#"{"events":[{"event_id":"a","user_id":"u","content":"x"},{"event_id":"b","user_id":"u","content":"y","platform":"forum"}]}"#;
        let many = h.plugin.parse_inbound(&[], batch).unwrap();
        assert_eq!(many.events.iter().map(|e| e.platform.as_str()).collect::<Vec<_>>(), ["web", "forum"]);
        assert_eq!(h.plugin.parse_inbound(&[], b"{\"user\":1}").unwrap_err().code, "invalid_payload");
    }

    #[test]
    fn requests_must_be_signed_unless_allowed() {
        let unset = Harness::<Web>::adapter(&[]).unwrap();
        assert_eq!(unset.plugin.parse_inbound(&[], b"{}").unwrap_err().code, "not_configured");
        let h = Harness::<Web>::adapter(&[("secret", "k")]).unwrap();
        let body = br#"{"event_id":"w1","user_id":"u","content":"hi"}"#;
        assert_eq!(h.plugin.parse_inbound(&[], body).unwrap_err().code, "missing_signature");
        let headers = signing::sign_palisade(body, "k", palisade_sdk::now_ms() / 1000);
        assert_eq!(h.plugin.parse_inbound(&headers, body).unwrap().events.len(), 1);
    }

    #[test]
    fn posts_carry_the_idempotency_key() {
        let h = Harness::<Web>::adapter(&[]).unwrap();
        let post = Outbound::Post(OutboundPost {
            channel_id: "c".into(),
            content: "hi".into(),
            reply_to: None,
            idempotency_key: Some("k9".into()),
        });
        let r = h.plugin.format_outbound(&post).unwrap();
        assert!(r.headers.contains(&("idempotency-key".into(), "k9".into())));
        assert_eq!(r.path, "/posts");
    }
}
