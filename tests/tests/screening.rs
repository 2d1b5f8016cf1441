//! The screening service end to end, against the real Redis, real plugins:
//! ingested events are screened, routed with their prediction and acknowledged;
//! a backlog of overlapping batches is routed exactly once, also across a
//! graceful stop and a new consumer; a lost consumer group is recreated; a dead consumer's
//! entries are finished by another; poison entries are
//! dead-lettered; the synchronous routes answer JSON and the seed's form fields;
//! one message from many accounts is screened once per account and flagged a campaign.

use palisade_core::Event;
use palisade_tests::{Service, unique_prefix};
use redis::Commands;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};

type Fields = HashMap<String, String>;

fn read(conn: &mut redis::Connection, stream: &str) -> Vec<(String, Fields)> {
    let reply: redis::streams::StreamRangeReply = conn.xrange_all(stream).unwrap();
    reply
        .ids
        .into_iter()
        .map(|e| (e.id, e.map.into_iter().map(|(k, v)| (k, redis::from_redis_value(v).unwrap())).collect()))
        .collect()
}

fn pending(conn: &mut redis::Connection, stream: &str) -> u64 {
    let summary: (u64, Option<String>, Option<String>, redis::Value) =
        redis::cmd("XPENDING").arg(stream).arg("screening").query(conn).unwrap();
    summary.0
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < Duration::from_secs(15), "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn raw_event(id: &str, content: &str) -> String {
    let mut e = Event::sample(content);
    e.event_id = id.into();
    serde_json::to_string(&e).unwrap()
}

/// `n` benign events (ids `{tag}-0000`, …) queued under a fresh key prefix before
/// any consumer runs: the prefix, its raw stream, a connection, and the ids.
fn queued_backlog(tag: &str, n: usize) -> (String, String, redis::Connection, Vec<String>) {
    let prefix = unique_prefix();
    let raw = format!("{prefix}events:raw");
    let mut conn = redis::Client::open("redis://127.0.0.1:6379").unwrap().get_connection().unwrap();
    let ids: Vec<String> = (0..n).map(|i| format!("{tag}-{i:04}")).collect();
    let mut pipe = redis::pipe();
    for (i, id) in ids.iter().enumerate() {
        pipe.xadd(&raw, "*", &[("event_id", id.clone()), ("event", raw_event(id, ["hello", "see you soon"][i % 2]))])
            .ignore();
    }
    let _: () = pipe.query(&mut conn).unwrap();
    (prefix, raw, conn, ids)
}

