//! Retention of the event streams on the real Redis: under a sustained load with
//! `STREAM_RETENTION_SECONDS=1`, `events:raw` and the outputs stay within the
//! rate × the window, and an entry another consumer group has not acknowledged
//! (or not been delivered) is never trimmed, however old.

use palisade_tests::Service;
use redis::Commands;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn ingest(s: &Service, from: usize, n: usize) {
    let events: Vec<Value> = (from..from + n)
        .map(|i| {
            json!({"event_id": format!("t-{i}"), "event_type": "message", "platform": "web",
            "user_id": format!("u-{i}"), "content": format!("retention message {i}")})
        })
        .collect();
    assert_eq!(s.ingest_batch(&events).await.status(), 202);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_stay_within_the_window_and_pending_entries_are_never_trimmed() {
    let s =
        Service::both(&[("SCREENING_MODEL", "none"), ("STREAM_RETENTION_SECONDS", "1"), ("CLAIM_INTERVAL_MS", "200")])
            .await;
    let mut redis = s.redis();
    // 4 s at about 1,000 events/s (fewer on a slower machine).
    let (mut sent, mut most) = (0, 0usize);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(4) {
        ingest(&s, sent, 100).await;
        sent += 100;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let len: usize = redis.xlen(&s.keys.raw).unwrap();
        most = most.max(len);
    }
    let outputs: usize =
        redis.xlen::<_, usize>(&s.keys.low_risk).unwrap() + redis.xlen::<_, usize>(&s.keys.reasoning).unwrap();
    // The window holds about 1.2 s of a 4 s load (plus one radix-tree node).
    assert!(sent >= 1_000, "the load ran ({sent} sent)");
    assert!(most < sent * 3 / 4, "events:raw held up to {most} of {sent}");
    assert!(outputs < sent * 3 / 4, "the outputs hold {outputs} of {sent}");

    // Another group (a reader of the stream) takes five entries and acknowledges none.
    let _: () =
        redis::cmd("XGROUP").arg("CREATE").arg(&s.keys.raw).arg("slow-reader").arg("$").query(&mut redis).unwrap();
    ingest(&s, sent, 20).await;
    let read: redis::streams::StreamReadReply = redis
        .xread_options(
            &[&s.keys.raw],
            &[">"],
            &redis::streams::StreamReadOptions::default().group("slow-reader", "r").count(5),
        )
        .unwrap();
    let held: Vec<String> = read.keys[0].ids.iter().map(|e| e.id.clone()).collect();
    assert_eq!(held.len(), 5);
    tokio::time::sleep(Duration::from_millis(2_500)).await; // the window has passed twice
    for id in &held {
        let still: redis::streams::StreamRangeReply = redis.xrange(&s.keys.raw, id, id).unwrap();
        assert_eq!(still.ids.len(), 1, "pending entry {id} was trimmed");
    }
    let after: redis::streams::StreamRangeReply = redis.xrange_count(&s.keys.raw, &held[4], "+", 100).unwrap();
    assert_eq!(after.ids.len(), 16, "the entries after it (not delivered to that group) are kept too");
}
