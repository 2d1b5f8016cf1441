//! A batch whose screening panics is never retried forever or acknowledged
//! unrouted: the consumer screens its events again one at a time, routes those
//! that screen alone, and dead-letters the one that panics alone with the panic's
//! message; the panic is counted (`palisade_panics_total{where="consumer"}`) and
//! nothing stays pending. The real consumer, model, plugins and Redis; the panic
//! is injected by an example store that panics when asked about one message's
//! embedding (nothing in Palisade's own stores is known to panic any more).

use palisade::screening::{ScreenMetrics, Screener, Similarity};
use palisade_detect::embed::{Device, Embedder};
use palisade_detect::predict::DecisionPolicy;
use palisade_detect::vectors::{Item, Neighbour, VectorError, VectorStore};
use palisade_tests::{PluginDir, model_files, unique_prefix, wait_until};
use redis::Commands;
use std::sync::Arc;
use std::time::Duration;

const POISON: &str = "this one message makes the example store panic";

/// An example store that knows nothing and panics on one query.
struct PanicsOn(Vec<f32>);

impl VectorStore for PanicsOn {
    fn upsert(&self, _: Vec<Item>) -> Result<(), VectorError> {
        Ok(())
    }
    fn search(&self, query: &[f32], _: usize) -> Vec<Neighbour> {
        let similarity: f32 = query.iter().zip(&self.0).map(|(a, b)| a * b).sum();
        assert!(similarity < 0.98, "injected: the example store panics on this message");
        Vec::new()
    }
    fn len(&self) -> usize {
        1
    }
    fn persist(&self) -> Result<(), VectorError> {
        Ok(())
    }
}

#[test]
fn a_panicking_batch_is_screened_one_by_one_and_only_the_poison_is_dead_lettered() {
    let (model, lib) = model_files();
    let embedder = Arc::new(Embedder::load(&model, &lib, Device::Cpu, 32, "").unwrap());
    let poison = embedder.embed(&[POISON]).unwrap().remove(0);
    let dir = PluginDir::new();
    dir.install("threats");
    let (plugins, registry) = dir.open();
    let faults = palisade_core::telemetry::faults::Faults::register(&registry).unwrap();
    let screener = Screener {
        plugins,
        similarity: Some(Similarity {
            embedder,
            cache: None,
            exemplars: Arc::new(PanicsOn(poison)),
            k: 5,
            events: None,
            past_k: 0,
        }),
        policy: DecisionPolicy::default(),
        metrics: ScreenMetrics::register(&registry, faults).unwrap(),
        fast_path: None,
        campaigns: None,
        classifier: None,
        cascade_band: None,
        knn_weight: 0.3,
        shadows: None,
    };

    let prefix = unique_prefix();
    let keys = palisade_streams::Keys::new(&prefix);
    let mut conn = redis::Client::open("redis://127.0.0.1:6379").unwrap().get_connection().unwrap();
    let texts = ["see you at lunch", POISON, "i will kill you", "thanks for the help", "nice goal last night"];
    let mut pipe = redis::pipe();
    pipe.atomic(); // one transaction: the consumer reads them as one batch
    for (i, text) in texts.iter().enumerate() {
        let mut e = palisade_core::Event::sample(text);
        e.event_id = format!("p-{i}");
        pipe.xadd(&keys.raw, "*", &[("event", serde_json::to_string(&e).unwrap())]).ignore();
    }
    pipe.query::<()>(&mut conn).unwrap();

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = rt.spawn(async move {
        let target = palisade_streams::Target::new("redis://127.0.0.1:6379", &[]);
        let consumer = palisade::screening::consumer::Consumer {
            conn: palisade_streams::RedisConn::connect(&target, Duration::from_secs(1)).await.unwrap(),
            keys: keys.shards[0].clone(),
            name: "panics".into(),
            screener: Arc::new(screener),
            batch_size: 100,
            max_deliveries: 5,
            claim_idle: Duration::from_secs(60),
            claim_interval: Duration::from_secs(60),
            claim_batch: 100,
            retention: None,
            degraded_events: palisade::config::DegradedEvents::Rescreen,
        };
        consumer.run(stopped).await;
    });
    let keys = palisade_streams::Keys::new(&prefix);
    let routed = |conn: &mut redis::Connection| -> usize {
        conn.xlen::<_, usize>(&keys.reasoning).unwrap() + conn.xlen::<_, usize>(&keys.low_risk).unwrap()
    };
    wait_until(
        Duration::from_secs(60),
        || routed(&mut conn) == 4 && conn.xlen::<_, usize>(&keys.dead_letter).unwrap() == 1,
        "four events routed and one dead-lettered",
    );
    stop.send(true).unwrap();
    rt.block_on(task).unwrap();

    let dead: redis::streams::StreamRangeReply = conn.xrange_all(&keys.dead_letter).unwrap();
    let reason: String = dead.ids[0].get("reason").unwrap();
    let event: String = dead.ids[0].get("event").unwrap();
    assert!(reason.contains("panicked") && reason.contains("injected"), "{reason}");
    assert!(event.contains(POISON), "the poison is the one dead-lettered: {event}");
    let pending: (u64, Option<String>, Option<String>, redis::Value) =
        redis::cmd("XPENDING").arg(&keys.raw).arg("screening").query(&mut conn).unwrap();
    assert_eq!(pending.0, 0, "nothing left pending");
    let metrics = palisade_core::telemetry::render(&registry);
    assert!(metrics.contains(r#"palisade_panics_total{where="consumer"}"#), "{metrics}");
}
