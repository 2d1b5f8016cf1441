//! The ingestion service against the real Redis on 127.0.0.1:6379 (each test
//! under its own key prefix) with the real policy validator plugin.

use palisade_tests::Service;
use redis::Commands;
use serde_json::{Value, json};
use std::time::Duration;

fn event(id: &str, content: &str) -> Value {
    json!({
        "event_id": id, "event_type": "message", "platform": "discord", "user_id": "u-1",
        "author_id": "a-1", "channel_id": "c-1", "content": content,
        "metadata": {"guild": "g-1", "n": 3}, "timestamp": "2026-11-29T10:00:00Z"
    })
}

async fn post(s: &Service, path: &str, body: &Value) -> (u16, Value, reqwest::header::HeaderMap) {
    let r = reqwest::Client::new()
        .post(format!("{}{path}", s.base))
        .header("api-key", "test-key")
        .json(body)
        .send()
        .await
        .unwrap();
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    (status, r.json().await.unwrap_or(Value::Null), headers)
}

/// Every entry of a stream: (stream id, fields).
fn entries(s: &Service, stream: &str) -> Vec<(String, std::collections::HashMap<String, String>)> {
    let reply: redis::streams::StreamRangeReply = s.redis().xrange_all(stream).unwrap();
    reply
        .ids
        .into_iter()
        .map(|e| {
            let fields = e.map.iter().map(|(k, v)| (k.clone(), redis::from_redis_value(v.clone()).unwrap())).collect();
            (e.id, fields)
        })
        .collect()
}

