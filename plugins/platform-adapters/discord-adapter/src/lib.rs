//! Discord platform adapter.
//!
//! Inbound, two kinds of request on `/v1/platforms/discord/webhook`:
//! - the **Interactions endpoint** (Discord calls it): `X-Signature-Ed25519` over
//!   `X-Signature-Timestamp` + body, checked with the application's `public_key`;
//!   a PING is answered with PONG; a message command ("Apps → Report") turns the
//!   messages it targets into events and answers with an ephemeral acknowledgement.
//! - **forwarded messages** (your bot relays gateway `MESSAGE_CREATE`s): the message
//!   object, or the gateway dispatch `{"t":"MESSAGE_CREATE","d":{…}}`, signed with
//!   Palisade's scheme (`X-Palisade-Timestamp`, `X-Palisade-Signature`) under
//!   `forward_secret`.
//!
//! Outbound (the host sends; this crate only formats): posts to
//! `POST /channels/{id}/messages`, deletes, reactions, and — on the guild in the
//! `guild_id` setting — timeouts and bans, with `Authorization: Bot {token}` (the host
//! puts the token in place of `{token}`).

use ed25519_dalek::{Signature, VerifyingKey};
use palisade_sdk::signing::{self, header};
use palisade_sdk::{
    Adapter, AdapterError, Delivery, Event, HttpReply, HttpRequest, Inbound, Moderation, Outbound, PlatformResponse,
    Settings,
};
use serde::Deserialize;
use serde_json::{Value, json};

/// Discord's epoch (2015-01-01T00:00:00Z) in Unix milliseconds: snowflakes count from it.
const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;
/// Discord's limit on a message's content.
const MAX_CONTENT: usize = 2000;
/// Discord's limit on a message nonce (our idempotency key).
const MAX_NONCE: usize = 25;
/// Discord's longest timeout: 28 days.
const MAX_TIMEOUT_S: u32 = 28 * 24 * 3600;

pub struct Discord {
    public_key: Option<VerifyingKey>,
    forward_secret: Option<String>,
    guild_id: Option<String>,
    max_age_s: u64,
}

#[derive(Deserialize)]
struct Author {
    id: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    bot: bool,
}

#[derive(Deserialize)]
struct Mention {
    id: String,
}

/// The fields of a Discord message object this adapter reads.
#[derive(Deserialize)]
struct Message {
    id: String,
    channel_id: String,
    guild_id: Option<String>,
    author: Author,
    #[serde(default)]
    content: String,
    #[serde(default)]
    mentions: Vec<Mention>,
    #[serde(default)]
    timestamp: String,
}

impl Adapter for Discord {
    fn new(settings: &Settings) -> Result<Self, String> {
        let public_key = match settings.get("public_key").map(|k| k.trim().to_string()).filter(|k| !k.is_empty()) {
            None => None,
            Some(hex) => {
                let bytes: [u8; 32] = signing::from_hex(&hex)
                    .and_then(|b| b.try_into().ok())
                    .ok_or("setting `public_key`: must be the application's 64-hex-digit Ed25519 public key")?;
                Some(VerifyingKey::from_bytes(&bytes).map_err(|_| "setting `public_key`: not a valid Ed25519 key")?)
            }
        };
        Ok(Discord {
            public_key,
            forward_secret: settings.get("forward_secret").filter(|s| !s.is_empty()),
            guild_id: settings.get("guild_id").filter(|s| !s.is_empty()),
            max_age_s: settings.usize_or("max_signature_age_s", 300)? as u64,
        })
    }

    fn platform(&self) -> String {
        "discord".into()
    }