/// The event ids routed to `stream`, sorted.
fn routed_ids(conn: &mut redis::Connection, stream: &str) -> Vec<String> {
    let mut ids: Vec<String> = read(conn, stream).into_iter().map(|(_, f)| f["event_id"].clone()).collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn an_ingested_event_is_screened_routed_and_acknowledged() {
    let s = Service::both(&[]).await;
    let http = reqwest::Client::new();
    for (id, content) in [("bad-1", "I will kill you, you worthless idiot"), ("ok-1", "see you at lunch tomorrow")] {
        let body = json!({"event_id": id, "event_type": "message", "platform": "discord", "user_id": "u", "author_id": id, "content": content});
        let r = http
            .post(format!("{}/v1/events/ingest", s.base))
            .header("api-key", "test-key")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    }
    let mut conn = s.redis();
    wait_until("both events routed", || {
        read(&mut conn, &s.keys.reasoning).len() + read(&mut conn, &s.keys.low_risk).len() == 2
    })
    .await;
    let high = read(&mut conn, &s.keys.reasoning);
    let low = read(&mut conn, &s.keys.low_risk);
    assert_eq!((high.len(), low.len()), (1, 1));
    assert_eq!(high[0].1["event_id"], "bad-1");
    assert_eq!(low[0].1["event_id"], "ok-1");
    let p: Value = serde_json::from_str(&high[0].1["prediction"]).unwrap();
    assert!(p["risk_score"].as_f64().unwrap() > 0.7, "{p}");
    assert_eq!(p["category"], "VIOLENCE");
    assert_eq!(p["event"]["content"], "I will kill you, you worthless idiot");
    assert!(p["explanation"].as_array().unwrap().iter().any(|h| h["plugin"] == "threats"), "{p}");
    assert!(p["plugin_versions"].as_array().unwrap().iter().any(|v| v == "threats@0.1.0"));
    assert!(p["flags"].as_array().unwrap().iter().any(|f| f == "high_risk"));
    let raw_ids: Vec<String> = read(&mut conn, &s.keys.raw).into_iter().map(|(id, _)| id).collect();
    assert!(raw_ids.contains(&high[0].1["source_id"]));
    assert_eq!(pending(&mut conn, &s.keys.raw), 0, "nothing left pending");
    let metrics = reqwest::get(format!("{}/metrics", s.screen_base)).await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"palisade_screening_events_total{destination="reasoning_queue"} 1"#), "{metrics}");
}

/// A copy-paste campaign is a signal, not a duplicate: one message (in varying case
/// and punctuation) from three accounts is three screened events, the third
/// flagged `campaign` with `campaign_accounts: 3`; one account's retry is still a
/// duplicate; a short text is never counted.
#[tokio::test]
async fn one_message_from_many_accounts_is_screened_for_each_and_flagged_a_campaign() {
    let s = Service::both(&[]).await;
    let http = reqwest::Client::new();
    let copies = [
        ("c-1", "acct-1", "Free crypto giveaway, follow my page to claim!"),
        ("c-1", "acct-1", "Free crypto giveaway, follow my page to claim!"), // the retry
        ("c-2", "acct-2", "FREE crypto giveaway -- follow my page to claim"),
        ("c-3", "acct-3", "free crypto giveaway follow my page to claim!!"),
        ("s-1", "acct-1", "ok thanks!"),
        ("s-2", "acct-2", "ok thanks!"),
        ("s-3", "acct-3", "ok thanks!"),
    ];
    let mut statuses = Vec::new();
    for (id, account, content) in copies {
        let body =
            json!({"event_id": id, "event_type": "message", "platform": "web", "user_id": account, "content": content});
        let r = http.post(format!("{}/v1/events/ingest", s.base)).header("api-key", "test-key").json(&body).send();
        statuses.push(r.await.unwrap().status().as_u16());
    }
    assert_eq!(statuses, [202, 200, 202, 202, 202, 202, 202], "the retry is a duplicate (200), the rest accepted");
    let mut conn = s.redis();
    let routed = |conn: &mut redis::Connection| {
        let mut all = read(conn, &s.keys.reasoning);
        all.extend(read(conn, &s.keys.low_risk));
        all.into_iter().map(|(_, f)| serde_json::from_str::<Value>(&f["prediction"]).unwrap()).collect::<Vec<_>>()
    };
    wait_until("six events routed", || routed(&mut conn).len() == 6).await;
    let by_id: HashMap<String, Value> =
        routed(&mut conn).into_iter().map(|p| (p["event"]["event_id"].as_str().unwrap().to_string(), p)).collect();
    let campaign = |id: &str| {
        let p = &by_id[id];
        (p["campaign_accounts"].as_u64(), p["flags"].as_array().unwrap().iter().any(|f| f == "campaign"))
    };
    assert_eq!(
        [campaign("c-1"), campaign("c-2"), campaign("c-3")],
        [(None, false), (Some(2), false), (Some(3), true)],
        "{by_id:?}"
    );
    for id in ["s-1", "s-2", "s-3"] {
        assert_eq!(campaign(id), (None, false), "a short text is not counted: {}", by_id[id]);
    }
}

/// A consumer that read 300 entries and died: another takes them all over within
/// CLAIM_IDLE_MS + CLAIM_INTERVAL_MS + the time to screen them (not 100 per round).
#[tokio::test]
async fn entries_a_dead_consumer_left_pending_are_finished_by_another() {
    let (prefix, raw, mut conn, want) = queued_backlog("d", 300);
    // A consumer reads the whole backlog and dies before acknowledging any of it.
    let _: () = redis::cmd("XGROUP").arg("CREATE").arg(&raw).arg("screening").arg("0").query(&mut conn).unwrap();
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("screening")
        .arg("dead")
        .arg("COUNT")
        .arg(1000)
        .arg("STREAMS")
        .arg(&raw)
        .arg(">")
        .query(&mut conn)
        .unwrap();
    assert_eq!(pending(&mut conn, &raw), 300);
    // Rules only: this measures the takeover, not the model.
    let overrides = [
        ("REDIS_KEY_PREFIX", prefix.as_str()),
        ("CLAIM_IDLE_MS", "1000"),
        ("CLAIM_INTERVAL_MS", "250"),
        ("SCREENING_MODEL", "none"),
    ];
    let s = Service::both(&overrides).await;
    let started = Instant::now();
    wait_until("the orphaned entries routed", || read(&mut conn, &s.keys.low_risk).len() == 300).await;
    let took = started.elapsed();
    eprintln!("300 orphaned entries taken over and routed {took:?} after the consumer started");
    wait_until("nothing pending", || pending(&mut conn, &raw) == 0).await;
    assert_eq!(routed_ids(&mut conn, &s.keys.low_risk), want, "each taken over and routed once");
    // At most CLAIM_IDLE_MS + CLAIM_INTERVAL_MS, plus a second to screen and route them.
    assert!(took < Duration::from_millis(2250), "300 orphaned entries took {took:?}");
}

#[tokio::test]
async fn a_backlog_of_many_batches_is_routed_exactly_once() {
    // Batches overlap (one screened while the one before is routed): none may be lost or routed twice.
    let (prefix, raw, mut conn, want) = queued_backlog("b", 450);
    let s = Service::both(&[("REDIS_KEY_PREFIX", &prefix), ("BATCH_SIZE", "100")]).await;
    wait_until("the backlog routed", || read(&mut conn, &s.keys.low_risk).len() >= 450).await;
    wait_until("nothing pending", || pending(&mut conn, &raw) == 0).await;
    tokio::time::sleep(Duration::from_millis(300)).await; // a duplicate would land by now
    assert_eq!(routed_ids(&mut conn, &s.keys.low_risk), want, "every event routed once");
    assert!(read(&mut conn, &s.keys.reasoning).is_empty());
}

#[tokio::test]
async fn a_stopped_consumer_leaves_nothing_pending_and_the_next_routes_the_rest() {
    // Shutdown finishes what the consumer holds (the batch in flight, the one read ahead):
    // nothing it read stays pending; a consumer started later routes the rest, once each.
    let (prefix, raw, mut conn, want) = queued_backlog("g", 5000);
    let overrides = [("REDIS_KEY_PREFIX", prefix.as_str()), ("BATCH_SIZE", "20")];
    let first = Service::both(&overrides).await;
    wait_until("some batches routed", || read(&mut conn, &first.keys.low_risk).len() >= 200).await;
    first.stop.send(true).unwrap();
    let mut routed = 0;
    wait_until("the consumer stopped", || {
        std::thread::sleep(Duration::from_millis(300));
        let now = read(&mut conn, &first.keys.low_risk).len();
        std::mem::replace(&mut routed, now) == now
    })
    .await;
    assert!(routed < 5000, "stopped before the backlog was done (else this proves nothing)");
    assert_eq!(pending(&mut conn, &raw), 0, "a stopped consumer leaves nothing pending");
    let _second = Service::both(&overrides).await;
    wait_until("the rest routed", || read(&mut conn, &first.keys.low_risk).len() >= 5000).await;
    wait_until("nothing pending", || pending(&mut conn, &raw) == 0).await;
    tokio::time::sleep(Duration::from_millis(300)).await; // a duplicate would land by now
    assert_eq!(routed_ids(&mut conn, &first.keys.low_risk), want, "every event routed once across the two consumers");
}

#[tokio::test]
async fn a_consumer_group_lost_with_its_stream_is_recreated() {
    // As after a Redis restart without persistence: the stream and its group are gone.
    let s = Service::both(&[]).await;
    let mut conn = s.redis();
    let _: String = conn.xadd(&s.keys.raw, "*", &[("event", raw_event("before", "hello"))]).unwrap();
    wait_until("the first event routed", || read(&mut conn, &s.keys.low_risk).len() == 1).await;
    let _: () = conn.del(&s.keys.raw).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _: String = conn.xadd(&s.keys.raw, "*", &[("event", raw_event("after", "hello"))]).unwrap();
    let lost = Instant::now();
    wait_until("the event after the loss routed", || read(&mut conn, &s.keys.low_risk).len() == 2).await;
    assert!(lost.elapsed() < Duration::from_secs(3), "recovered only after {:?}", lost.elapsed());
    wait_until("nothing pending", || pending(&mut conn, &s.keys.raw) == 0).await;
}

#[tokio::test]
async fn poison_entries_land_in_the_dead_letter_stream_with_the_reason() {
    let prefix = unique_prefix();
    let raw = format!("{prefix}events:raw");
    let mut conn = redis::Client::open("redis://127.0.0.1:6379").unwrap().get_connection().unwrap();
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&raw)
        .arg("screening")
        .arg("0")
        .arg("MKSTREAM")
        .query(&mut conn)
        .unwrap();
    // One entry that keeps failing: delivered 3 times to a consumer that crashes each time.
    let exhausted: String =
        conn.xadd(&raw, "*", &[("event_id", "p-2"), ("event", raw_event("p-2", "fine text").as_str())]).unwrap();
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("screening")
        .arg("crashy")
        .arg("STREAMS")
        .arg(&raw)
        .arg(">")
        .query(&mut conn)
        .unwrap();
    for _ in 0..2 {
        let _: redis::Value = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg("screening")
            .arg("crashy")
            .arg("STREAMS")
            .arg(&raw)
            .arg("0")
            .query(&mut conn)
            .unwrap();
    }
    // And one that is not an event at all.
    let unparseable: String = conn.xadd(&raw, "*", &[("event_id", "p-1"), ("event", "{not json")]).unwrap();
    let s = Service::both(&[
        ("REDIS_KEY_PREFIX", &prefix),
        ("CLAIM_IDLE_MS", "300"),
        ("CLAIM_INTERVAL_MS", "100"),
        ("MAX_DELIVERIES", "3"),
    ])
    .await;
    wait_until("both dead-lettered", || read(&mut conn, &s.keys.dead_letter).len() == 2).await;
    let dead: HashMap<String, Fields> =
        read(&mut conn, &s.keys.dead_letter).into_iter().map(|(_, f)| (f["source_id"].clone(), f)).collect();
    assert!(dead[&unparseable]["reason"].starts_with("unparseable event"), "{:?}", dead[&unparseable]);
    assert!(dead[&exhausted]["reason"].contains("deliveries"), "{:?}", dead[&exhausted]);
    assert!(dead[&exhausted]["event"].contains("fine text"), "the original entry is kept");
    wait_until("nothing pending", || pending(&mut conn, &raw) == 0).await;
    assert!(read(&mut conn, &s.keys.low_risk).is_empty() && read(&mut conn, &s.keys.reasoning).is_empty());
}

