//! The shipped platform adapters (Discord, Slack, web) as users meet them, through
//! the ingestion service, a real Redis and the real built components: signed
//! webhooks in (valid, invalid and stale signatures, Slack's challenge, Discord's
//! PING, retries, malformed and oversized payloads with nothing produced), and bot
//! posts and actions out to a local stand-in for the platform API (exact bodies and
//! headers, a 429 waited out, 5xx retried, a bad token named, pre-post screening).

use ed25519_dalek::{Signer, SigningKey};
use hmac::{Hmac, Mac};
use palisade_tests::{Service, StandIn, set_key};
use redis::Commands;
use serde_json::{Value, json};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const DISCORD_SEED: [u8; 32] = [9; 32];
const SLACK_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";

fn now_s() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn hmac_hex(secret: &str, message: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

/// An ingestion service with the three shipped adapters, configured as an operator would.
async fn service(overrides: &[(&str, &str)]) -> Service {
    let s = Service::ingest(overrides).await;
    let public_key = hex::encode(SigningKey::from_bytes(&DISCORD_SEED).verifying_key().as_bytes());
    s.plugins.install_with("discord-adapter", |m| {
        let m = set_key(&m, "public_key", &format!("\"{public_key}\""));
        let m = set_key(&m, "forward_secret", "\"fwd-secret\"");
        set_key(&m, "guild_id", "\"g1\"")
    });
    s.plugins.install_with("slack-adapter", |m| set_key(&m, "signing_secret", &format!("\"{SLACK_SECRET}\"")));
    s.plugins.install_with("web-adapter", |m| set_key(&m, "secret", "\"web-secret\""));
    s.core.plugins.reload(false);
    s
}

fn hook(s: &Service, platform: &str) -> String {
    format!("{}/v1/platforms/{platform}/webhook", s.base)
}

fn stored(s: &Service) -> Vec<Value> {
    let reply: redis::streams::StreamRangeReply = s.redis().xrange_all(&s.keys.raw).unwrap();
    reply
        .ids
        .iter()
        .map(|e| serde_json::from_str(&redis::from_redis_value::<String>(e.map["event"].clone()).unwrap()).unwrap())
        .collect()
}

/// A stored event's id, platform, user, channel and content.
fn normalized(e: &Value) -> [Option<&str>; 5] {
    ["event_id", "platform", "user_id", "channel_id", "content"].map(|k| e[k].as_str())
}

/// A metadata value of a stored event (`metadata` is a list of `[key, value]`).
fn meta<'a>(event: &'a Value, key: &str) -> Option<&'a str> {
    event["metadata"].as_array()?.iter().find(|kv| kv[0] == key).and_then(|kv| kv[1].as_str())
}