#[tokio::test]
async fn an_accepted_event_is_in_the_stream_with_all_fields() {
    let s = Service::ingest(&[]).await;
    let r = reqwest::Client::new()
        .post(format!("{}/v1/events/ingest", s.base))
        .header("api-key", "test-key")
        .header("x-request-id", "req-42")
        .json(&event("evt-1", "hello there"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.headers()["x-request-id"], "req-42");
    let body: Value = r.json().await.unwrap();
    assert_eq!((body["event_id"].as_str(), body["status"].as_str()), (Some("evt-1"), Some("accepted")));
    let stored = entries(&s, &s.keys.raw);
    assert_eq!(stored.len(), 1);
    let (id, fields) = &stored[0];
    assert_eq!(body["stream_id"].as_str(), Some(id.as_str()));
    assert_eq!(fields["event_id"], "evt-1");
    assert_eq!(fields["request_id"], "req-42");
    assert!(fields["received_at_ms"].parse::<u64>().unwrap() > 1_700_000_000_000);
    let e: Value = serde_json::from_str(&fields["event"]).unwrap();
    assert_eq!(e["content"], "hello there");
    assert_eq!(e["platform"], "discord");
    assert_eq!(e["author_id"], "a-1");
    assert_eq!(e["channel_id"], "c-1");
    assert_eq!(e["timestamp_ms"], 1_795_946_400_000u64);
    assert_eq!(e["metadata"], json!([["guild", "g-1"], ["n", "3"]]));
}

#[tokio::test]
async fn duplicates_inside_the_window_are_flagged_and_accepted_again_after_it() {
    let s = Service::ingest(&[("DEDUP_WINDOW_SECONDS", "1")]).await;
    let (status, first, _) = post(&s, "/v1/events/ingest", &event("evt-1", "same words")).await;
    assert_eq!(status, 202);
    // Same content, author and platform under another id is a duplicate of the first.
    let (status, dup, _) = post(&s, "/v1/events/ingest", &event("evt-2", "same words")).await;
    assert_eq!(status, 200);
    assert_eq!((dup["status"].as_str(), dup["duplicate_of"].as_str()), (Some("duplicate"), Some("evt-1")));
    assert_eq!(entries(&s, &s.keys.raw).len(), 1, "nothing produced for the duplicate");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (status, again, _) = post(&s, "/v1/events/ingest", &event("evt-3", "same words")).await;
    assert_eq!(status, 202, "{again}");
    assert_ne!(again["stream_id"], first["stream_id"]);
    assert_eq!(entries(&s, &s.keys.raw).len(), 2);
}

/// A copy-paste campaign from many accounts is many events: without `author_id`
/// the user stands for the author in the dedup key (content + author + platform).
#[tokio::test]
async fn the_same_message_from_two_users_is_two_events_and_one_users_retry_is_one() {
    let s = Service::ingest(&[]).await;
    let from = |id: &str, user: &str| {
        let mut e = event(id, "join my channel for free followers");
        e.as_object_mut().unwrap().remove("author_id");
        e["user_id"] = json!(user);
        e
    };
    let (status, _, _) = post(&s, "/v1/events/ingest", &from("camp-1", "u-1")).await;
    assert_eq!(status, 202);
    let (status, second, _) = post(&s, "/v1/events/ingest", &from("camp-2", "u-2")).await;
    assert_eq!((status, second["status"].as_str()), (202, Some("accepted")), "{second}");
    let (status, retry, _) = post(&s, "/v1/events/ingest", &from("camp-3", "u-1")).await;
    assert_eq!((status, retry["duplicate_of"].as_str()), (200, Some("camp-1")), "{retry}");
    let ids: Vec<String> = entries(&s, &s.keys.raw).into_iter().map(|(_, f)| f["event_id"].clone()).collect();
    assert_eq!(ids, ["camp-1", "camp-2"], "both users' copies go to screening");
}

#[tokio::test]
async fn a_batch_accepts_good_items_and_reports_each_bad_one() {
    let s = Service::ingest(&[]).await;
    let mut bad_platform = event("b-2", "from myspace");
    bad_platform["platform"] = json!("myspace");
    let batch = json!({ "events": [
        event("b-1", "first good one"),
        bad_platform,
        {"event_id": "b-3", "content": 7},
        event("b-4", "first good one"),
        event("b-5", "second good one"),
    ]});
    let (status, body, _) = post(&s, "/v1/events/ingest-batch", &batch).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        (body["accepted"].as_u64(), body["duplicates"].as_u64(), body["rejected"].as_u64()),
        (Some(2), Some(1), Some(2))
    );
    let items = body["items"].as_array().unwrap();
    let statuses: Vec<&str> = items.iter().map(|i| i["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["accepted", "rejected", "rejected", "duplicate", "accepted"]);
    assert_eq!(items[1]["violations"][0]["field"], "platform");
    assert_eq!(items[1]["violations"][0]["code"], "not_allowed");
    assert_eq!(
        (items[2]["event_id"].as_str(), items[2]["violations"][0]["field"].as_str()),
        (Some("b-3"), Some("content"))
    );
    assert_eq!(items[3]["duplicate_of"], "b-1");
    let ids: Vec<String> = entries(&s, &s.keys.raw).into_iter().map(|(_, f)| f["event_id"].clone()).collect();
    assert_eq!(ids, ["b-1", "b-5"], "only accepted items were produced");
}

#[tokio::test]
async fn each_kind_of_bad_input_gets_its_status_and_code_and_nothing_is_produced() {
    let s = Service::ingest(&[("MAX_BODY_BYTES", "2000"), ("MAX_BATCH_EVENTS", "3")]).await;
    let http = reqwest::Client::new();
    let url = format!("{}/v1/events/ingest", s.base);
    let send = |body: String, ct: &'static str| {
        http.post(&url).header("api-key", "test-key").header("content-type", ct).body(body).send()
    };

    let r = send("{\"event_id\": \"x\",\n \"content\": }".into(), "application/json").await.unwrap();
    assert_eq!(r.status(), 400);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"], "malformed_json");
    assert_eq!((b["details"]["line"].as_u64(), b["details"]["column"].as_u64()), (Some(2), Some(13)));

    let r = send(event("x", "hi").to_string(), "text/plain").await.unwrap();
    assert_eq!(r.status(), 415);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "unsupported_media_type");

    let r = send(event("x", &"a".repeat(3000)).to_string(), "application/json").await.unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "body_too_large");

    let (status, b, _) =
        post(&s, "/v1/events/ingest", &json!({"event_id": "x", "content": "hi", "platform": "web"})).await;
    assert_eq!((status, b["error"].as_str()), (422, Some("validation_failed")));
    let fields: Vec<&str> =
        b["details"]["violations"].as_array().unwrap().iter().map(|v| v["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["event_type", "user_id"]);

    let mut typo = event("x", "hi");
    typo["contnet"] = json!("oops");
    let (status, b, _) = post(&s, "/v1/events/ingest", &typo).await;
    assert_eq!((status, b["details"]["violations"][0]["code"].as_str()), (422, Some("unknown_field")));

    let mut bad_id = event("has space", "hi");
    bad_id["platform"] = json!("web");
    let (status, b, _) = post(&s, "/v1/events/ingest", &bad_id).await;
    assert_eq!((status, b["details"]["violations"][0]["code"].as_str()), (422, Some("invalid_format")), "{b}");

    let (status, b, _) = post(
        &s,
        "/v1/events/ingest-batch",
        &json!({"events": [event("1", "a"), event("2", "b"), event("3", "c"), event("4", "d")]}),
    )
    .await;
    assert_eq!((status, b["error"].as_str()), (422, Some("batch_too_large")));
    let (status, b, _) = post(&s, "/v1/events/ingest-batch", &json!([event("1", "a")])).await;
    assert_eq!((status, b["error"].as_str()), (422, Some("invalid_batch")));

    assert!(entries(&s, &s.keys.raw).is_empty());
    let m: Value = reqwest::get(format!("{}/v1/metrics", s.base)).await.unwrap().json().await.unwrap();
    assert_eq!(m["accepted"], 0);
    assert_eq!(m["rejected_by_code"]["malformed_json"], 1);
    assert_eq!(m["rejected_by_code"]["unsupported_media_type"], 1);
}

#[tokio::test]
async fn a_missing_or_wrong_key_is_401_and_health_is_open() {
    let s = Service::ingest(&[]).await;
    let http = reqwest::Client::new();
    for key in [None, Some("nope")] {
        let mut r = http.post(format!("{}/v1/events/ingest", s.base)).json(&event("k", "hi"));
        if let Some(k) = key {
            r = r.header("api-key", k);
        }
        let r = r.send().await.unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(r.json::<Value>().await.unwrap()["error"], "unauthorized");
    }
    assert_eq!(http.get(format!("{}/health", s.base)).send().await.unwrap().status(), 200);
    let ready: Value = http.get(format!("{}/ready", s.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!((ready["ready"].as_bool(), ready["redis"].as_bool()), (Some(true), Some(true)));
    assert!(entries(&s, &s.keys.raw).is_empty());
}

#[tokio::test]
async fn a_deep_backlog_answers_503_with_retry_after() {
    let s = Service::ingest(&[("MAX_QUEUE_DEPTH", "4"), ("BACKPRESSURE_THRESHOLD", "0.75")]).await;
    for i in 0..3 {
        assert_eq!(post(&s, "/v1/events/ingest", &event(&format!("e{i}"), &format!("msg {i}"))).await.0, 202);
    }
    // The backlog monitor refreshes every 200 ms.
    tokio::time::sleep(Duration::from_millis(450)).await;
    let (status, b, headers) = post(&s, "/v1/events/ingest", &event("e9", "one too many")).await;
    assert_eq!((status, b["error"].as_str()), (503, Some("backpressure")), "{b}");
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(entries(&s, &s.keys.raw).len(), 3, "nothing is trimmed or added");
    let m: Value = reqwest::get(format!("{}/v1/metrics", s.base)).await.unwrap().json().await.unwrap();
    assert_eq!((m["backpressure_refusals"].as_u64(), m["queue_depth"].as_u64()), (Some(1), Some(3)));
}

#[tokio::test]
async fn the_api_is_described_at_openapi_json_and_browsable_at_docs() {
    let s = Service::ingest(&[]).await;
    let spec: Value = reqwest::get(format!("{}/openapi.json", s.base)).await.unwrap().json().await.unwrap();
    assert_eq!(spec["openapi"], "3.0.3");
    for path in
        ["/v1/events/ingest", "/v1/events/ingest-batch", "/v1/platforms/{platform}/webhook", "/v1/admin/plugins/reload"]
    {
        assert!(spec["paths"][path].is_object(), "{path} missing from the spec");
    }
    // Each service describes its own routes: screening's are on :8002's spec.
    assert!(spec["paths"]["/v1/risk/screen"].is_null(), "ingest does not serve /v1/risk/screen");
    assert_eq!(spec["servers"].as_array().map(Vec::len), Some(1));
    assert!(spec["paths"]["/v1/events/ingest"]["post"]["responses"]["503"].is_object());
    let page = reqwest::get(format!("{}/docs", s.base)).await.unwrap().text().await.unwrap();
    assert!(page.contains("SwaggerUIBundle"), "Swagger UI is installed by scripts/setup: {page}");
    let js = reqwest::get(format!("{}/docs/swagger-ui-bundle.js", s.base)).await.unwrap();
    assert_eq!(js.status(), 200);
    assert_eq!(js.headers()["content-type"], "application/javascript");
    assert_eq!(reqwest::get(format!("{}/docs/../../etc/passwd", s.base)).await.unwrap().status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_load_generator_reports_and_checks_the_stream_growth() {
    let s = Service::ingest(&[]).await;
    for mode in [palisade::loadgen::Mode::Batch, palisade::loadgen::Mode::Single] {
        let args = palisade::loadgen::LoadArgs {
            url: s.base.clone(),
            mode,
            batch_size: 100,
            concurrency: 4,
            count: Some(400),
            duration: None,
            rate: None,
            api_key: None,
            content_bytes: 50,
        };
        // Fails if the stream did not grow by exactly the number of accepted events.
        palisade::loadgen::run(
            args,
            "test-key".into(),
            Some((palisade_streams::Target::new(&s.redis_url, &[]), vec![s.keys.raw.clone()])),
        )
        .await
        .unwrap();
    }
    assert_eq!(entries(&s, &s.keys.raw).len(), 800);
}