#[tokio::test]
async fn synchronous_screening_answers_json_form_and_batches() {
    let s = Service::both(&[]).await;
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", s.screen_base);
    let r = http.post(url("/v1/risk/screen")).header("api-key", "test-key")
        .json(&json!({"event_id": "h-1", "event_type": "message", "platform": "web", "user_id": "u", "content": "WINNER!! claim your prize at bit.ly/x"}))
        .send().await.unwrap();
    assert_eq!(r.status(), 200);
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["category"], "SPAM");
    assert!(p["risk_score"].as_f64().unwrap() > 0.7, "{p}");
    let r = http
        .post(url("/v1/risk/screen"))
        .header("api-key", "test-key")
        .form(&[("event_id", "f-1"), ("content", "you are a pathetic loser")])
        .send()
        .await
        .unwrap();
    let p: Value = r.json().await.unwrap();
    assert_eq!((p["event"]["event_id"].as_str(), p["category"].as_str()), (Some("f-1"), Some("TARGETED_HARASSMENT")));
    let r = http.post(url("/v1/risk/screen-batch")).header("api-key", "test-key")
        .json(&json!({"events": [
            {"event_id": "b-1", "event_type": "message", "platform": "web", "user_id": "u", "content": "lovely weather today"},
            {"event_id": "b-2", "event_type": "message", "platform": "web", "user_id": "u", "content": "send nudes now"}
        ]})).send().await.unwrap();
    let b: Value = r.json().await.unwrap();
    let cats: Vec<&str> =
        b["predictions"].as_array().unwrap().iter().map(|p| p["category"].as_str().unwrap()).collect();
    assert_eq!(cats, ["LOW_RISK", "SEXUAL"]);
    let r = http.post(url("/v1/risk/screen")).json(&json!({})).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r =
        http.post(url("/v1/risk/screen")).header("api-key", "test-key").form(&[("content", "x")]).send().await.unwrap();
    assert_eq!(r.status(), 422);
}

