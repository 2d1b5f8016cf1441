//! An event screened while a rule plugin was out (quarantined, or faulting on its
//! batch) is never left at that verdict: by default it is screened again once the
//! plugin is back and routed a second time, whole, flagged `rescreened`; the event
//! that makes the plugin fault gives up after `MAX_DELIVERIES` screenings and goes
//! for review. With `DEGRADED_EVENTS=review`, degraded verdicts go to
//! `events:reasoning_queue` at once, flagged `review`. `palisade serve screen`
//! processes of the built binary, the real Redis, the real `hostile` test plugin.

use palisade_tests::{PluginDir, ServeProcess, set_key, unique_prefix, wait_until};
use redis::Commands;
use serde_json::Value;
use std::time::Duration;

const THREATS: [&str; 3] = ["i will kill you", "i will kill you tomorrow", "i will kill you and your dog"];

/// `threats`, and `hostile` quarantined at its first fault for `retry_ms` (doubling each time).
fn plugins(retry_ms: u64) -> PluginDir {
    let dir = PluginDir::new();
    dir.install("threats");
    dir.install_with("hostile", |m| {
        set_key(&m, "max_faults", "1").replace("[limits]", &format!("[limits]\nretry_after_ms = {retry_ms}"))
    });
    dir
}

async fn start(plugins: &PluginDir, prefix: &str, policy: &str) -> ServeProcess {
    let env = [
        ("SCREENING_MODEL", "none"),
        ("SCORING", "weighted"),
        ("REDIS_KEY_PREFIX", prefix),
        ("CONSUMER_NAME", "degraded"),
        ("CLAIM_INTERVAL_MS", "200"),
        ("MAX_DELIVERIES", "3"),
        ("DEGRADED_EVENTS", policy),
        ("LOG_FORMAT", "text"),
    ];
    ServeProcess::start(env!("CARGO_BIN_EXE_palisade"), "screen", plugins, &env).await
}

/// `trap` (hostile faults on it, and so on its whole batch) and the threats, in
/// one transaction so that the consumer reads them as one batch.
fn send(prefix: &str, conn: &mut redis::Connection) {
    let raw = palisade_streams::Keys::new(prefix).raw;
    let mut pipe = redis::pipe();
    pipe.atomic();
    for (i, content) in std::iter::once("trap").chain(THREATS).enumerate() {
        let mut e = palisade_core::Event::sample(content);
        e.event_id = format!("d-{i}");
        pipe.xadd(&raw, "*", &[("event", serde_json::to_string(&e).unwrap())]).ignore();
    }
    pipe.query::<()>(conn).unwrap();
}

/// Every prediction routed so far, in each output stream's order: (stream, prediction).
fn routed(prefix: &str, conn: &mut redis::Connection) -> Vec<(&'static str, Value)> {
    let keys = palisade_streams::Keys::new(prefix);
    let mut out = Vec::new();
    for (name, key) in [("reasoning_queue", &keys.reasoning), ("low_risk", &keys.low_risk)] {
        let reply: redis::streams::StreamRangeReply = conn.xrange_all(key).unwrap();
        for entry in reply.ids {
            out.push((name, serde_json::from_str(&entry.get::<String>("prediction").unwrap()).unwrap()));
        }
    }
    out
}

fn of<'a>(all: &'a [(&'static str, Value)], id: &str) -> Vec<&'a (&'static str, Value)> {
    all.iter().filter(|(_, p)| p["event"]["event_id"] == id).collect()
}

fn flagged(p: &Value, flag: &str) -> bool {
    p["flags"].as_array().unwrap().iter().any(|f| f == flag)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn degraded_events_are_screened_again_once_the_rule_is_back() {
    let prefix = unique_prefix();
    let dir = plugins(300);
    let screening = start(&dir, &prefix, "rescreen").await;
    let mut conn = redis::Client::open("redis://127.0.0.1:6379").unwrap().get_connection().unwrap();
    send(&prefix, &mut conn);

    // All four were in the batch hostile faulted on, so each is screened again
    // alone once hostile is back (300 ms): the trap first, which faults it again
    // (600 ms now), so the threats wait for the next round and are screened whole
    // then. The trap, after its third screening (MAX_DELIVERIES), goes for review.
    let queue = palisade_streams::Keys::new(&prefix).shards[0].rescreen.clone();
    wait_until(
        Duration::from_secs(30),
        || routed(&prefix, &mut conn).len() == 2 * (THREATS.len() + 1) && conn.xlen::<_, usize>(&queue).unwrap() == 0,
        "each event routed twice and the rescreen queue empty",
    );
    let all = routed(&prefix, &mut conn);
    for i in 1..=THREATS.len() {
        let both = of(&all, &format!("d-{i}"));
        let (first, second) = (&both[0].1, &both[1].1);
        assert!(flagged(first, "degraded") && first["degraded"] == serde_json::json!(["hostile"]), "{first}");
        assert!(!flagged(first, "rescreened"), "{first}");
        assert!(flagged(second, "rescreened") && !flagged(second, "degraded"), "{second}");
        assert_eq!(second["degraded"], serde_json::json!([]), "{second}");
        assert_eq!(second["category"], "VIOLENCE", "{second}");
    }
    // The trap: once to low_risk (no rule scored it), then for review.
    let trap = of(&all, "d-0");
    let (reviewed, first): (Vec<_>, Vec<_>) = trap.iter().copied().partition(|(_, p)| flagged(p, "rescreened"));
    assert_eq!((reviewed.len(), first.len()), (1, 1), "{trap:?}");
    let (stream, last) = reviewed[0];
    assert_eq!(*stream, "reasoning_queue", "{last}");
    assert!(flagged(last, "review") && flagged(last, "degraded"), "{last}");

    let metrics = reqwest::get(format!("{}/metrics", screening.base)).await.unwrap().text().await.unwrap();
    for (outcome, n) in [("queued", 4), ("rescreened", 3), ("requeued", 1), ("review", 1)] {
        let line = format!("palisade_screening_degraded_events_total{{outcome=\"{outcome}\"}} {n}");
        assert!(metrics.contains(&line), "{line} not in:\n{metrics}");
    }
    let log = screening.log_text();
    assert!(!log.contains("panicked") && !log.contains("failed; retrying"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_review_degraded_events_go_to_the_reasoning_queue_at_once() {
    let prefix = unique_prefix();
    let dir = plugins(60_000);
    let _screening = start(&dir, &prefix, "review").await;
    let mut conn = redis::Client::open("redis://127.0.0.1:6379").unwrap().get_connection().unwrap();
    send(&prefix, &mut conn);
    wait_until(Duration::from_secs(30), || routed(&prefix, &mut conn).len() == THREATS.len() + 1, "all routed");
    std::thread::sleep(Duration::from_millis(600)); // three claim rounds: nothing is screened again
    let all = routed(&prefix, &mut conn);
    assert_eq!(all.len(), THREATS.len() + 1, "each routed once: {all:?}");
    for (stream, p) in &all {
        assert!(flagged(p, "degraded") && flagged(p, "review"), "{p}");
        assert_eq!(*stream, "reasoning_queue", "{p}");
    }
    let queue = palisade_streams::Keys::new(&prefix).shards[0].rescreen.clone();
    assert_eq!(conn.xlen::<_, usize>(&queue).unwrap(), 0);
}
