//! The seed's quick start, as its README writes it, against both services on the
//! real Redis: health and readiness, its sample event (`message_created`), a batch,
//! the form-encoded screen, and `/v1/metrics` on both (`.avg_latency_ms`).

use palisade_tests::Service;
use serde_json::{Value, json};
use std::time::Duration;

fn sample(id: &str, content: &str) -> Value {
    json!({
        "event_id": id, "event_type": "message_created", "platform": "discord",
        "user_id": "user_123", "author_id": "author_456", "channel_id": "channel_789",
        "content": content, "timestamp": "2024-01-15T10:30:00Z",
        "metadata": {"guild_id": "guild_001", "message_type": "text"}
    })
}

#[tokio::test]
async fn the_seeds_quick_start_answers_2xx() {
    let s = Service::both(&[]).await;
    let http = reqwest::Client::new();
    for base in [&s.base, &s.screen_base] {
        for path in ["/health", "/ready", "/v1/metrics"] {
            let r = http.get(format!("{base}{path}")).send().await.unwrap();
            assert!(r.status().is_success(), "GET {base}{path}: {}", r.status());
        }
    }
    let r = http
        .post(format!("{}/v1/events/ingest", s.base))
        .header("api-key", "test-key")
        .json(&sample("evt_001", "Hello everyone, how is it going?"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{:?}", r.text().await);
    let batch = json!({"events": [sample("evt_002", "First message"), sample("evt_003", "Second message")]});
    let r = http
        .post(format!("{}/v1/events/ingest-batch", s.base))
        .header("api-key", "test-key")
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["accepted"], 2, "{answer}");
    // `curl -d 'event_id=…&content=…'` sends a form.
    let r = http
        .post(format!("{}/v1/risk/screen", s.screen_base))
        .header("api-key", "test-key")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("event_id=evt_004&content=You+are+such+an+idiot")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let prediction: Value = r.json().await.unwrap();
    assert!(prediction["risk_score"].is_number(), "{prediction}");

    // The three ingested events are screened by the consumer; the summary shows it.
    let started = std::time::Instant::now();
    loop {
        let summary: Value =
            http.get(format!("{}/v1/metrics", s.screen_base)).send().await.unwrap().json().await.unwrap();
        let routed =
            summary["routed"]["reasoning_queue"].as_u64().unwrap() + summary["routed"]["low_risk"].as_u64().unwrap();
        if routed == 3 {
            assert!(summary["avg_latency_ms"].as_f64().unwrap() > 0.0, "{summary}");
            assert_eq!(summary["screened_by_http"], 1, "{summary}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "not screened: {summary}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ingest: Value = http.get(format!("{}/v1/metrics", s.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(ingest["accepted"], 3, "{ingest}");
    let _ = s.stop.send(true);
}
