//! Shadow candidates on live traffic (real Redis, real built plugins, the default
//! classifier): a candidate version of `threats` that flags less scores every
//! screened batch beside the active one — its flips are counted and sampled
//! while routing follows the active verdicts; promotion swaps it in with no
//! failed request under concurrent screening (the old version stays for
//! rollback); discarding leaves nothing behind; both are audited.

use palisade_tests::{Service, set_key};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn admin(s: &Service, method: reqwest::Method, path: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .request(method, format!("{}{path}", s.screen_base))
        .header("api-key", "admin-key")
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

/// Install a candidate `threats` (at `weight`) into the shadow directory and load it.
async fn shadow_threats(s: &Service, weight: &str) {
    let manifest = set_key(&palisade_tests::manifest("threats"), "weight", weight);
    let dir = s.plugins.path().join("shadow");
    palisade::plugins::install::install(&s.plugins.runtime, &dir, &palisade_tests::wasm("threats"), &manifest).unwrap();
    let (status, body) = admin(s, reqwest::Method::POST, "/v1/admin/shadow/reload").await;
    assert_eq!(status, 200, "{body}");
}

const THREATS: [&str; 3] = [
    "Watch your back tomorrow, you won't make it home alive",
    "you're dead meat after school",
    "better sleep with one eye open tonight",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shadow_is_measured_on_live_batches_then_promoted_or_discarded() {
    let s = Service::both(&[]).await;
    shadow_threats(&s, "0.1").await;
    let (_, listed) = admin(&s, reqwest::Method::GET, "/v1/admin/shadow").await;
    assert_eq!(listed["installed"][0]["name"], "threats", "{listed}");

    // Live traffic through ingest and the consumer.
    let events: Vec<Value> = THREATS
        .iter()
        .chain(&["see you at lunch tomorrow", "great game last night"])
        .enumerate()
        .map(|(i, text)| json!({"event_id": format!("sh-{i}"), "event_type": "message", "platform": "web", "user_id": "u", "content": text}))
        .collect();
    let response = reqwest::Client::new()
        .post(format!("{}/v1/events/ingest-batch", s.base))
        .header("api-key", "test-key")
        .json(&json!({ "events": events }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let mut redis = s.redis();
    let deadline = Instant::now() + Duration::from_secs(30);
    let routed = |r: &mut redis::Connection| -> (u64, u64) {
        (
            redis::cmd("XLEN").arg(&s.keys.reasoning).query(r).unwrap(),
            redis::cmd("XLEN").arg(&s.keys.low_risk).query(r).unwrap(),
        )
    };
    while {
        let (h, l) = routed(&mut redis);
        h + l < 5
    } {
        assert!(Instant::now() < deadline, "not routed: {:?}", routed(&mut redis));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Routing followed the active rule: every threat is in the reasoning queue.
    assert_eq!(routed(&mut redis), (3, 2));

    let (_, report) = admin(&s, reqwest::Method::GET, "/v1/admin/shadow").await;
    let tally = &report["shadows"][0];
    assert_eq!((tally["plugin"].as_str(), tally["source"].as_str()), (Some("threats"), Some("shadow_dir")), "{report}");
    assert_eq!(tally["compared"], 5, "{report}");
    let flips = tally["flips"]["VIOLENCE→LOW_RISK"].as_u64().unwrap_or(0);
    assert!(flips >= 1, "the weaker candidate lets a threat through: {report}");
    assert_eq!(tally["agreed"].as_u64().unwrap() + flips, 5, "{report}");
    let sampled: Vec<&str> =
        tally["sample"].as_array().unwrap().iter().map(|f| f["event_id"].as_str().unwrap()).collect();
    assert_eq!(sampled.len() as u64, flips);
    assert!(sampled.iter().all(|id| ["sh-0", "sh-1", "sh-2"].contains(id)), "{sampled:?}");
    assert!(tally["cost_us_per_event"].as_f64().unwrap() > 0.0);

    // Promote while four clients keep screening: no request fails.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    for c in 0..4 {
        let (base, stop) = (s.screen_base.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            let (mut ok, mut failed, http) = (0, 0, reqwest::Client::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = http
                    .post(format!("{base}/v1/risk/screen"))
                    .header("api-key", "test-key")
                    .json(&json!({"event_id": format!("c{c}"), "event_type": "message", "platform": "web", "user_id": "u", "content": THREATS[c % 3]}))
                    .send()
                    .await;
                if r.is_ok_and(|r| r.status() == 200) { ok += 1 } else { failed += 1 }
            }
            (ok, failed)
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, promoted) = admin(&s, reqwest::Method::POST, "/v1/admin/shadow/threats/promote").await;
    assert_eq!(status, 200, "{promoted}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for c in clients {
        let (ok, failed) = c.await.unwrap();
        assert!(ok > 0 && failed == 0, "{ok} answered, {failed} failed");
    }
    let active = s.core.plugins.get("threats").unwrap().current().unwrap();
    assert_eq!(active.manifest.weight, 0.1, "the candidate is active");
    assert!(!s.plugins.path().join("shadow/threats.toml").exists());
    let (_, report) = admin(&s, reqwest::Method::GET, "/v1/admin/shadow").await;
    assert_eq!(report["shadows"], json!([]), "{report}");
    let (status, back) = admin(&s, reqwest::Method::POST, "/v1/admin/plugins/threats/rollback").await;
    assert_eq!((status, back["version"].as_str()), (200, Some("0.1.0")));
    assert_eq!(s.core.plugins.get("threats").unwrap().current().unwrap().manifest.weight, 1.0);

    // Discard: files, figures and the loaded candidate are gone.
    shadow_threats(&s, "0.5").await;
    let (status, _) = admin(&s, reqwest::Method::POST, "/v1/admin/shadow/threats/discard").await;
    assert_eq!(status, 200);
    assert!(
        std::fs::read_dir(s.plugins.path().join("shadow"))
            .unwrap()
            .flatten()
            .all(|e| e.file_name().to_string_lossy().starts_with('.'))
    );
    let (_, report) = admin(&s, reqwest::Method::GET, "/v1/admin/shadow").await;
    assert_eq!((report["installed"].clone(), report["shadows"].clone()), (json!([]), json!([])), "{report}");
    let (status, _) = admin(&s, reqwest::Method::POST, "/v1/admin/shadow/threats/discard").await;
    assert_eq!(status, 404, "nothing left to discard");

    // Both decisions are in the audit trail, the promotion with the figures it rested on.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, audit) = admin(&s, reqwest::Method::GET, "/v1/admin/audit?count=20").await;
    let entries = audit["entries"].as_array().unwrap();
    let promote = entries.iter().find(|e| e["action"] == "promote").expect("promote audited");
    assert_eq!(promote["subject"], "threats");
    assert!(promote["detail"]["shadow"]["compared"].as_u64().unwrap() >= 5, "{promote}");
    assert!(entries.iter().any(|e| e["action"] == "discard" && e["subject"] == "threats"), "{audit}");
}

/// A plugin whose manifest says `mode = "shadow"` is compared as if it enforced:
/// its verdicts never count, its figures show what enforcing it would change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_in_shadow_mode_is_compared_as_if_it_enforced() {
    let s = Service::both(&[]).await;
    s.plugins.install_with("violent-intent", |m| m.replacen("weight = 1.0", "weight = 1.0\nmode = \"shadow\"", 1));
    let (status, _) = admin(&s, reqwest::Method::POST, "/v1/admin/plugins/reload").await;
    assert_eq!(status, 200);
    let r = reqwest::Client::new()
        .post(format!("{}/v1/risk/screen", s.screen_base))
        .header("api-key", "test-key")
        .json(&json!({"event_id": "m1", "event_type": "message", "platform": "web", "user_id": "u", "content": "I am going to stab my neighbour tonight"}))
        .send()
        .await
        .unwrap();
    let p: Value = r.json().await.unwrap();
    assert!(p["flags"].as_array().unwrap().iter().any(|f| f == "shadow:violent-intent"), "{p}");
    let (_, report) = admin(&s, reqwest::Method::GET, "/v1/admin/shadow").await;
    let tally =
        report["shadows"].as_array().unwrap().iter().find(|t| t["plugin"] == "violent-intent").expect("tallied");
    assert_eq!((tally["source"].as_str(), tally["compared"].as_u64()), (Some("manifest"), Some(1)), "{report}");
    // Not in the shadow directory: nothing to promote there.
    let (status, _) = admin(&s, reqwest::Method::POST, "/v1/admin/shadow/violent-intent/promote").await;
    assert_eq!(status, 404);
}