fn discord_signed(body: &str, timestamp: u64) -> [(&'static str, String); 2] {
    let ts = timestamp.to_string();
    let signature = SigningKey::from_bytes(&DISCORD_SEED).sign(format!("{ts}{body}").as_bytes());
    [("x-signature-ed25519", hex::encode(signature.to_bytes())), ("x-signature-timestamp", ts)]
}

fn palisade_signed(body: &str, secret: &str, timestamp: u64) -> [(&'static str, String); 2] {
    let ts = timestamp.to_string();
    let signature = hmac_hex(secret, format!("{ts}.{body}").as_bytes());
    [("x-palisade-timestamp", ts), ("x-palisade-signature", format!("sha256={signature}"))]
}

fn slack_signed(body: &str, timestamp: u64) -> [(&'static str, String); 2] {
    let ts = timestamp.to_string();
    let signature = hmac_hex(SLACK_SECRET, format!("v0:{ts}:{body}").as_bytes());
    [("x-slack-request-timestamp", ts), ("x-slack-signature", format!("v0={signature}"))]
}

async fn send(url: &str, headers: &[(&'static str, String)], body: &str) -> (u16, Value) {
    let mut request =
        reqwest::Client::new().post(url).header("content-type", "application/json").body(body.to_string());
    for (k, v) in headers {
        request = request.header(*k, v);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn discord_ping_signatures_and_forwarded_messages() {
    let s = service(&[("MAX_BODY_BYTES", "8192")]).await;
    let url = hook(&s, "discord");
    let ping = r#"{"type":1,"id":"1","application_id":"2","token":"t","version":1}"#;

    let (status, body) = send(&url, &discord_signed(ping, now_s()), ping).await;
    assert_eq!((status, body), (200, json!({ "type": 1 })), "a signed PING is answered with PONG");

    let mut forged = discord_signed(ping, now_s());
    forged[0].1 = hex::encode([0u8; 64]);
    let (status, body) = send(&url, &forged, ping).await;
    assert_eq!(
        (status, body["error"].as_str(), body["details"]["code"].as_str()),
        (401, Some("signature_rejected"), Some("invalid_signature"))
    );
    let (status, body) = send(&url, &discord_signed(ping, now_s() - 600), ping).await;
    assert_eq!((status, body["details"]["code"].as_str()), (401, Some("stale_timestamp")));

    let message = r#"{"t":"MESSAGE_CREATE","d":{"id":"1180000000000000001","channel_id":"c42","guild_id":"g1","author":{"id":"u7","username":"ann"},"content":"hello <@u8>","mentions":[{"id":"u8"}],"timestamp":"2023-11-20T00:00:00+00:00"}}"#;
    let (status, body) = send(&url, &palisade_signed(message, "fwd-secret", now_s()), message).await;
    assert_eq!((status, body["accepted"].as_u64()), (202, Some(1)), "{body}");
    let events = stored(&s);
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(
        normalized(e),
        [Some("1180000000000000001"), Some("discord"), Some("u7"), Some("c42"), Some("hello <@u8>")]
    );
    assert_eq!((meta(e, "guild_id"), meta(e, "mentions")), (Some("g1"), Some("u8")));

    // Unsigned, malformed and oversized payloads: refused, nothing produced.
    let (status, _) = send(&url, &[], message).await;
    assert_eq!(status, 401);
    let broken = "{\"t\":\"MESSAGE_CREATE\",";
    let (status, body) = send(&url, &palisade_signed(broken, "fwd-secret", now_s()), broken).await;
    assert_eq!((status, body["details"]["code"].as_str()), (400, Some("invalid_json")));
    let huge = format!(r#"{{"id":"1","channel_id":"c","author":{{"id":"u"}},"content":"{}"}}"#, "x".repeat(10_000));
    let (status, body) = send(&url, &palisade_signed(&huge, "fwd-secret", now_s()), &huge).await;
    assert_eq!((status, body["error"].as_str()), (413, Some("body_too_large")));
    assert_eq!(stored(&s).len(), 1, "nothing produced for refused payloads");

    let metrics = reqwest::get(format!("{}/metrics", s.base)).await.unwrap().text().await.unwrap();
    for line in [
        r#"palisade_adapter_webhooks_total{outcome="accepted",platform="discord"} 1"#,
        r#"palisade_adapter_webhooks_total{outcome="replied",platform="discord"} 1"#,
        r#"palisade_adapter_webhooks_total{outcome="signature_rejected",platform="discord"} 3"#,
    ] {
        assert!(metrics.contains(line), "missing `{line}`");
    }
    assert!(!metrics.contains("fwd-secret"));
}

#[tokio::test]
async fn slack_challenge_messages_retries_and_signatures() {
    let s = service(&[]).await;
    let url = hook(&s, "slack");
    let challenge = r#"{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
    let (status, body) = send(&url, &slack_signed(challenge, now_s()), challenge).await;
    assert_eq!(
        (status, body["challenge"].as_str()),
        (200, Some("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"))
    );

    let message = r#"{"type":"event_callback","team_id":"T1","event_id":"Ev1","event":{"type":"message","channel":"C9","user":"U5","text":"nobody likes you, leave","ts":"1700000000.000200","client_msg_id":"5f1c-msg"}}"#;
    let (status, body) = send(&url, &slack_signed(message, now_s()), message).await;
    assert_eq!((status, body["accepted"].as_u64()), (202, Some(1)), "{body}");
    // Slack retries a delivery it thinks failed: the same message is not produced again.
    let mut retry = slack_signed(message, now_s()).to_vec();
    retry.push(("x-slack-retry-num", "1".into()));
    let (status, body) = send(&url, &retry, message).await;
    assert_eq!((status, body["duplicates"].as_u64(), body["accepted"].as_u64()), (200, Some(1), Some(0)), "{body}");
    let events = stored(&s);
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(
        normalized(e),
        [Some("5f1c-msg"), Some("slack"), Some("U5"), Some("C9"), Some("nobody likes you, leave")]
    );
    assert_eq!(e["timestamp_ms"].as_u64(), Some(1_700_000_000_000), "{e}");

    let (status, body) = send(&url, &slack_signed(message, now_s() - 301), message).await;
    assert_eq!((status, body["details"]["code"].as_str()), (401, Some("stale_timestamp")));
    let mut forged = slack_signed(message, now_s()).to_vec();
    forged[1].1 = format!("v0={}", hmac_hex("wrong-secret", b"x"));
    let (status, body) = send(&url, &forged, message).await;
    assert_eq!((status, body["details"]["code"].as_str()), (401, Some("invalid_signature")));
    assert_eq!(stored(&s).len(), 1);
}

#[tokio::test]
async fn web_adapter_takes_signed_generic_json() {
    let s = service(&[]).await;
    let url = hook(&s, "web");
    let batch = r#"{"events":[{"event_id":"w-1","user_id":"u1","content":"first"},{"event_id":"w-2","user_id":"u2","content":"second","channel_id":"home"}]}"#;
    let (status, body) = send(&url, &palisade_signed(batch, "web-secret", now_s()), batch).await;
    assert_eq!((status, body["accepted"].as_u64()), (202, Some(2)), "{body}");
    let (status, body) = send(&url, &[], batch).await;
    assert_eq!((status, body["details"]["code"].as_str()), (401, Some("missing_signature")));
    let events = stored(&s);
    assert_eq!(events.iter().map(|e| e["content"].as_str().unwrap()).collect::<Vec<_>>(), ["first", "second"]);
}

async fn post(s: &Service, platform: &str, what: &str, body: Value) -> (u16, Value, Option<String>) {
    let r = reqwest::Client::new()
        .post(format!("{}/v1/platforms/{platform}/{what}", s.base))
        .header("api-key", "test-key")
        .json(&body)
        .send()
        .await
        .unwrap();
    let retry_after = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
    (r.status().as_u16(), r.json().await.unwrap(), retry_after)
}

#[tokio::test]
async fn posts_and_actions_reach_the_platform_exactly_as_documented() {
    let platform = StandIn::start().await;
    let s = service(&[
        ("DISCORD_API_BASE", platform.base.as_str()),
        ("DISCORD_BOT_TOKEN", "discord-test-token"),
        ("SLACK_API_BASE", platform.base.as_str()),
        ("SLACK_BOT_TOKEN", "xoxb-test"),
    ])
    .await;

    platform.answer(200, &[("content-type", "application/json")], r#"{"id":"1190000000000000000","channel_id":"c1"}"#);
    let (status, body, _) = post(
        &s,
        "discord",
        "posts",
        json!({ "channel_id": "c1", "content": "Please keep it civil.", "reply_to": "m9", "idempotency_key": "warn-1" }),
    )
    .await;
    assert_eq!(
        (status, body["id"].as_str(), body["attempts"].as_u64()),
        (200, Some("1190000000000000000"), Some(1)),
        "{body}"
    );
    let seen = platform.take();
    assert_eq!((seen[0].method.as_str(), seen[0].path.as_str()), ("POST", "/channels/c1/messages"));
    assert_eq!(seen[0].header("authorization"), Some("Bot discord-test-token"));
    assert_eq!(seen[0].header("content-type"), Some("application/json"));
    assert_eq!(
        serde_json::from_slice::<Value>(&seen[0].body).unwrap(),
        json!({ "content": "Please keep it civil.", "message_reference": { "message_id": "m9", "fail_if_not_exists": false }, "nonce": "warn-1", "enforce_nonce": true })
    );

    platform.answer(204, &[], "");
    let (status, _, _) = post(
        &s,
        "discord",
        "actions",
        json!({ "channel_id": "c1", "action": { "type": "delete_message", "message_id": "m9" }, "reason": "spam" }),
    )
    .await;
    assert_eq!(status, 200);
    let seen = platform.take();
    assert_eq!((seen[0].method.as_str(), seen[0].path.as_str()), ("DELETE", "/channels/c1/messages/m9"));
    assert_eq!(seen[0].header("x-audit-log-reason"), Some("spam"));

    platform.answer(200, &[], r#"{"ok":true,"channel":"C1","ts":"1700000000.000300"}"#);
    let (status, body, _) = post(
        &s,
        "slack",
        "posts",
        json!({ "channel_id": "C1", "content": "Heads up", "reply_to": "1700000000.000100" }),
    )
    .await;
    assert_eq!((status, body["id"].as_str()), (200, Some("1700000000.000300")));
    let seen = platform.take();
    assert_eq!(seen[0].path, "/chat.postMessage");
    assert_eq!(seen[0].header("authorization"), Some("Bearer xoxb-test"));
    assert_eq!(seen[0].header("content-type"), Some("application/json; charset=utf-8"));
    assert_eq!(
        serde_json::from_slice::<Value>(&seen[0].body).unwrap(),
        json!({ "channel": "C1", "text": "Heads up", "thread_ts": "1700000000.000100" })
    );

    // What a platform cannot do is refused before anything is sent.
    let (status, body, _) =
        post(&s, "slack", "actions", json!({ "channel_id": "C1", "action": { "type": "ban_user", "user_id": "U1" } }))
            .await;
    assert_eq!((status, body["details"]["code"].as_str()), (422, Some("unsupported_action")));
    let (status, body, _) = post(&s, "discord", "posts", json!({ "channel_id": "c1", "text": "wrong field" })).await;
    assert_eq!((status, body["error"].as_str()), (422, Some("invalid_request")));
    assert!(platform.take().is_empty());
}

#[tokio::test]
async fn rate_limits_are_waited_out_5xx_retried_and_a_bad_token_named() {
    let platform = StandIn::start().await;
    let s = service(&[
        ("DISCORD_API_BASE", platform.base.as_str()),
        ("DISCORD_BOT_TOKEN", "revoked-token"),
        ("SLACK_API_BASE", platform.base.as_str()),
        ("OUTBOUND_BACKOFF_MS", "10"),
        ("OUTBOUND_MAX_WAIT_MS", "5000"),
    ])
    .await;
    let hello = json!({ "channel_id": "c1", "content": "hello" });

    platform.answer(
        429,
        &[("retry-after", "1")],
        r#"{"message":"You are being rate limited.","retry_after":1.0,"global":false}"#,
    );
    let started = Instant::now();
    let (status, body, _) = post(&s, "discord", "posts", hello.clone()).await;
    assert_eq!((status, body["attempts"].as_u64(), body["id"].as_str()), (200, Some(2), Some("m-default")), "{body}");
    let seen = platform.take();
    assert!(seen[1].at - seen[0].at >= Duration::from_millis(950), "waited {:?}", seen[1].at - seen[0].at);
    assert!(started.elapsed() < Duration::from_secs(4));

    platform.answer(502, &[], "bad gateway");
    platform.answer(503, &[], "unavailable");
    let (status, body, _) = post(&s, "discord", "posts", hello.clone()).await;
    assert_eq!((status, body["attempts"].as_u64()), (200, Some(3)), "{body}");
    platform.take();

    platform.answer(429, &[("retry-after", "120")], "{}");
    let (status, body, retry_after) = post(&s, "discord", "posts", hello.clone()).await;
    assert_eq!(
        (status, body["error"].as_str(), retry_after.as_deref()),
        (429, Some("platform_rate_limited"), Some("120"))
    );
    assert_eq!(platform.take().len(), 1, "a wait past OUTBOUND_MAX_WAIT_MS is handed back, not slept");

    platform.answer(401, &[], r#"{"message":"401: Unauthorized","code":0}"#);
    let (status, body, _) = post(&s, "discord", "posts", hello.clone()).await;
    assert_eq!(
        (status, body["error"].as_str(), body["details"]["code"].as_str()),
        (502, Some("platform_refused"), Some("invalid_token")),
        "{body}"
    );
    assert!(body["message"].as_str().unwrap().contains("401"), "{body}");
    assert!(!body.to_string().contains("revoked-token"), "the token never appears in an answer");

    let (status, body, _) = post(&s, "slack", "posts", hello).await;
    assert_eq!((status, body["error"].as_str()), (503, Some("platform_not_configured")));
    assert!(body["message"].as_str().unwrap().contains("SLACK_BOT_TOKEN"), "{body}");

    let metrics = reqwest::get(format!("{}/metrics", s.base)).await.unwrap().text().await.unwrap();
    for line in [
        r#"palisade_adapter_outbound_total{kind="post",outcome="delivered",platform="discord"} 2"#,
        r#"palisade_adapter_outbound_total{kind="post",outcome="rate_limited",platform="discord"} 1"#,
        r#"palisade_adapter_retries_total{platform="discord",reason="rate_limited"} 1"#,
        r#"palisade_adapter_retries_total{platform="discord",reason="server_error"} 2"#,
    ] {
        assert!(metrics.contains(line), "missing `{line}`");
    }
    assert!(
        metrics.contains("palisade_adapter_platform_request_duration_seconds_count{platform=\"discord\"} 7"),
        "{metrics}"
    );
}

#[tokio::test]
async fn prepost_screening_refuses_abusive_bot_posts() {
    let platform = StandIn::start().await;
    let s = service(&[
        ("DISCORD_API_BASE", platform.base.as_str()),
        ("DISCORD_BOT_TOKEN", "t"),
        ("PREPOST_SCREENING", "true"),
        ("SCREENING_THRESHOLD", "0.5"),
    ])
    .await;
    for rule in palisade_tests::shipped().iter().filter(|n| !n.ends_with("-adapter") && *n != "policy") {
        s.plugins.install(rule);
    }
    s.core.plugins.reload(false);
    let (status, body, _) =
        post(&s, "discord", "posts", json!({ "channel_id": "c1", "content": "I will kill you, you worthless idiot" }))
            .await;
    assert_eq!((status, body["error"].as_str()), (422, Some("content_refused")), "{body}");
    assert!(
        body["details"]["score"].as_f64().unwrap() > 0.5 && !body["details"]["hits"].as_array().unwrap().is_empty(),
        "{body}"
    );
    assert!(platform.take().is_empty(), "nothing was sent");
    let (status, _, _) = post(
        &s,
        "discord",
        "posts",
        json!({ "channel_id": "c1", "content": "Welcome to the server! Read the rules." }),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(platform.take().len(), 1);
}
