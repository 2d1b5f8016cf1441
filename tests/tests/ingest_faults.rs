//! Redis stopped hard and restarted under load: requests during the outage get a
//! quick 503 `redis_unavailable` (never a hang or a 500), readiness goes false,
//! service resumes by itself, and every event answered 202 is in the stream.
//! Runs its own redis-server (AOF, fsync always) on a spare port.

use palisade_tests::{OwnRedis, Service};
use redis::Commands;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_mid_run_loses_no_accepted_event() {
    let mut redis_server = OwnRedis::start();
    let url = redis_server.url();
    let s = Service::ingest(&[("REDIS_URL", &url)]).await;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let send = |i: usize| {
        let body = json!({"event_id": format!("f-{i}"), "event_type": "message", "platform": "web",
            "user_id": "u", "author_id": "a", "content": format!("message number {i}")});
        http.post(format!("{}/v1/events/ingest", s.base)).header("api-key", "test-key").json(&body).send()
    };
    let mut accepted = HashSet::new();
    let (mut unavailable, mut i) = (0, 0);
    let mut saw_not_ready = false;
    let started = Instant::now();
    let mut phase = 0; // 0: up, 1: down, 2: up again
    let mut phase_started = Instant::now();
    while phase < 3 {
        i += 1;
        let sent = Instant::now();
        let r = send(i).await.expect("every request gets an answer");
        assert!(sent.elapsed() < Duration::from_secs(3), "request {i} took {:?}", sent.elapsed());
        match r.status().as_u16() {
            202 => {
                accepted.insert(format!("f-{i}"));
            }
            503 => {
                assert!(r.headers().contains_key("retry-after"));
                let b: Value = r.json().await.unwrap();
                assert_eq!(b["error"], "redis_unavailable", "{b}");
                unavailable += 1;
            }
            other => panic!("request {i}: unexpected status {other}: {}", r.text().await.unwrap()),
        }
        if phase == 1 && !saw_not_ready {
            let ready: Value = http.get(format!("{}/ready", s.base)).send().await.unwrap().json().await.unwrap();
            saw_not_ready = ready["ready"] == false;
        }
        let elapsed = phase_started.elapsed();
        if phase == 0 && elapsed > Duration::from_millis(500) {
            redis_server.kill();
            (phase, phase_started) = (1, Instant::now());
        } else if phase == 1 && elapsed > Duration::from_millis(1500) {
            redis_server.restart();
            (phase, phase_started) = (2, Instant::now());
        } else if phase == 2 && elapsed > Duration::from_secs(1) && accepted.contains(&format!("f-{i}")) {
            // Requests succeed again after the restart.
            phase = 3;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "service did not recover");
    }
    assert!(unavailable > 0, "the outage was observed");
    assert!(saw_not_ready, "/ready reported the outage");
    let mut conn = redis::Client::open(url.as_str()).unwrap().get_connection().unwrap();
    let reply: redis::streams::StreamRangeReply = conn.xrange_all(&s.keys.raw).unwrap();
    let stored: HashSet<String> =
        reply.ids.iter().map(|e| redis::from_redis_value(e.map["event_id"].clone()).unwrap()).collect();
    let lost: Vec<&String> = accepted.difference(&stored).collect();
    assert!(lost.is_empty(), "accepted but not in the stream: {lost:?}");
    assert!(accepted.len() > 10, "{} accepted", accepted.len());
}
