//! Redis stopped hard and restarted under load, or hung (SIGSTOP): requests during
//! the outage get a quick 503 (never a hang or a 500) — `redis_unavailable` when
//! nothing was stored, `outcome_unknown` when it may have been — readiness goes
//! false, service resumes by itself, and every event answered 202 is in the stream.
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
                // A request in flight when Redis died may have been stored: `outcome_unknown`.
                assert!(b["error"] == "redis_unavailable" || b["error"] == "outcome_unknown", "{b}");
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

/// A hung Redis (SIGSTOP, connections open, no answers): every request is answered
/// 503 within a bounded time; an event answered `redis_unavailable` ("nothing was
/// accepted") is never in the stream; an `outcome_unknown` one names its id, and
/// retrying it once Redis is back gives exactly one copy (accepted or duplicate).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_redis_gets_bounded_503s_and_none_for_a_stored_event() {
    let redis_server = OwnRedis::start();
    let url = redis_server.url();
    let s = Service::ingest(&[("REDIS_URL", &url), ("REDIS_TIMEOUT_MS", "300")]).await;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let event = |i: usize| {
        json!({"event_id": format!("h-{i}"), "event_type": "message", "platform": "web",
            "user_id": "u", "content": format!("hung message {i}")})
    };
    let post = |i: usize| {
        http.post(format!("{}/v1/events/ingest", s.base)).header("api-key", "test-key").json(&event(i)).send()
    };
    assert_eq!(post(0).await.unwrap().status(), 202);
    redis_server.pause();
    // Concurrent requests while it is frozen, so some are queued behind others.
    let answers = futures_join((1..=40).map(|i| {
        let request = post(i);
        async move {
            let sent = Instant::now();
            let r = request.await.expect("an answer");
            (i, r.status().as_u16(), sent.elapsed(), r.json::<Value>().await.unwrap())
        }
    }))
    .await;
    redis_server.resume();
    let (mut unknown, mut unavailable) = (Vec::new(), Vec::new());
    for (i, status, took, body) in &answers {
        assert_eq!(*status, 503, "request {i}: {body}");
        assert!(*took < Duration::from_millis(1500), "request {i} took {took:?}");
        match body["error"].as_str() {
            Some("outcome_unknown") => {
                assert_eq!(body["details"]["status"], "unknown");
                assert_eq!(body["details"]["event_ids"], json!([format!("h-{i}")]));
                unknown.push(*i);
            }
            Some("redis_unavailable") => unavailable.push(*i),
            other => panic!("request {i}: {other:?}: {body}"),
        }
    }
    assert!(!unknown.is_empty(), "a hung Redis cannot say nothing was stored");
    // Redis runs what it was sent while frozen; then each unknown one is retried.
    for i in &unknown {
        let status = post(*i).await.unwrap().status().as_u16();
        assert!(status == 202 || status == 200, "retry of h-{i}: {status}");
    }
    let mut conn = redis::Client::open(url.as_str()).unwrap().get_connection().unwrap();
    let reply: redis::streams::StreamRangeReply = conn.xrange_all(&s.keys.raw).unwrap();
    let stored: Vec<String> =
        reply.ids.iter().map(|e| redis::from_redis_value(e.map["event_id"].clone()).unwrap()).collect();
    for i in &unavailable {
        assert!(!stored.contains(&format!("h-{i}")), "h-{i} was answered 'nothing accepted' but is stored");
    }
    for i in &unknown {
        let copies = stored.iter().filter(|id| **id == format!("h-{i}")).count();
        assert_eq!(copies, 1, "h-{i} stored {copies} times");
    }
}

