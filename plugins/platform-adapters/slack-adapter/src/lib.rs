//! Slack platform adapter.
//!
//! Inbound (`/v1/platforms/slack/webhook`, the Events API request URL): every
//! request is checked against `X-Slack-Signature` (`v0=` HMAC-SHA256 of
//! `v0:{X-Slack-Request-Timestamp}:{body}` under the `signing_secret` setting), and
//! refused when its timestamp is more than 5 minutes away. `url_verification` is
//! answered with its challenge; `event_callback` message events become events. A
//! retry (`X-Slack-Retry-Num`) carries the same message, so dedup answers it as a
//! duplicate and nothing is produced twice.
//!
//! Outbound: posts → `chat.postMessage` (replies in the thread of `reply_to`),
//! delete → `chat.delete`, reaction → `reactions.add`, with `Authorization: Bearer
//! {token}` (the host puts the bot token in place of `{token}`). Slack has no
//! timeout or ban in its bot API: those are refused. Slack answers errors with HTTP
//! 200 and `{"ok": false, "error": …}`; the error becomes the adapter error's code.

use palisade_sdk::signing::{self, header};
use palisade_sdk::{
    Adapter, AdapterError, Delivery, Event, HttpReply, HttpRequest, Inbound, Moderation, Outbound, PlatformResponse,
    Settings,
};
use serde_json::{Value, json};

/// Message subtypes that are someone saying something (others: edits, joins, deletions).
const SPOKEN_SUBTYPES: &[&str] = &["thread_broadcast", "file_share", "me_message"];
/// Slack's limit on a message's text.
const MAX_TEXT: usize = 40_000;

pub struct Slack {
    signing_secret: Option<String>,
    max_age_s: u64,
}

impl Adapter for Slack {
    fn new(settings: &Settings) -> Result<Self, String> {
        Ok(Slack {
            signing_secret: settings.get("signing_secret").filter(|s| !s.is_empty()),
            max_age_s: settings.usize_or("max_signature_age_s", 300)? as u64,
        })
    }

    fn platform(&self) -> String {
        "slack".into()
    }

    fn parse_inbound(&self, headers: &[(String, String)], body: &[u8]) -> Result<Inbound, AdapterError> {
        self.verify(headers, body)?;
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| AdapterError::new("invalid_json", format!("the body is not JSON: {e}")))?;
        match value.get("type").and_then(Value::as_str) {
            Some("url_verification") => {
                let challenge = value
                    .get("challenge")
                    .and_then(Value::as_str)
                    .ok_or_else(|| AdapterError::new("invalid_payload", "url_verification without a `challenge`"))?;
                let reply = HttpReply {
                    status: 200,
                    headers: vec![("content-type".into(), "application/json".into())],
                    body: json!({ "challenge": challenge }).to_string().into_bytes(),
                };
                Ok(Inbound { events: Vec::new(), reply: Some(reply) })
            }
            Some("event_callback") => {
                let retry = header(headers, "x-slack-retry-num").map(String::from);
                Ok(Inbound { events: message_event(&value, retry).into_iter().collect(), reply: None })
            }
            Some(other) => {
                Err(AdapterError::new("unsupported_event", format!("Slack request type `{other}` is not handled")))
            }
            None => Err(AdapterError::new("invalid_payload", "a Slack request needs a `type`")),
        }
    }

    fn format_outbound(&self, request: &Outbound) -> Result<HttpRequest, AdapterError> {
        let (path, body) = match request {
            Outbound::Post(post) => {
                let chars = post.content.chars().count();
                if chars == 0 || chars > MAX_TEXT {
                    return Err(AdapterError::new(
                        "invalid_content",
                        format!("Slack messages hold 1 to {MAX_TEXT} characters; this one has {chars}"),
                    ));
                }
                let mut body = json!({ "channel": post.channel_id, "text": post.content });
                if let Some(ts) = &post.reply_to {
                    body["thread_ts"] = json!(ts);
                }
                ("/chat.postMessage", body)
            }
            Outbound::Action(action) => match &action.action {
                Moderation::DeleteMessage(ts) => ("/chat.delete", json!({ "channel": action.channel_id, "ts": ts })),
                Moderation::AddReaction(ts, emoji) => (
                    "/reactions.add",
                    json!({ "channel": action.channel_id, "timestamp": ts, "name": emoji.trim_matches(':') }),
                ),
                Moderation::TimeoutUser(..) | Moderation::BanUser(_) => {
                    return Err(AdapterError::new(
                        "unsupported_action",
                        "Slack's bot API has no timeout or ban; use delete-message or add-reaction",
                    ));
                }
            },
        };
        Ok(HttpRequest {
            method: "POST".into(),
            path: path.into(),
            headers: vec![
                ("authorization".into(), "Bearer {token}".into()),
                ("content-type".into(), "application/json; charset=utf-8".into()),
            ],
            body: body.to_string().into_bytes(),
        })
    }

    fn parse_response(&self, response: &PlatformResponse) -> Result<Delivery, AdapterError> {
        let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        if !(200..300).contains(&response.status) {
            return Err(AdapterError::new("platform_error", format!("Slack answered HTTP {}", response.status)));
        }
        if body.get("ok").and_then(Value::as_bool) == Some(true) {
            return Ok(Delivery { id: body.get("ts").and_then(Value::as_str).map(String::from) });
        }
        let error = body.get("error").and_then(Value::as_str).unwrap_or("unknown_error");
        let code = match error {
            "invalid_auth" | "not_authed" | "token_revoked" | "token_expired" | "account_inactive" => "invalid_token",
            other => other,
        };
        Err(AdapterError::new(code, format!("Slack refused the request: {error}")))
    }
}