#[tokio::test]
async fn embeddings_are_cached_in_redis_with_a_ttl() {
    let bank = palisade_tests::bank(&[("x-1", "SPAM", "win a free prize now"), ("x-2", "LOW_RISK", "see you soon")]);
    let s = Service::both(&[
        ("EMBEDDING_CACHE_TTL", "600"),
        ("VECTOR_DIR", bank.path().to_str().unwrap()),
        ("CASCADE", "off"), // every event reaches the embedding stage
    ])
    .await;
    let http = reqwest::Client::new();
    let body = json!({"events": [
        {"event_id": "c-1", "event_type": "message", "platform": "web", "user_id": "u", "content": "cache me if you can"},
        {"event_id": "c-2", "event_type": "message", "platform": "web", "user_id": "u", "content": "cache me if you can"}
    ]});
    let mut answers = Vec::new();
    for _ in 0..2 {
        let r = http
            .post(format!("{}/v1/risk/screen-batch", s.screen_base))
            .header("api-key", "test-key")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        answers.push(r.json::<Value>().await.unwrap());
    }
    // The cached vector gives the same neighbours as the fresh one.
    assert_eq!(answers[0]["predictions"][0]["similar"], answers[1]["predictions"][0]["similar"]);
    let metrics = reqwest::get(format!("{}/metrics", s.screen_base)).await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"palisade_screening_embedding_cache_lookups_total{result="miss"} 2"#), "{metrics}");
    assert!(metrics.contains(r#"palisade_screening_embedding_cache_lookups_total{result="hit"} 2"#), "{metrics}");
    let mut conn = s.redis();
    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{}*", s.keys.embedding_cache)).query(&mut conn).unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(keys[0].contains("all-MiniLM-L6-v2"));
    let ttl: i64 = conn.ttl(&keys[0]).unwrap();
    assert!((1..=600).contains(&ttl), "{ttl}");
    let bytes: Vec<u8> = conn.get(&keys[0]).unwrap();
    assert_eq!(bytes.len(), 384 * 4);
}

#[tokio::test]
async fn similar_past_events_are_found_and_survive_a_restart() {
    let vectors = tempfile::tempdir().unwrap();
    let dir = vectors.path().to_str().unwrap();
    let screen_with = |s: &Service, key: &'static str, id: &str, content: &str| {
        let (url, body) = (
            format!("{}/v1/risk/screen", s.screen_base),
            json!({"event_id": id, "event_type": "message", "platform": "web", "user_id": "u", "content": content}),
        );
        async move {
            let r = reqwest::Client::new().post(url).header("api-key", key).json(&body).send().await.unwrap();
            r.json::<Value>().await.unwrap()
        }
    };
    let screen = |s: &Service, id: &str, content: &str| screen_with(s, "test-key", id, content);
    {
        let keys = [("API_KEYS", "test-key,reviewer-key"), ("SIMILAR_EVENTS_TEXT_KEYS", "reviewer-key")];
        let s = Service::both(&[("VECTOR_DIR", dir), ("CASCADE", "off"), keys[0], keys[1]]).await;
        let first = screen(&s, "p-1", "cheap designer watches, buy now").await;
        assert!(first["similar_events"].as_array().unwrap().is_empty(), "nothing screened before");
        screen(&s, "p-2", "how do I reset my password?").await;
        let third = screen(&s, "p-3", "buy cheap designer watches today").await;
        assert_eq!(third["similar_events"][0]["id"], "p-1", "{third}");
        // Past events are other users' messages: no text unless the key may read it.
        assert!(third["similar_events"][0].get("text").is_none(), "{third}");
        assert!(!third.to_string().contains("cheap designer watches, buy now"), "{third}");
        // (p-2 again: the same id and text, so the store is unchanged.)
        let reviewer = screen_with(&s, "reviewer-key", "p-2", "how do I reset my password?").await;
        let past = reviewer["similar_events"].as_array().unwrap();
        let p1 = past.iter().find(|n| n["id"] == "p-1").unwrap_or_else(|| panic!("{reviewer}"));
        assert_eq!(p1["text"], "cheap designer watches, buy now", "{reviewer}");
        let _ = s.stop.send(true);
    }
    // A new process over the same directory remembers them.
    let s = Service::both(&[("VECTOR_DIR", dir), ("CASCADE", "off")]).await;
    let again = screen(&s, "p-4", "designer watches for cheap, buy").await;
    let ids: Vec<&str> =
        again["similar_events"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap()).collect();
    assert_eq!(&ids[..2], ["p-1", "p-3"], "{again}");
    assert!(again["similar_events"][0]["similarity"].as_f64().unwrap() > 0.7);
}

#[tokio::test]
async fn past_events_beyond_the_window_are_forgotten() {
    let vectors = tempfile::tempdir().unwrap();
    let s = Service::both(&[
        ("VECTOR_DIR", vectors.path().to_str().unwrap()),
        ("SIMILAR_EVENTS_MAX", "4"),
        ("CASCADE", "off"),
    ])
    .await;
    let http = reqwest::Client::new();
    let mut last = Value::Null;
    for (id, content) in [
        ("w-1", "cheap designer watches, buy now"),
        ("w-2", "how do I reset my password?"),
        ("w-3", "what time is the meeting"),
        ("w-4", "lunch at noon?"),
        ("w-5", "buy cheap designer watches today"),
    ] {
        let body =
            json!({"event_id": id, "event_type": "message", "platform": "web", "user_id": "u", "content": content});
        let r = http.post(format!("{}/v1/risk/screen", s.screen_base)).header("api-key", "test-key").json(&body);
        last = r.send().await.unwrap().json().await.unwrap();
    }
    // A window of 4 keeps two segments of 2: w-1 and w-2 went when w-4 filled the newer one.
    let ids: Vec<&str> = last["similar_events"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 2, "{last}");
    assert!(!ids.contains(&"w-1") && !ids.contains(&"w-2"), "{last}");
    let mut files: Vec<String> =
        std::fs::read_dir(vectors.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    files.sort();
    assert_eq!(files, ["events.1.vec", "events.2.vec"], "the retired segment's file is deleted");
}

#[tokio::test]
async fn the_fast_path_lets_decisive_rules_skip_the_model() {
    let bank = palisade_tests::bank(&[("x-1", "SPAM", "win a free prize now"), ("x-2", "LOW_RISK", "see you soon")]);
    let s = Service::both(&[
        ("SCREENING_FAST_PATH", "0.9"),
        ("VECTOR_DIR", bank.path().to_str().unwrap()),
        ("SCORING", "weighted"), // the fast path belongs to the weighted scoring; the classifier has the cascade
    ])
    .await;
    let body = json!({"events": [
        {"event_id": "fp-1", "event_type": "message", "platform": "web", "user_id": "u", "content": "I will kill you, you worthless stupid idiot"},
        {"event_id": "fp-2", "event_type": "message", "platform": "web", "user_id": "u", "content": "see you at lunch tomorrow"}
    ]});
    let r = reqwest::Client::new()
        .post(format!("{}/v1/risk/screen-batch", s.screen_base))
        .header("api-key", "test-key")
        .json(&body)
        .send()
        .await
        .unwrap();
    let b: Value = r.json().await.unwrap();
    let (fast, slow) = (&b["predictions"][0], &b["predictions"][1]);
    assert!(fast["flags"].as_array().unwrap().contains(&json!("fast_path")), "{fast}");
    assert!(fast["embedding_score"].is_null() && fast["similar"].as_array().unwrap().is_empty(), "{fast}");
    assert_eq!((fast["high_risk"].as_bool(), fast["category"].as_str()), (Some(true), Some("VIOLENCE")));
    assert!(slow["embedding_score"].is_number() && !slow["similar"].as_array().unwrap().is_empty(), "{slow}");
    assert!(!slow["flags"].as_array().unwrap().contains(&json!("fast_path")));
    let metrics = reqwest::get(format!("{}/metrics", s.screen_base)).await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains(r#"palisade_screening_embedding_cache_lookups_total{result="miss"} 1"#),
        "only one text was embedded"
    );
}
