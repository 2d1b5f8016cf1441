//! The HTTP layer of both services through `oneshot`, over in-memory storage (no
//! Redis): every error answer and its code, the route-auth table, and the JSON
//! summaries. The Redis paths behind these routes have their own real-Redis tests.

use axum::body::Body;
use axum::http::Request;
use palisade_tests::{Routers, oneshot};
use serde_json::Value;
use std::sync::atomic::Ordering;

const EVENT: &str = r#"{"event_id":"e1","event_type":"message","platform":"web","user_id":"u1","author_id":"a1","content":"hello there"}"#;

fn post(path: &str, key: Option<&str>, content_type: &str, body: impl Into<Body>) -> Request<Body> {
    let mut r = Request::post(path).header("content-type", content_type);
    if let Some(k) = key {
        r = r.header("api-key", k);
    }
    r.body(body.into()).unwrap()
}

fn json(path: &str, body: &str) -> Request<Body> {
    post(path, Some("test-key"), "application/json", body.to_string())
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

#[tokio::test]
async fn ingest_error_paths_answer_with_their_codes() {
    let r = Routers::new(&[("MAX_BODY_BYTES", "2000"), ("MAX_BATCH_EVENTS", "2")], &["policy"]);
    let code = |(status, body): (u16, Value)| (status, body["error"].as_str().unwrap_or("").to_string());
    let cases: Vec<(Request<Body>, u16, &str)> = vec![
        (post("/v1/events/ingest", None, "application/json", EVENT), 401, "unauthorized"),
        (post("/v1/events/ingest", Some("wrong"), "application/json", EVENT), 401, "unauthorized"),
        (post("/v1/events/ingest", Some("test-key"), "text/plain", EVENT), 415, "unsupported_media_type"),
        (json("/v1/events/ingest", &"x".repeat(3000)), 413, "body_too_large"),
        (json("/v1/events/ingest", "{\"event_id\": "), 400, "malformed_json"),
        (json("/v1/events/ingest", r#"{"event_id": 5}"#), 422, "validation_failed"),
        (json("/v1/events/ingest", &EVENT.replace("\"web\"", "\"myspace\"")), 422, "validation_failed"),
        (json("/v1/events/ingest-batch", "[1,2]"), 422, "invalid_batch"),
        (json("/v1/events/ingest-batch", "{\"events\": [1"), 400, "malformed_json"),
        (json("/v1/events/ingest-batch", "{\"events\": []}"), 422, "empty_batch"),
        (
            json("/v1/events/ingest-batch", &format!("{{\"events\": [{EVENT},{EVENT},{EVENT}]}}")),
            422,
            "batch_too_large",
        ),
    ];
    for (request, status, want) in cases {
        let what = format!("{} {}", request.method(), request.uri());
        assert_eq!(code(oneshot(&r.ingest, request).await), (status, want.to_string()), "{what}");
    }
    assert!(r.sink.entries.lock().unwrap().is_empty(), "nothing refused reaches the stream");

    // The validator's verdict names the field and code.
    let (_, body) = oneshot(&r.ingest, json("/v1/events/ingest", &EVENT.replace("\"web\"", "\"myspace\""))).await;
    assert_eq!(body["details"]["violations"][0]["field"], "platform");
    assert_eq!(body["details"]["violations"][0]["code"], "not_allowed");

    // Accepted, then a duplicate; both answered from what the sink said.
    let (status, body) = oneshot(&r.ingest, json("/v1/events/ingest", EVENT)).await;
    assert_eq!((status, body["status"].as_str()), (202, Some("accepted")), "{body}");
    let (status, body) = oneshot(&r.ingest, json("/v1/events/ingest", &EVENT.replace("e1", "e2"))).await;
    assert_eq!((status, body["status"].as_str(), body["duplicate_of"].as_str()), (200, Some("duplicate"), Some("1-0")));
    assert_eq!(r.sink.entries.lock().unwrap().len(), 1);

    // Backpressure, then a store that fails: 503 with Retry-After, nothing stored.
    r.backlog.events.store(1_000_000, Ordering::Relaxed);
    let (status, body) = oneshot(&r.ingest, json("/v1/events/ingest", &EVENT.replace("hello", "hi"))).await;
    assert_eq!((status, body["error"].as_str()), (503, Some("backpressure")));
    r.backlog.events.store(0, Ordering::Relaxed);
    r.sink.fail.store(true, Ordering::Relaxed);
    let (status, body) = oneshot(&r.ingest, json("/v1/events/ingest", &EVENT.replace("hello", "hi"))).await;
    assert_eq!((status, body["error"].as_str()), (503, Some("redis_unavailable")));
    assert_eq!(r.sink.entries.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_batch_answers_each_item() {
    let r = Routers::new(&[], &["policy"]);
    let bad = EVENT.replace("\"e1\"", "\"e9\"").replace("\"message\"", "\"nonsense\"");
    let body = format!("{{\"events\": [{EVENT}, {bad}, {{\"event_id\": 3}}]}}");
    let (status, answer) = oneshot(&r.ingest, json("/v1/events/ingest-batch", &body)).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!((answer["accepted"].as_u64(), answer["rejected"].as_u64()), (Some(1), Some(2)));
    let statuses: Vec<&str> =
        answer["items"].as_array().unwrap().iter().map(|i| i["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["accepted", "rejected", "rejected"]);
    assert_eq!(answer["items"][1]["event_id"], "e9");
    assert_eq!(answer["items"][2]["index"], 2);
}

#[tokio::test]
async fn screening_error_paths_and_the_form_checked_like_json() {
    let r = Routers::new(&[("MAX_CONTENT_LENGTH", "50")], &["threats", "policy"]);
    let form = "application/x-www-form-urlencoded";
    let cases: Vec<(Request<Body>, u16, &str)> = vec![
        (post("/v1/risk/screen", None, form, "event_id=e1&content=hi"), 401, "unauthorized"),
        (post("/v1/risk/screen", Some("test-key"), "text/plain", "hi"), 415, "unsupported_media_type"),
        (post("/v1/risk/screen", Some("test-key"), form, "event_id=e1"), 422, "validation_failed"),
        (json("/v1/risk/screen", "{"), 400, "malformed_json"),
        (json("/v1/risk/screen-batch", "{\"events\": 5}"), 422, "invalid_batch"),
    ];
    for (request, status, want) in cases {
        let what = format!("{} {}", request.method(), request.uri());
        let (got, body) = oneshot(&r.screen, request).await;
        assert_eq!((got, body["error"].as_str().unwrap_or("")), (status, want), "{what}: {body}");
    }
    // The form obeys MAX_CONTENT_LENGTH and the id limit like JSON does.
    let long = format!("event_id=e1&content={}", "a+".repeat(40));
    let (status, body) = oneshot(&r.screen, post("/v1/risk/screen", Some("test-key"), form, long)).await;
    assert_eq!((status, body["details"]["violations"][0]["code"].as_str()), (422, Some("too_long")), "{body}");
    let long_id = format!("event_id={}&content=hi", "x".repeat(300));
    let (status, body) = oneshot(&r.screen, post("/v1/risk/screen", Some("test-key"), form, long_id)).await;
    assert_eq!((status, body["details"]["violations"][0]["field"].as_str()), (422, Some("event_id")), "{body}");

    // The validator plugins too, on every input form: what ingest refuses, screening refuses.
    let off_policy = [
        json("/v1/risk/screen", &EVENT.replace("\"web\"", "\"myspace\"")),
        post("/v1/risk/screen", Some("test-key"), form, "event_id=e%20f&content=hi"),
        json("/v1/risk/screen-batch", &format!("{{\"events\": [{EVENT}, {}]}}", EVENT.replace("\"e1\"", "\"e 2\""))),
    ];
    for (request, field) in off_policy.into_iter().zip(["platform", "event_id", "event_id"]) {
        let (status, body) = oneshot(&r.screen, request).await;
        assert_eq!(status, 422, "{body}");
        let violations = body["details"]["violations"].as_array().or(body["details"]["error"]["violations"].as_array());
        assert_eq!(violations.unwrap()[0]["field"], field, "{body}");
    }

    let (status, body) =
        oneshot(&r.screen, post("/v1/risk/screen", Some("test-key"), form, "event_id=e2&content=i+will+kill+you"))
            .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["category"], "VIOLENCE", "{body}");
    assert_eq!(body["event"]["content"], "i will kill you");

    let (status, summary) = oneshot(&r.screen, get("/v1/metrics")).await;
    assert_eq!(status, 200);
    assert_eq!(summary["screened_by_http"], 1, "{summary}");
    for key in ["events_screened", "avg_latency_ms", "batch_p99_ms", "queue_lag", "cache_hit_rate", "routed"] {
        assert!(summary.get(key).is_some(), "{key} missing from {summary}");
    }
}

/// Which documented routes need a key: every operation of openapi.json is sent
/// without one to both services; those the spec marks with `security` must answer
/// 401, the rest must not — and the open set is named here, so opening a route
/// takes a deliberate change in two places.
#[tokio::test]
async fn route_auth_table() {
    let r = Routers::new(&[], &["policy", "web-adapter"]);
    let open = [
        "GET /health",
        "GET /ready",
        "GET /metrics",
        "GET /openapi.json",
        "GET /docs",
        "GET /v1/metrics",
        "POST /v1/platforms/{platform}/webhook",
    ];
    let spec: Value = serde_json::from_str(include_str!("../../host/src/api/openapi.json")).unwrap();
    let mut seen_open = Vec::new();
    for (path, ops) in spec["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let name = format!("{} {path}", method.to_uppercase());
            let keyed = op.get("security").is_some();
            assert_eq!(keyed, !open.contains(&name.as_str()), "{name}: the spec and this table disagree");
            let uri = path.replace("{platform}", "web").replace("{name}", "policy");
            let mut served = 0;
            for router in [&r.ingest, &r.screen] {
                let request = Request::builder()
                    .method(method.to_uppercase().as_str())
                    .uri(&uri)
                    .header("content-type", "application/json")
                    .body(Body::from("{}"))
                    .unwrap();
                let (status, body) = oneshot(router, request).await;
                if status == 404 && body["error"] != "unknown_platform" && body["error"] != "plugin_not_found" {
                    continue;
                }
                served += 1;
                assert_eq!(status == 401, keyed, "{name} answered {status} without a key: {body}");
            }
            assert!(served > 0, "{name} is served by neither service");
            if !keyed {
                seen_open.push(name);
            }
        }
    }
    assert_eq!(seen_open.len(), open.len(), "{seen_open:?}");
}

#[tokio::test]
async fn every_exported_metric_is_named_in_one_place() {
    let r = Routers::new(&[], &["policy", "threats"]);
    oneshot(&r.ingest, json("/v1/events/ingest", EVENT)).await;
    oneshot(&r.screen, json("/v1/risk/screen", EVENT)).await;
    let mut exported = Vec::new();
    for router in [&r.ingest, &r.screen] {
        let response = tower::ServiceExt::oneshot(router.clone(), get("/metrics")).await.unwrap();
        let text =
            String::from_utf8(axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap().to_vec()).unwrap();
        exported.extend(
            text.lines().filter_map(|l| l.strip_prefix("# TYPE ")).map(|l| l.split(' ').next().unwrap().to_string()),
        );
    }
    assert!(exported.len() >= 10, "{exported:?}");
    for name in &exported {
        assert!(
            palisade_core::telemetry::names::ALL.contains(&name.as_str()),
            "{name} is not in telemetry::names::ALL"
        );
    }
    assert!(exported.iter().any(|n| n == "palisade_http_requests_total"));
}

/// Ordinary text of `chars` characters (words, punctuation, no rule keywords).
fn ordinary_text(chars: usize, seed: usize) -> String {
    const WORDS: &[&str] = &[
        "the",
        "meeting",
        "moved",
        "to",
        "thursday",
        "please",
        "review",
        "notes",
        "before",
        "lunch",
        "and",
        "bring",
        "questions",
        "about",
        "budget",
        "roadmap",
        "design",
        "release",
        "thanks",
        "everyone",
        "great",
        "work",
        "on",
        "this",
        "sprint",
        "see",
        "you",
        "soon",
        "docs",
        "updated",
        "yesterday",
        "with",
        "examples",
    ];
    let mut out = String::with_capacity(chars + 16);
    let mut i = seed;
    while out.len() < chars {
        out.push_str(WORDS[i % WORDS.len()]);
        out.push(if i.is_multiple_of(11) { '.' } else { ' ' });
        i = i.wrapping_mul(31).wrapping_add(7);
    }
    out.truncate(chars);
    out
}

/// The probe's attack: batches of 500 events of 10,000 ordinary characters each
/// (all within MAX_CONTENT_LENGTH), again and again, must not switch a rule off.
#[tokio::test]
async fn long_valid_batches_never_quarantine_the_rules() {
    let heuristics: Vec<String> =
        palisade_tests::shipped().into_iter().filter(|n| !n.ends_with("-adapter") && n != "policy").collect();
    let names: Vec<&str> = heuristics.iter().map(String::as_str).collect();
    let r = Routers::new(&[], &names);
    for round in 0..6 {
        let events: Vec<Value> = (0..500)
            .map(|i| {
                serde_json::json!({"event_id": format!("r{round}-{i}"), "event_type": "message", "platform": "web",
                    "user_id": "u", "content": ordinary_text(10_000, round * 1000 + i)})
            })
            .collect();
        let body = serde_json::json!({ "events": events }).to_string();
        let (status, answer) = oneshot(&r.screen, json("/v1/risk/screen-batch", &body)).await;
        assert_eq!(status, 200, "round {round}");
        let degraded: Vec<&Value> = answer["predictions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| !p["degraded"].as_array().unwrap().is_empty())
            .collect();
        assert!(degraded.is_empty(), "round {round}: {} degraded, e.g. {}", degraded.len(), degraded[0]["degraded"]);
    }
    let (_, ready) = oneshot(&r.screen, get("/ready")).await;
    assert_eq!(ready["status"], "ready", "{ready}");
    let threat =
        r#"{"event_id":"t1","event_type":"message","platform":"web","user_id":"u","content":"i will kill you"}"#;
    let (_, p) = oneshot(&r.screen, json("/v1/risk/screen", threat)).await;
    assert_eq!((p["category"].as_str(), p["degraded"].as_array().map(Vec::len)), (Some("VIOLENCE"), Some(0)), "{p}");
}

/// A quarantined rule is never silent: predictions name it and carry the flag,
/// `/ready` says `degraded` (still 200), and it comes back by itself.
#[tokio::test]
async fn a_quarantined_rule_is_visible_until_it_is_retried() {
    let plugins = palisade_tests::PluginDir::new();
    plugins.install("threats");
    plugins.install_with("hostile", |m| {
        palisade_tests::set_key(&m, "max_faults", "1").replace("[limits]", "[limits]\nretry_after_ms = 500")
    });
    let r = Routers::over(plugins, &[]);
    let event = |id: &str, content: &str| {
        format!(r#"{{"event_id":"{id}","event_type":"message","platform":"web","user_id":"u","content":"{content}"}}"#)
    };
    let (_, first) = oneshot(&r.screen, json("/v1/risk/screen", &event("h1", "trap"))).await;
    assert!(first["flags"].as_array().unwrap().iter().any(|f| f == "plugin_fault:hostile"), "{first}");
    let (_, p) = oneshot(&r.screen, json("/v1/risk/screen", &event("h2", "i will kill you"))).await;
    assert_eq!(p["degraded"], serde_json::json!(["hostile"]), "{p}");
    assert!(p["flags"].as_array().unwrap().iter().any(|f| f == "degraded"), "{p}");
    assert_eq!(p["category"], "VIOLENCE", "the other rules still score");
    let (status, ready) = oneshot(&r.screen, get("/ready")).await;
    assert_eq!((status, ready["status"].as_str()), (200, Some("degraded")), "{ready}");
    assert_eq!(ready["degraded"], serde_json::json!(["hostile"]));
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let (_, ready) = oneshot(&r.screen, get("/ready")).await;
    assert_eq!(ready["status"], "ready", "retried after 500 ms: {ready}");
}

/// Every code an error answer can carry (`ErrorCode`: `ApiError` takes nothing
/// else) is listed in `openapi.json`'s `Error` schema, and nothing else is: a
/// client can match on the list, and schemathesis checks answers against it.
#[test]
fn every_error_code_is_in_the_openapi_document() {
    let spec: Value = serde_json::from_str(include_str!("../../host/src/api/openapi.json")).unwrap();
    let listed: Vec<&str> = spec["components"]["schemas"]["Error"]["properties"]["error"]["enum"]
        .as_array()
        .expect("Error.error lists its codes (enum)")
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let codes: Vec<&str> = palisade_core::ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(listed, codes);
    for code in ["shadow_files", "no_shadows", "validation_failed"] {
        assert!(listed.contains(&code), "{code}");
    }
}

/// Refusals of the event and platform routes are counted once, by code, in
/// `palisade_ingest_rejections_total`: not a 401 (a key problem), and a refused
/// event by its field's code rather than `validation_failed`.
#[tokio::test]
async fn refusals_are_counted_once_by_code() {
    let r = Routers::new(&[("MAX_BODY_BYTES", "2000")], &["policy", "web-adapter"]);
    let refusals = [
        post("/v1/events/ingest", None, "application/json", EVENT),
        post("/v1/events/ingest", Some("test-key"), "text/plain", EVENT),
        json("/v1/events/ingest", &"x".repeat(3000)),
        json("/v1/events/ingest", "{\"event_id\": "),
        json("/v1/events/ingest", &EVENT.replace("\"web\"", "\"myspace\"")),
        json("/v1/events/ingest-batch", "{\"events\": [1"),
        json("/v1/events/ingest-batch", "{\"events\": []}"),
        post("/v1/platforms/nowhere/webhook", None, "application/json", "{}"),
    ];
    for request in refusals {
        let (status, _) = oneshot(&r.ingest, request).await;
        assert!((400..500).contains(&status), "{status}");
    }
    let response = tower::ServiceExt::oneshot(r.ingest.clone(), get("/metrics")).await.unwrap();
    let text = String::from_utf8(axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap().to_vec()).unwrap();
    let mut counted: Vec<(String, u64)> = text
        .lines()
        .filter_map(|l| l.strip_prefix("palisade_ingest_rejections_total{code=\""))
        .filter_map(|l| l.split_once("\"} "))
        .map(|(code, n)| (code.to_string(), n.parse().unwrap()))
        .filter(|(_, n)| *n > 0)
        .collect();
    counted.sort();
    let want = [
        ("body_too_large", 1),
        ("empty_batch", 1),
        ("malformed_json", 2),
        ("not_allowed", 1),
        ("unknown_platform", 1),
        ("unsupported_media_type", 1),
    ];
    assert_eq!(counted, want.map(|(c, n)| (c.to_string(), n)), "{text}");
}