    fn parse_inbound(&self, headers: &[(String, String)], body: &[u8]) -> Result<Inbound, AdapterError> {
        if header(headers, "x-signature-ed25519").is_some() {
            self.verify_interaction(headers, body)?;
            return self.interaction(body);
        }
        let Some(secret) = &self.forward_secret else {
            return Err(AdapterError::new(
                "missing_signature",
                "Interactions need `X-Signature-Ed25519`; forwarded messages need the adapter's `forward_secret` setting and a Palisade signature",
            ));
        };
        signing::verify_palisade(headers, body, secret, self.max_age_s)?;
        let value: Value = parse_json(body)?;
        let message = match value.get("t").and_then(Value::as_str) {
            Some("MESSAGE_CREATE") => value.get("d").cloned().unwrap_or(Value::Null),
            Some(other) => {
                return Err(AdapterError::new(
                    "unsupported_event",
                    format!("gateway event `{other}` is not a message"),
                ));
            }
            None => value,
        };
        let message: Message = serde_json::from_value(message)
            .map_err(|e| AdapterError::new("invalid_payload", format!("not a Discord message object: {e}")))?;
        Ok(Inbound { events: vec![to_event(message)], reply: None })
    }

    fn format_outbound(&self, request: &Outbound) -> Result<HttpRequest, AdapterError> {
        match request {
            Outbound::Post(post) => {
                let chars = post.content.chars().count();
                if chars == 0 || chars > MAX_CONTENT {
                    return Err(AdapterError::new(
                        "invalid_content",
                        format!("Discord messages hold 1 to {MAX_CONTENT} characters; this one has {chars}"),
                    ));
                }
                let mut body = json!({ "content": post.content });
                if let Some(reply_to) = &post.reply_to {
                    body["message_reference"] = json!({ "message_id": reply_to, "fail_if_not_exists": false });
                }
                if let Some(key) = &post.idempotency_key {
                    if key.chars().count() > MAX_NONCE {
                        return Err(AdapterError::new(
                            "invalid_idempotency_key",
                            format!("Discord nonces are at most {MAX_NONCE} characters"),
                        ));
                    }
                    body["nonce"] = json!(key);
                    body["enforce_nonce"] = json!(true);
                }
                Ok(request_to("POST", format!("/channels/{}/messages", seg(&post.channel_id)), Some(body), None))
            }
            Outbound::Action(action) => {
                let channel = seg(&action.channel_id);
                let reason = action.reason.as_deref();
                Ok(match &action.action {
                    Moderation::DeleteMessage(m) => {
                        request_to("DELETE", format!("/channels/{channel}/messages/{}", seg(m)), None, reason)
                    }
                    Moderation::AddReaction(m, emoji) => request_to(
                        "PUT",
                        format!("/channels/{channel}/messages/{}/reactions/{}/@me", seg(m), seg(emoji)),
                        None,
                        reason,
                    ),
                    Moderation::TimeoutUser(user, seconds) => {
                        if *seconds == 0 || *seconds > MAX_TIMEOUT_S {
                            return Err(AdapterError::new(
                                "invalid_duration",
                                format!("a Discord timeout lasts 1 s to 28 days ({MAX_TIMEOUT_S} s)"),
                            ));
                        }
                        let until = rfc3339(palisade_sdk::now_ms() + u64::from(*seconds) * 1000);
                        request_to(
                            "PATCH",
                            format!("/guilds/{}/members/{}", seg(self.guild()?), seg(user)),
                            Some(json!({ "communication_disabled_until": until })),
                            reason,
                        )
                    }
                    Moderation::BanUser(user) => request_to(
                        "PUT",
                        format!("/guilds/{}/bans/{}", seg(self.guild()?), seg(user)),
                        Some(json!({ "delete_message_seconds": 0 })),
                        reason,
                    ),
                })
            }
        }
    }

    fn parse_response(&self, response: &PlatformResponse) -> Result<Delivery, AdapterError> {
        let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        if (200..300).contains(&response.status) {
            return Ok(Delivery { id: body.get("id").and_then(Value::as_str).map(String::from) });
        }
        let said = body.get("message").and_then(Value::as_str).unwrap_or("no message");
        let code = match response.status {
            401 => "invalid_token",
            403 => "missing_permissions",
            404 => "not_found",
            400 => "bad_request",
            _ => "platform_error",
        };
        Err(AdapterError::new(code, format!("Discord answered {}: {said}", response.status)))
    }
}