impl Slack {
    fn verify(&self, headers: &[(String, String)], body: &[u8]) -> Result<(), AdapterError> {
        let secret = self.signing_secret.as_deref().ok_or_else(|| {
            AdapterError::new("not_configured", "set the adapter's `signing_secret` setting to accept Slack requests")
        })?;
        let missing = |h: &str| AdapterError::new("missing_signature", format!("the `{h}` header is required"));
        let timestamp =
            header(headers, "x-slack-request-timestamp").ok_or_else(|| missing("X-Slack-Request-Timestamp"))?;
        let signature = header(headers, "x-slack-signature").ok_or_else(|| missing("X-Slack-Signature"))?;
        signing::check_timestamp(timestamp, self.max_age_s)?;
        signing::verify_hmac_hex(secret.as_bytes(), &[b"v0:", timestamp.as_bytes(), b":", body], signature, "v0=")
    }
}

/// The event of an `event_callback` holding a message someone wrote, if it is one.
fn message_event(callback: &Value, retry: Option<String>) -> Option<Event> {
    let e = callback.get("event")?;
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(String::from);
    if text(e, "type").as_deref() != Some("message") || e.get("bot_id").is_some() {
        return None;
    }
    if let Some(subtype) = text(e, "subtype")
        && !SPOKEN_SUBTYPES.contains(&subtype.as_str())
    {
        return None;
    }
    let user = text(e, "user")?;
    let ts = text(e, "ts")?;
    let mut metadata = vec![("ts".to_string(), ts.clone())];
    for (key, value) in [
        ("team_id", text(callback, "team_id")),
        ("slack_event_id", text(callback, "event_id")),
        ("thread_ts", text(e, "thread_ts")),
        ("channel_type", text(e, "channel_type")),
        ("retry_num", retry),
    ] {
        if let Some(v) = value {
            metadata.push((key.into(), v));
        }
    }
    Some(Event {
        // One message, one id, whichever delivery of it this is.
        event_id: text(e, "client_msg_id")
            .unwrap_or_else(|| format!("{}-{ts}", text(e, "channel").unwrap_or_default())),
        event_type: "message".into(),
        platform: "slack".into(),
        user_id: user.clone(),
        author_id: Some(user),
        channel_id: text(e, "channel"),
        content: text(e, "text").unwrap_or_default(),
        timestamp_ms: ts.parse::<f64>().map_or(0, |s| (s * 1000.0) as u64),
        metadata,
    })
}

