//! Palisade on a Redis Cluster of the test's own (spare ports, `redis-cli
//! --cluster create`): ingest and screening processes in one consumer group over
//! `STREAM_SHARDS` hash-tagged shards; a master killed and a shard's slot moved
//! to another master under load.
//!
//! The first test runs `palisade serve` processes; the others run the services
//! in this process (each with its own core, connections and consumer name), the
//! way `palisade serve` runs them, to reach their keys and stop them.

use palisade_tests::{OwnCluster, PluginDir, ServeProcess, Service, shipped, unique_prefix, wait_until};
use redis::Commands;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

fn event(id: &str, content: &str) -> Value {
    json!({"event_id": id, "event_type": "message", "platform": "web", "user_id": "u-1", "content": content})
}

async fn post_batch(base: &str, events: &[Value]) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{base}/v1/events/ingest-batch"))
        .header("api-key", "test-key")
        .json(&json!({ "events": events }))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// Event id → how many times it was routed, over every shard's output streams.
fn routed(conn: &mut redis::cluster::ClusterConnection, keys: &palisade_streams::Keys) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for shard in &keys.shards {
        for stream in [&shard.reasoning, &shard.low_risk] {
            let reply: redis::streams::StreamRangeReply = conn.xrange_all(stream).unwrap();
            for entry in reply.ids {
                let id: String = entry.get("event_id").unwrap();
                *seen.entry(id).or_default() += 1;
            }
        }
    }
    seen
}