impl Discord {
    fn guild(&self) -> Result<&str, AdapterError> {
        self.guild_id.as_deref().ok_or_else(|| {
            AdapterError::new(
                "guild_required",
                "timeouts and bans act on a guild: set the adapter's `guild_id` setting",
            )
        })
    }

    fn verify_interaction(&self, headers: &[(String, String)], body: &[u8]) -> Result<(), AdapterError> {
        let key = self.public_key.as_ref().ok_or_else(|| {
            AdapterError::new("not_configured", "set the adapter's `public_key` setting to accept Interactions")
        })?;
        let timestamp = header(headers, "x-signature-timestamp")
            .ok_or_else(|| AdapterError::new("missing_signature", "the `X-Signature-Timestamp` header is required"))?;
        let bad = || AdapterError::new("invalid_signature", "the request signature does not match");
        let signature: [u8; 64] = header(headers, "x-signature-ed25519")
            .and_then(signing::from_hex)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(bad)?;
        let mut message = Vec::with_capacity(timestamp.len() + body.len());
        message.extend_from_slice(timestamp.as_bytes());
        message.extend_from_slice(body);
        key.verify_strict(&message, &Signature::from_bytes(&signature)).map_err(|_| bad())?;
        signing::check_timestamp(timestamp, self.max_age_s)
    }

    /// An Interactions request: PING → PONG; a message command → events + ephemeral reply.
    fn interaction(&self, body: &[u8]) -> Result<Inbound, AdapterError> {
        let value: Value = parse_json(body)?;
        match value.get("type").and_then(Value::as_u64) {
            Some(1) => Ok(Inbound { events: Vec::new(), reply: Some(json_reply(json!({ "type": 1 }))) }),
            Some(2) => {
                let resolved = value.pointer("/data/resolved/messages").and_then(Value::as_object);
                let events: Vec<Event> = resolved
                    .into_iter()
                    .flat_map(|m| m.values())
                    .filter_map(|m| serde_json::from_value::<Message>(m.clone()).ok())
                    .map(to_event)
                    .collect();
                let text = match events.len() {
                    0 => "Palisade got the command; it names no message to review.".to_string(),
                    n => format!("Sent {n} message(s) to Palisade for review."),
                };
                // 4 = CHANNEL_MESSAGE_WITH_SOURCE; flags 64 = EPHEMERAL (only the caller sees it).
                let reply = json_reply(json!({ "type": 4, "data": { "content": text, "flags": 64 } }));
                Ok(Inbound { events, reply: Some(reply) })
            }
            Some(t) => {
                Err(AdapterError::new("unsupported_interaction", format!("interaction type {t} is not handled")))
            }
            None => Err(AdapterError::new("invalid_payload", "an interaction needs a numeric `type`")),
        }
    }
}

fn parse_json(body: &[u8]) -> Result<Value, AdapterError> {
    serde_json::from_slice(body).map_err(|e| AdapterError::new("invalid_json", format!("the body is not JSON: {e}")))
}

fn json_reply(body: Value) -> HttpReply {
    HttpReply {
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.to_string().into_bytes(),
    }
}

