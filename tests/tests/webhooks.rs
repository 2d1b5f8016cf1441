//! Platform webhooks through a real adapter component (the test-only echo
//! adapter): its events take the ingest path (checks, validators, dedup, produce),
//! its direct replies go back as written, refusals are 400 with the adapter's
//! code, and an unknown platform is 404 — with nothing produced for a refusal.

use palisade_tests::{Service, set_key};
use redis::Commands;
use serde_json::Value;

#[tokio::test]
async fn webhook_events_are_ingested_replies_returned_and_refusals_produce_nothing() {
    let s = Service::ingest(&[]).await;
    s.plugins.install_with("echo-adapter", |m| set_key(&m, "platform", "\"web\""));
    s.core.plugins.reload(false);
    let http = reqwest::Client::new();
    let hook = |platform: &str| format!("{}/v1/platforms/{platform}/webhook", s.base);

    let r =
        http.post(hook("web")).header("x-echo-user", "alice").body("hello there\nsecond message").send().await.unwrap();
    assert_eq!(r.status(), 202);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["accepted"], 2, "{b}");
    let mut conn = s.redis();
    let stored: redis::streams::StreamRangeReply = conn.xrange_all(&s.keys.raw).unwrap();
    assert_eq!(stored.ids.len(), 2);
    let event: Value =
        serde_json::from_str(&redis::from_redis_value::<String>(stored.ids[0].map["event"].clone()).unwrap()).unwrap();
    assert_eq!(
        (event["platform"].as_str(), event["author_id"].as_str(), event["content"].as_str()),
        (Some("web"), Some("alice"), Some("hello there"))
    );

    let r = http.post(hook("web")).body("ping").send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.text().await.unwrap().as_str()), (200, "pong"));

    let r = http.post(hook("web")).body(vec![0xffu8, 0xfe]).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let b: Value = r.json().await.unwrap();
    assert_eq!((b["error"].as_str(), b["details"]["code"].as_str()), (Some("adapter_refused"), Some("not_utf8")));

    let r = http.post(hook("myspace")).body("hi").send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "unknown_platform");

    // The policy validator still applies: an adapter emitting a platform outside the whitelist is refused per item.
    s.plugins.install_with("echo-adapter", |m| set_key(&m, "version", "\"0.2.0\"")); // platform "echo" again
    s.core.plugins.reload(false);
    let r = http.post(hook("echo")).body("from a platform policy does not allow").send().await.unwrap();
    let b: Value = r.json().await.unwrap();
    assert_eq!(
        (b["rejected"].as_u64(), b["items"][0]["violations"][0]["code"].as_str()),
        (Some(1), Some("not_allowed")),
        "{b}"
    );
    let stored: redis::streams::StreamRangeReply = conn.xrange_all(&s.keys.raw).unwrap();
    assert_eq!(stored.ids.len(), 2, "nothing produced for refused payloads");
}