/// Services sharing one cluster, prefix and shard count, each with its own consumer name.
async fn services(cluster: &OwnCluster, prefix: &str, names: &[&str], extra: &[(&str, &str)]) -> Vec<Service> {
    let nodes = cluster.nodes();
    let mut out = Vec::new();
    for name in names {
        let mut overrides = vec![
            ("REDIS_CLUSTER_NODES", nodes.as_str()),
            ("STREAM_SHARDS", "3"),
            ("REDIS_KEY_PREFIX", prefix),
            ("SCREENING_MODEL", "none"),
            ("CONSUMER_NAME", name),
        ];
        overrides.extend_from_slice(extra);
        out.push(Service::both(&overrides).await);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_ingest_and_three_screening_processes_route_every_accepted_event_once_across_shards() {
    let cluster = OwnCluster::start(3, 0);
    let prefix = unique_prefix();
    let nodes = cluster.nodes();
    let plugins = PluginDir::new();
    for p in shipped() {
        plugins.install(&p);
    }
    let common = [
        ("REDIS_CLUSTER_NODES", nodes.as_str()),
        ("STREAM_SHARDS", "3"),
        ("REDIS_KEY_PREFIX", prefix.as_str()),
        ("SCREENING_MODEL", "none"),
    ];
    let mut ingest = Vec::new();
    for _ in 0..2 {
        ingest.push(ServeProcess::start(env!("CARGO_BIN_EXE_palisade"), "ingest", &plugins, &common).await);
    }
    let mut screening = Vec::new();
    for name in ["screen-a", "screen-b", "screen-c"] {
        let env = [&common[..], &[("CONSUMER_NAME", name)]].concat();
        screening.push(ServeProcess::start(env!("CARGO_BIN_EXE_palisade"), "screen", &plugins, &env).await);
    }
    let keys = palisade_streams::Keys::layout(&prefix, 3, true);

    // The three shards live on three different masters.
    let masters: std::collections::BTreeSet<u16> = keys.shards.iter().map(|k| cluster.master_of(&k.raw)).collect();
    assert_eq!(masters.len(), 3, "{:?}", keys.shards);

    // 600 events in batches of 50, alternating between two ingest services; then the
    // first 100 again through the other service: each is caught as a duplicate.
    let events: Vec<Value> =
        (0..600).map(|i| event(&format!("e{i}"), &format!("message number {i} for the cluster"))).collect();
    let mut accepted = 0;
    for (n, batch) in events.chunks(50).enumerate() {
        let (status, body) = post_batch(&ingest[n % 2].base, batch).await;
        assert_eq!(status, 202, "{body}");
        accepted += body["accepted"].as_u64().unwrap();
    }
    assert_eq!(accepted, 600);
    for (n, batch) in events[..100].chunks(50).enumerate() {
        let (status, body) = post_batch(&ingest[1 - n % 2].base, batch).await;
        // Nothing new was accepted: 200, not 202.
        assert_eq!(
            (status, body["accepted"].as_u64(), body["duplicates"].as_u64()),
            (200, Some(0), Some(50)),
            "{body}"
        );
    }

    // Every accepted event routed exactly once, over all shards, by all three consumers.
    let mut conn = cluster.conn();
    wait_until(Duration::from_secs(30), || routed(&mut conn, &keys).len() == 600, "600 events routed");
    std::thread::sleep(Duration::from_millis(500)); // a second routing would land by now
    let seen = routed(&mut conn, &keys);
    assert!(
        seen.len() == 600 && seen.values().all(|&n| n == 1),
        "routed twice: {:?}",
        seen.iter().filter(|e| *e.1 > 1).collect::<Vec<_>>()
    );
    let mut consumers = std::collections::BTreeSet::new();
    for shard in &keys.shards {
        let len: usize = conn.xlen(&shard.raw).unwrap();
        assert!(len > 100, "{} holds {len} of 600: the shards share the load", shard.raw);
        let info: redis::streams::StreamInfoConsumersReply =
            conn.xinfo_consumers(&shard.raw, palisade_streams::SCREENING_GROUP).unwrap();
        consumers.extend(info.consumers.into_iter().map(|c| c.name));
        let pending: redis::streams::StreamPendingReply =
            conn.xpending(&shard.raw, palisade_streams::SCREENING_GROUP).unwrap();
        assert_eq!(pending.count(), 0, "{} has entries pending", shard.raw);
    }
    assert_eq!(consumers.len(), 3, "all three processes read every shard: {consumers:?}");
}

async fn queue_depth(s: &Service) -> u64 {
    let r = reqwest::Client::new().get(format!("{}/v1/metrics", s.base)).header("api-key", "test-key").send().await;
    r.unwrap().json::<Value>().await.unwrap()["queue_depth"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_service_screens_only_its_shards_and_the_backlog_sums_the_others() {
    let cluster = OwnCluster::start(3, 0);
    let prefix = unique_prefix();
    let first = services(&cluster, &prefix, &["shard-0"], &[("SCREENING_SHARDS", "0")]).await.remove(0);
    let keys = first.keys.clone();
    let events: Vec<Value> = (0..300).map(|i| event(&format!("s{i}"), &format!("sharded message {i}"))).collect();
    for batch in events.chunks(100) {
        assert_eq!(post_batch(&first.base, batch).await.0, 202);
    }
    let mut conn = cluster.conn();
    let lens: Vec<usize> = keys.shards.iter().map(|k| conn.xlen(&k.raw).unwrap()).collect();
    assert_eq!(lens.iter().sum::<usize>(), 300, "{lens:?}");
    wait_until(Duration::from_secs(20), || routed(&mut conn, &keys).len() == lens[0], "shard 0 routed");
    // Shards 1 and 2 wait: ingest's backlog (backpressure, /v1/metrics) counts them.
    let mut depth = 0;
    for _ in 0..50 {
        depth = queue_depth(&first).await;
        if depth == (lens[1] + lens[2]) as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(depth, (lens[1] + lens[2]) as u64, "the backlog is the unscreened shards' {lens:?}");
    // A second service takes the other two shards.
    let _rest = services(&cluster, &prefix, &["shards-1-2"], &[("SCREENING_SHARDS", "1,2")]).await;
    wait_until(Duration::from_secs(20), || routed(&mut conn, &keys).len() == 300, "all 300 routed");
    assert!(routed(&mut conn, &keys).values().all(|&n| n == 1));

    // A backtest job over `events:raw` reads every shard of it on the cluster,
    // sharing a limit between them.
    let manifest = palisade_tests::set_key(&palisade_tests::manifest("threats"), "weight", "0.1");
    let shadow = first.plugins.path().join("shadow");
    palisade_plugins::install::install(&first.plugins.runtime, &shadow, &palisade_tests::wasm("threats"), &manifest)
        .unwrap();
    assert_eq!(first.admin(reqwest::Method::POST, "/v1/admin/shadow/reload", None).await.0, 200);
    for (limit, compared) in [(None, 300), (Some(100), 100)] {
        let stream = json!({"name": "events:raw", "limit": limit});
        let job =
            first.backtest_job(json!({"candidate": {"kind": "plugin", "name": "threats"}, "stream": stream})).await;
        assert_eq!(job["result"]["comparison"]["compared"], compared, "{job}");
        let streams: Vec<&str> =
            job["result"]["streams"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
        assert_eq!(streams, keys.shards.iter().map(|k| k.raw.as_str()).collect::<Vec<_>>());
    }
}

/// What [`load_while`] saw: event ids answered 202 accepted, how many of them
/// were sent after the disruption had returned, requests not answered 202 by
/// status and error code, and what the disruption returned.
struct Load<T> {
    accepted: Vec<String>,
    accepted_after: usize,
    refused: BTreeMap<String, usize>,
    disruption: T,
}

/// Load two ingest services with batches of 20 for `secs` seconds while
/// `disrupt` runs on a thread of its own from the first second on (and until it
/// returns). Counts depend on the machine's speed (a loaded CI box accepts a
/// tenth of what an idle one does); the tests assert what a user would notice:
/// nothing answered is lost.
async fn load_while<T: Send + 'static>(
    s: &[Service],
    secs: u64,
    disrupt: impl FnOnce() -> T + Send + 'static,
) -> Load<T> {
    let disruption = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(1));
        disrupt()
    });
    let started = std::time::Instant::now();
    let (mut accepted, mut refused) = (Vec::new(), BTreeMap::new());
    let mut accepted_after = 0;
    let mut n = 0;
    loop {
        let finished = disruption.is_finished();
        if started.elapsed() >= Duration::from_secs(secs) && finished {
            break;
        }
        let batch: Vec<Value> = (n..n + 20).map(|i| event(&format!("f{i}"), &format!("loaded message {i}"))).collect();
        n += 20;
        let (status, body) = post_batch(&s[(n / 20) % 2].base, &batch).await;
        if status != 202 {
            *refused.entry(format!("{status} {}", body["error"].as_str().unwrap_or("?"))).or_default() += 1;
            continue;
        }
        for item in body["items"].as_array().unwrap() {
            if item["status"] == "accepted" {
                accepted.push(item["event_id"].as_str().unwrap().to_string());
                accepted_after += usize::from(finished);
            }
        }
    }
    Load { accepted, accepted_after, refused, disruption: disruption.join().unwrap() }
}

/// Event ids that reached an output stream or the dead letters, over every shard.
fn routed_or_dead(
    conn: &mut redis::cluster::ClusterConnection,
    keys: &palisade_streams::Keys,
) -> std::collections::HashSet<String> {
    let mut out: std::collections::HashSet<String> = routed(conn, keys).into_keys().collect();
    for shard in &keys.shards {
        let reply: redis::streams::StreamRangeReply = conn.xrange_all(&shard.dead_letter).unwrap();
        for entry in reply.ids {
            let event: String = entry.get("event").unwrap_or_default();
            if let Ok(e) = serde_json::from_str::<Value>(&event) {
                out.insert(e["event_id"].as_str().unwrap_or_default().to_string());
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_wait_replicas_a_master_killed_under_load_loses_no_answered_event() {
    let cluster = std::sync::Arc::new(OwnCluster::start(3, 1));
    let prefix = unique_prefix();
    let extra = [("REDIS_WAIT_REPLICAS", "1"), ("CLAIM_IDLE_MS", "1000"), ("CLAIM_INTERVAL_MS", "250")];
    let s = services(&cluster, &prefix, &["fail-a", "fail-b"], &extra).await;
    let keys = s[0].keys.clone();
    let victim = cluster.master_of(&keys.shards[0].raw);
    let killer = cluster.clone();
    let Load { accepted, accepted_after, refused, .. } = load_while(&s, 6, move || killer.kill(victim)).await;
    cluster.wait_ok();
    eprintln!(
        "{} events answered accepted ({accepted_after} after the kill); refused during the failover: {refused:?}",
        accepted.len()
    );
    assert!(accepted.len() > accepted_after, "the load ran before the kill");
    let mut conn = cluster.conn();
    let missing = |conn: &mut redis::cluster::ClusterConnection| {
        let done = routed_or_dead(conn, &keys);
        accepted.iter().filter(|id| !done.contains(*id)).count()
    };
    wait_until(Duration::from_secs(60), || missing(&mut conn) == 0, "every answered event routed or dead-lettered");
    for service in &s {
        service.stop.send(true).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shard_moved_to_another_master_under_load_loses_nothing_and_needs_no_restart() {
    let cluster = std::sync::Arc::new(OwnCluster::start(3, 0));
    let prefix = unique_prefix();
    let extra = [("CLAIM_IDLE_MS", "1000"), ("CLAIM_INTERVAL_MS", "250")];
    let s = services(&cluster, &prefix, &["move-a", "move-b"], &extra).await;
    let keys = s[0].keys.clone();
    let slot = palisade_streams::slot(&keys.shards[0].raw);
    let from = cluster.master_of_slot(slot);
    let to = *cluster.ports.iter().find(|&&p| p != from).unwrap();
    // Shard 0's stream, outputs and dedup keys move 20 keys at a time while both
    // ingest services keep producing to it and the consumers keep reading it.
    let mover = cluster.clone();
    let Load { accepted, accepted_after, refused, disruption: moved } =
        load_while(&s, 4, move || mover.move_slot(slot, to, 20, Duration::from_millis(5))).await;
    eprintln!(
        "{} events answered accepted ({accepted_after} after the move); refused while {moved} keys moved: {refused:?}",
        accepted.len()
    );
    assert_eq!(cluster.master_of(&keys.shards[0].raw), to, "the slot moved");
    let while_moving = accepted.len() - accepted_after;
    assert!(moved > 100 && while_moving > 0, "the load ran while {moved} keys moved: {while_moving} accepted");

    // Nothing answered is lost, nothing is routed twice.
    let mut conn = cluster.conn();
    let missing = |conn: &mut redis::cluster::ClusterConnection| {
        let done = routed_or_dead(conn, &keys);
        accepted.iter().filter(|id| !done.contains(*id)).count()
    };
    wait_until(Duration::from_secs(60), || missing(&mut conn) == 0, "every answered event routed or dead-lettered");
    let twice: Vec<_> = routed(&mut conn, &keys).into_iter().filter(|(_, n)| *n > 1).collect();
    assert!(twice.is_empty(), "routed twice: {twice:?}");

    // The same services, not restarted, produce to and screen the moved shard.
    let before: usize = conn.xlen(&keys.shards[0].raw).unwrap();
    let events: Vec<Value> = (0..60).map(|i| event(&format!("after{i}"), &format!("after the move {i}"))).collect();
    for (n, batch) in events.chunks(20).enumerate() {
        let (status, body) = post_batch(&s[n % 2].base, batch).await;
        assert_eq!(status, 202, "{body}");
    }
    let after: usize = conn.xlen(&keys.shards[0].raw).unwrap();
    assert!(after > before, "new events reach the moved shard ({before} → {after})");
    wait_until(
        Duration::from_secs(20),
        || {
            let done = routed(&mut conn, &keys);
            (0..60).all(|i| done.contains_key(&format!("after{i}")))
        },
        "the events sent after the move routed",
    );
    for service in &s {
        service.stop.send(true).unwrap();
    }
}

#[test]
fn entity_labels_and_the_embedding_cache_work_across_the_cluster_slots() {
    use palisade::entity_labels::{EntityLabel, LabelStore};
    let cluster = OwnCluster::start(3, 0);
    let nodes: Vec<String> = cluster.nodes().split(',').map(String::from).collect();
    let target = palisade_streams::Target::new("", &nodes);
    let prefix = unique_prefix();
    // Labels of 30 entities: their hashes lie on all three masters.
    let store = LabelStore::new(target.clone(), &prefix);
    let entities: Vec<String> = (0..30).map(|i| format!("user:u{i}")).collect();
    let label = |entity: &str| EntityLabel {
        entity: entity.into(),
        label: "repeat-offender".into(),
        source: "reviewer".into(),
        reason: "test".into(),
        expires_at_ms: None,
        set_at_ms: 1,
        set_by: "key:test".into(),
    };
    let labels: Vec<EntityLabel> = entities.iter().map(|e| label(e)).collect();
    assert!(store.set_many(&labels).unwrap().iter().all(Option::is_none));
    let masters: std::collections::BTreeSet<u16> =
        entities.iter().map(|e| cluster.master_of(&format!("{prefix}labels:{e}"))).collect();
    assert_eq!(masters.len(), 3);
    let read = store.get_many(&entities).unwrap();
    assert!(read.iter().zip(&entities).all(|(ls, e)| ls.len() == 1 && &ls[0].entity == e), "{read:?}");
    assert_eq!(store.remove("user:u7", "repeat-offender").unwrap().map(|l| l.entity), Some("user:u7".into()));
    assert!(store.get_many(&entities).unwrap()[7].is_empty());
    // The embedding cache: a batch written and read back over many slots.
    let cache = palisade_detect::embed::cache::EmbeddingCache::new(target, format!("{prefix}emb:"), 60);
    let texts: Vec<String> = (0..40).map(|i| format!("text {i}")).collect();
    let vectors: Vec<Vec<f32>> = (0..40).map(|i| vec![i as f32, 0.5]).collect();
    let items: Vec<(&str, &[f32])> = texts.iter().map(String::as_str).zip(vectors.iter().map(Vec::as_slice)).collect();
    cache.put(&items);
    let mut asked: Vec<&str> = texts.iter().map(String::as_str).collect();
    asked.push("never cached");
    let got = cache.get(&asked);
    assert_eq!(got[..40].iter().cloned().map(Option::unwrap).collect::<Vec<_>>(), vectors);
    assert_eq!(got[40], None);
}