fn to_event(m: Message) -> Event {
    // A snowflake holds its creation time: exact, and no date parsing in the plugin.
    let timestamp_ms = m.id.parse::<u64>().map_or(0, |id| (id >> 22) + DISCORD_EPOCH_MS);
    let mut metadata = vec![("author_username".to_string(), m.author.username)];
    if let Some(guild) = m.guild_id {
        metadata.push(("guild_id".into(), guild));
    }
    if !m.mentions.is_empty() {
        metadata.push(("mentions".into(), m.mentions.into_iter().map(|u| u.id).collect::<Vec<_>>().join(",")));
    }
    if m.author.bot {
        metadata.push(("author_bot".into(), "true".into()));
    }
    if !m.timestamp.is_empty() {
        metadata.push(("discord_timestamp".into(), m.timestamp));
    }
    Event {
        event_id: m.id,
        event_type: "message".into(),
        platform: "discord".into(),
        user_id: m.author.id.clone(),
        author_id: Some(m.author.id),
        channel_id: Some(m.channel_id),
        content: m.content,
        timestamp_ms,
        metadata,
    }
}

fn request_to(method: &str, path: String, body: Option<Value>, reason: Option<&str>) -> HttpRequest {
    let mut headers = vec![("authorization".to_string(), "Bot {token}".to_string())];
    if body.is_some() {
        headers.push(("content-type".into(), "application/json".into()));
    }
    if let Some(reason) = reason {
        headers.push(("x-audit-log-reason".into(), percent_encode(reason)));
    }
    HttpRequest {
        method: method.into(),
        path,
        headers,
        body: body.map(|b| b.to_string().into_bytes()).unwrap_or_default(),
    }
}

/// One path segment, percent-encoded (ids, and emoji such as `👍` or `name:id`).
fn seg(s: &str) -> String {
    percent_encode(s)
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// RFC 3339 UTC time (`2026-11-29T12:00:00.000Z`) from Unix milliseconds.
fn rfc3339(ms: u64) -> String {
    let (days, rem) = ((ms / 86_400_000) as i64, ms % 86_400_000);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s, milli) = (rem / 3_600_000, rem / 60_000 % 60, rem / 1000 % 60, rem % 1000);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{milli:03}Z")
}