palisade_sdk::export_adapter!(Slack);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::testing::Harness;
    use palisade_sdk::{OutboundAction, OutboundPost};

    fn slack() -> Harness<Slack> {
        Harness::adapter(&[("signing_secret", "8f742231b10e8888abcd99yyyzzz85a5")]).unwrap()
    }

    fn signed(body: &str, age_s: u64) -> Vec<(String, String)> {
        let ts = (palisade_sdk::now_ms() / 1000 - age_s).to_string();
        let mac = signing::hmac_sha256(b"8f742231b10e8888abcd99yyyzzz85a5", &[format!("v0:{ts}:{body}").as_bytes()]);
        vec![
            ("X-Slack-Request-Timestamp".into(), ts),
            ("X-Slack-Signature".into(), format!("v0={}", signing::hex(&mac))),
        ]
    }

    #[test]
    fn slack_documented_signature_example_verifies() {
        // The example from Slack's "Verifying requests from Slack" page.
        let body = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let mac = signing::hmac_sha256(b"8f742231b10e8888abcd99yyyzzz85a5", &[b"v0:1531420618:", body.as_bytes()]);
        assert_eq!(signing::hex(&mac), "a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503");
    }

    #[test]
    fn challenge_is_answered_and_signatures_are_enforced() {
        let h = slack();
        let body = r#"{"token":"x","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
        let reply = h.plugin.parse_inbound(&signed(body, 0), body.as_bytes()).unwrap().reply.unwrap();
        assert!(
            String::from_utf8(reply.body).unwrap().contains("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P")
        );
        assert_eq!(h.plugin.parse_inbound(&signed(body, 301), body.as_bytes()).unwrap_err().code, "stale_timestamp");
        let mut forged = signed(body, 0);
        forged[1].1 = format!("v0={}", "0".repeat(64));
        assert_eq!(h.plugin.parse_inbound(&forged, body.as_bytes()).unwrap_err().code, "invalid_signature");
        assert_eq!(h.plugin.parse_inbound(&[], body.as_bytes()).unwrap_err().code, "missing_signature");
    }

    #[test]
    fn messages_become_events_and_edits_do_not() {
        let h = slack();
        let body = r#"{"type":"event_callback","team_id":"T1","event_id":"Ev1","event":{"type":"message","channel":"C1","user":"U1","text":"you are an idiot","ts":"1700000000.000100","client_msg_id":"abc-1"}}"#;
        let e = h.plugin.parse_inbound(&signed(body, 0), body.as_bytes()).unwrap().events.remove(0);
        assert_eq!((e.event_id.as_str(), e.user_id.as_str(), e.content.as_str()), ("abc-1", "U1", "you are an idiot"));
        assert_eq!(e.timestamp_ms, 1_700_000_000_000);
        let edit = r#"{"type":"event_callback","event":{"type":"message","subtype":"message_changed","channel":"C1","ts":"1.0"}}"#;
        assert!(h.plugin.parse_inbound(&signed(edit, 0), edit.as_bytes()).unwrap().events.is_empty());
    }

    #[test]
    fn posts_threads_and_errors() {
        let h = slack();
        let post = Outbound::Post(OutboundPost {
            channel_id: "C1".into(),
            content: "hi".into(),
            reply_to: Some("1.5".into()),
            idempotency_key: None,
        });
        let r = h.plugin.format_outbound(&post).unwrap();
        assert_eq!(r.path, "/chat.postMessage");
        assert_eq!(String::from_utf8(r.body).unwrap(), r#"{"channel":"C1","text":"hi","thread_ts":"1.5"}"#);
        let ban = Outbound::Action(OutboundAction {
            channel_id: "C1".into(),
            action: Moderation::BanUser("U1".into()),
            reason: None,
        });
        assert_eq!(h.plugin.format_outbound(&ban).unwrap_err().code, "unsupported_action");
        let bad =
            PlatformResponse { status: 200, headers: vec![], body: br#"{"ok":false,"error":"invalid_auth"}"#.to_vec() };
        assert_eq!(h.plugin.parse_response(&bad).unwrap_err().code, "invalid_token");
        let ok = PlatformResponse { status: 200, headers: vec![], body: br#"{"ok":true,"ts":"1.7"}"#.to_vec() };
        assert_eq!(h.plugin.parse_response(&ok).unwrap().id.as_deref(), Some("1.7"));
    }
}