/// Requests refused during a stall are not written in bulk when Redis resumes:
/// 100 batches of 500 events sent while Redis hangs are answered 503, and what
/// Redis had been sent before the stall was noticed is all that reaches the
/// stream (a few thousand events, not 50,000); so the first request after Redis
/// answers again is accepted at once, not after the stall's backlog.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_refused_in_a_stall_are_not_written_late_and_service_resumes_at_once() {
    let redis_server = OwnRedis::start();
    let url = redis_server.url();
    let s =
        Service::ingest(&[("REDIS_URL", &url), ("REDIS_TIMEOUT_MS", "300"), ("BACKPRESSURE_ENABLED", "false")]).await;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
    let batch = |b: usize| {
        let events: Vec<Value> = (0..500)
            .map(|i| {
                json!({"event_id": format!("st-{b}-{i}"), "event_type": "message", "platform": "web",
                "user_id": "u", "content": format!("stalled batch {b} event {i}")})
            })
            .collect();
        http.post(format!("{}/v1/events/ingest-batch", s.base))
            .header("api-key", "test-key")
            .json(&json!({"events": events}))
            .send()
    };
    redis_server.pause();
    let statuses = futures_join((0..100).map(|b| {
        let request = batch(b);
        async move { request.await.expect("an answer").status().as_u16() }
    }))
    .await;
    assert!(statuses.iter().all(|&s| s == 503), "{statuses:?}");
    redis_server.resume();
    let resumed = Instant::now();
    let probe = json!({"event_id": "after", "event_type": "message", "platform": "web", "user_id": "u", "content": "after the stall"});
    let r = http
        .post(format!("{}/v1/events/ingest", s.base))
        .header("api-key", "test-key")
        .json(&probe)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    let took = resumed.elapsed();
    std::thread::sleep(Duration::from_millis(500)); // anything still on its way arrives
    let mut conn = redis::Client::open(url.as_str()).unwrap().get_connection().unwrap();
    let written: usize = conn.xlen(&s.keys.raw).unwrap();
    assert!(written < 10_000, "{written} of the 50,000 refused events were written after the stall");
    assert!(took < Duration::from_secs(1), "the first request after the stall took {took:?}");
}

/// Await every future (the tests crate has no `futures` dependency).
async fn futures_join<F: std::future::Future + Send + 'static>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

/// The backlog that `/v1/metrics` reports (`queue_lag`), as a user reads it.
async fn queue_lag(s: &Service) -> Option<u64> {
    let r = reqwest::get(format!("{}/v1/metrics", s.screen_base)).await.ok()?;
    r.json::<Value>().await.ok()?["queue_lag"].as_u64()
}

/// After Redis restarts from its AOF (a clean SHUTDOWN, then a SIGKILL), a
/// backlog that does not exist never blocks ingest: once every event is
/// screened the reported backlog is 0 again, and ingest accepts under a
/// MAX_QUEUE_DEPTH smaller than what was screened before the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backlog_is_zero_after_a_redis_restart_from_aof() {
    let mut redis_server = OwnRedis::start();
    let url = redis_server.url();
    let s = Service::both(&[("REDIS_URL", &url), ("SCREENING_MODEL", "none"), ("MAX_QUEUE_DEPTH", "100")]).await;
    let conn = || redis::Client::open(url.as_str()).unwrap().get_connection().unwrap();
    let routed = |c: &mut redis::Connection| -> usize {
        c.xlen::<_, usize>(&s.keys.reasoning).unwrap_or(0) + c.xlen::<_, usize>(&s.keys.low_risk).unwrap_or(0)
    };
    let mut sent = 0;
    for round in 0..3 {
        // 3 × 80 events, each batch under the depth; all screened before the next.
        for _ in 0..4 {
            let events: Vec<Value> = (0..20)
                .map(|_| {
                    sent += 1;
                    json!({"event_id": format!("b-{sent}"), "event_type": "message", "platform": "web",
                        "user_id": "u", "content": format!("backlog message {sent}")})
                })
                .collect();
            // Retried as a client would while Redis comes back (a retry of a stored
            // event answers `duplicate`); a backpressure refusal is what must not happen.
            let retrying = Instant::now();
            loop {
                let r = s.ingest_batch(&events).await;
                let status = r.status().as_u16();
                let body: Value = r.json().await.unwrap();
                if status == 200 || status == 202 {
                    break;
                }
                assert_eq!(status, 503, "round {round}: {body}");
                assert_ne!(body["error"], "backpressure", "round {round}: a backlog that does not exist");
                assert!(retrying.elapsed() < Duration::from_secs(10), "round {round}: still {body}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let mut c = conn();
            palisade_tests::wait_until(Duration::from_secs(20), || routed(&mut c) == sent, "the batch routed");
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while queue_lag(&s).await != Some(0) {
            assert!(
                Instant::now() < deadline,
                "round {round}: backlog {:?} with everything routed",
                queue_lag(&s).await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        match round {
            0 => {
                let _: redis::RedisResult<()> = redis::cmd("SHUTDOWN").query(&mut conn());
                redis_server.kill();
                redis_server.restart();
            }
            1 => {
                redis_server.kill();
                redis_server.restart();
            }
            _ => {}
        }
    }
    assert_eq!(routed(&mut conn()), 240);
}