palisade_sdk::export_adapter!(Discord);

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};
    use palisade_sdk::testing::Harness;
    use palisade_sdk::{OutboundAction, OutboundPost};

    const SEED: [u8; 32] = [7; 32];

    fn adapter(extra: &[(&str, &str)]) -> Harness<Discord> {
        let public = signing::hex(SigningKey::from_bytes(&SEED).verifying_key().as_bytes());
        let mut pairs = vec![("public_key", public.as_str()), ("forward_secret", "fwd"), ("guild_id", "g1")];
        pairs.extend_from_slice(extra);
        Harness::adapter(&pairs).unwrap()
    }

    fn signed(body: &str) -> Vec<(String, String)> {
        let ts = (palisade_sdk::now_ms() / 1000).to_string();
        let sig = SigningKey::from_bytes(&SEED).sign(format!("{ts}{body}").as_bytes());
        vec![("X-Signature-Ed25519".into(), signing::hex(&sig.to_bytes())), ("X-Signature-Timestamp".into(), ts)]
    }

    #[test]
    fn ping_is_answered_with_pong_only_when_signed() {
        let h = adapter(&[]);
        let body = r#"{"type":1,"id":"1","application_id":"2","token":"t"}"#;
        let reply = h.plugin.parse_inbound(&signed(body), body.as_bytes()).unwrap().reply.unwrap();
        assert_eq!(reply.body, br#"{"type":1}"#);
        let mut tampered = signed(body);
        tampered[1].1 = (tampered[1].1.parse::<u64>().unwrap() - 1).to_string();
        assert_eq!(h.plugin.parse_inbound(&tampered, body.as_bytes()).unwrap_err().code, "invalid_signature");
    }

    #[test]
    fn message_command_reports_its_messages() {
        let h = adapter(&[]);
        let body = r#"{"type":2,"data":{"type":3,"resolved":{"messages":{"1180000000000000000":{"id":"1180000000000000000","channel_id":"c1","author":{"id":"u9","username":"x"},"content":"buy followers now"}}}}}"#;
        let inbound = h.plugin.parse_inbound(&signed(body), body.as_bytes()).unwrap();
        assert_eq!(inbound.events.len(), 1);
        assert_eq!(inbound.events[0].content, "buy followers now");
        assert!(String::from_utf8(inbound.reply.unwrap().body).unwrap().contains("\"flags\":64"));
    }

    #[test]
    fn forwarded_message_needs_the_forward_signature() {
        let h = adapter(&[]);
        let body = r#"{"t":"MESSAGE_CREATE","d":{"id":"1180000000000000000","channel_id":"c1","guild_id":"g1","author":{"id":"u1","username":"ann"},"content":"hello <@u2>","mentions":[{"id":"u2"}],"timestamp":"2023-11-20T00:00:00+00:00"}}"#;
        let headers = signing::sign_palisade(body.as_bytes(), "fwd", palisade_sdk::now_ms() / 1000).to_vec();
        let e = h.plugin.parse_inbound(&headers, body.as_bytes()).unwrap().events.remove(0);
        assert_eq!(
            (e.event_id.as_str(), e.user_id.as_str(), e.channel_id.as_deref()),
            ("1180000000000000000", "u1", Some("c1"))
        );
        assert_eq!(e.meta("mentions"), Some("u2"));
        assert_eq!(e.timestamp_ms, (1180000000000000000u64 >> 22) + DISCORD_EPOCH_MS);
        assert_eq!(h.plugin.parse_inbound(&[], body.as_bytes()).unwrap_err().code, "missing_signature");
    }

    #[test]
    fn posts_and_actions_become_documented_requests() {
        let h = adapter(&[]);
        let post = Outbound::Post(OutboundPost {
            channel_id: "c1".into(),
            content: "hi".into(),
            reply_to: Some("m1".into()),
            idempotency_key: Some("k1".into()),
        });
        let r = h.plugin.format_outbound(&post).unwrap();
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/channels/c1/messages"));
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["message_reference"]["message_id"], "m1");
        assert_eq!(body["nonce"], "k1");
        let action = |a| {
            Outbound::Action(OutboundAction { channel_id: "c1".into(), action: a, reason: Some("spam run".into()) })
        };
        let r = h.plugin.format_outbound(&action(Moderation::AddReaction("m1".into(), "👍".into()))).unwrap();
        assert_eq!(r.path, "/channels/c1/messages/m1/reactions/%F0%9F%91%8D/@me");
        assert!(r.headers.contains(&("x-audit-log-reason".into(), "spam%20run".into())));
        palisade_sdk::testing::set_now_ms(Some(1_764_417_600_000)); // 2025-11-29T12:00:00Z
        let r = h.plugin.format_outbound(&action(Moderation::TimeoutUser("u1".into(), 600))).unwrap();
        palisade_sdk::testing::set_now_ms(None);
        assert_eq!((r.method.as_str(), r.path.as_str()), ("PATCH", "/guilds/g1/members/u1"));
        assert_eq!(
            serde_json::from_slice::<Value>(&r.body).unwrap()["communication_disabled_until"],
            "2025-11-29T12:10:00.000Z"
        );
        let too_long =
            Outbound::Post(OutboundPost { channel_id: "c".into(), content: "x".repeat(2001), ..Default::default() });
        assert_eq!(h.plugin.format_outbound(&too_long).unwrap_err().code, "invalid_content");
    }

    #[test]
    fn a_bad_token_is_named() {
        let h = adapter(&[]);
        let response = PlatformResponse {
            status: 401,
            headers: vec![],
            body: br#"{"message":"401: Unauthorized","code":0}"#.to_vec(),
        };
        assert_eq!(h.plugin.parse_response(&response).unwrap_err().code, "invalid_token");
        let ok = PlatformResponse { status: 200, headers: vec![], body: br#"{"id":"m77"}"#.to_vec() };
        assert_eq!(h.plugin.parse_response(&ok).unwrap().id.as_deref(), Some("m77"));
    }
}
