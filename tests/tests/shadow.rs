//! Shadow candidates on live traffic (real Redis, real built plugins, the default
//! classifier): a candidate version of `threats` that flags less scores every
//! screened batch beside the active one — its flips are counted and sampled
//! while routing follows the active verdicts; promotion swaps it in with no
//! failed request under concurrent screening (the old version stays for
//! rollback); discarding leaves nothing behind; both are audited. A candidate
//! classifier (`CLASSIFIER_DIR.shadow`) is shadowed, backtested as an admin job,
//! refused by the gate, promoted and rolled back; a stream backtest job leaves
//! the stream and its group as they were.

use palisade_tests::{Service, set_key};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn screen(s: &Service, id: &str, text: &str) -> Value {
    let r = reqwest::Client::new()
        .post(format!("{}/v1/risk/screen", s.screen_base))
        .header("api-key", "test-key")
        .json(&json!({"event_id": id, "event_type": "message", "platform": "web", "user_id": "u", "content": text}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// Install a candidate `threats` (at `weight`) into the shadow directory and load it.
async fn shadow_threats(s: &Service, weight: &str) {
    let manifest = set_key(&palisade_tests::manifest("threats"), "weight", weight);
    let dir = s.plugins.path().join("shadow");
    palisade_plugins::install::install(&s.plugins.runtime, &dir, &palisade_tests::wasm("threats"), &manifest).unwrap();
    let (status, body) = s.admin(reqwest::Method::POST, "/v1/admin/shadow/reload", None).await;
    assert_eq!(status, 200, "{body}");
}

/// Ingest `texts` as one batch (ids `{prefix}-N`) and wait until the consumer has
/// routed them all: (events in the reasoning queue, in low risk).
async fn ingest_and_route(s: &Service, prefix: &str, texts: impl Iterator<Item = &'static &'static str>) -> (u64, u64) {
    let events: Vec<Value> = texts
        .enumerate()
        .map(|(i, text)| json!({"event_id": format!("{prefix}-{i}"), "event_type": "message", "platform": "web", "user_id": "u", "content": text}))
        .collect();
    assert_eq!(s.ingest_batch(&events).await.status(), 202);
    let mut redis = s.redis();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let high: u64 = redis::cmd("XLEN").arg(&s.keys.reasoning).query(&mut redis).unwrap();
        let low: u64 = redis::cmd("XLEN").arg(&s.keys.low_risk).query(&mut redis).unwrap();
        if high + low >= events.len() as u64 {
            return (high, low);
        }
        assert!(Instant::now() < deadline, "not routed: {high} + {low} of {}", events.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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
    let (_, listed) = s.admin(reqwest::Method::GET, "/v1/admin/shadow", None).await;
    assert_eq!(listed["installed"][0]["name"], "threats", "{listed}");

    // Live traffic through ingest and the consumer.
    let routed = ingest_and_route(&s, "sh", THREATS.iter().chain(&EVERYDAY[..2])).await;
    // Routing followed the active rule: every threat is in the reasoning queue.
    assert_eq!(routed, (3, 2));

    let (_, report) = s.admin(reqwest::Method::GET, "/v1/admin/shadow", None).await;
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
    let (status, promoted) = s.admin(reqwest::Method::POST, "/v1/admin/shadow/threats/promote", None).await;
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
    let (_, report) = s.admin(reqwest::Method::GET, "/v1/admin/shadow", None).await;
    assert_eq!(report["shadows"], json!([]), "{report}");
    let (status, back) = s.admin(reqwest::Method::POST, "/v1/admin/plugins/threats/rollback", None).await;
    assert_eq!((status, back["version"].as_str()), (200, Some("0.1.0")));
    assert_eq!(s.core.plugins.get("threats").unwrap().current().unwrap().manifest.weight, 1.0);

    // Discard: files, figures and the loaded candidate are gone.
    shadow_threats(&s, "0.5").await;
    let (status, _) = s.admin(reqwest::Method::POST, "/v1/admin/shadow/threats/discard", None).await;
    assert_eq!(status, 200);
    assert!(
        std::fs::read_dir(s.plugins.path().join("shadow"))
            .unwrap()
            .flatten()
            .all(|e| e.file_name().to_string_lossy().starts_with('.'))
    );
    let (_, report) = s.admin(reqwest::Method::GET, "/v1/admin/shadow", None).await;
    assert_eq!((report["installed"].clone(), report["shadows"].clone()), (json!([]), json!([])), "{report}");
    let (status, _) = s.admin(reqwest::Method::POST, "/v1/admin/shadow/threats/discard", None).await;
    assert_eq!(status, 404, "nothing left to discard");

    // Both decisions are in the audit trail, the promotion with the figures it rested on.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, audit) = s.admin(reqwest::Method::GET, "/v1/admin/audit?count=20", None).await;
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
    let (status, _) = s.admin(reqwest::Method::POST, "/v1/admin/plugins/reload", None).await;
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
    let (_, report) = s.admin(reqwest::Method::GET, "/v1/admin/shadow", None).await;
    let tally =
        report["shadows"].as_array().unwrap().iter().find(|t| t["plugin"] == "violent-intent").expect("tallied");
    assert_eq!((tally["source"].as_str(), tally["compared"].as_u64()), (Some("manifest"), Some(1)), "{report}");
    // Not in the shadow directory: nothing to promote there.
    let (status, _) = s.admin(reqwest::Method::POST, "/v1/admin/shadow/violent-intent/promote", None).await;
    assert_eq!(status, 404);
}

const EVERYDAY: [&str; 4] =
    ["see you at lunch tomorrow", "great game last night", "can you send me the notes", "happy birthday!"];

/// A candidate classifier that sees SEXUAL content everywhere (its threshold at 0):
/// measured on live screening without changing a verdict, backtested as a job over
/// labelled rows, refused by the gate, then promoted (the old one kept in
/// CLASSIFIER_DIR.previous and loaded for rollback) and rolled back; all audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_candidate_classifier_is_shadowed_backtested_gated_promoted_and_rolled_back() {
    let tmp = tempfile::tempdir().unwrap();
    let active_dir = tmp.path().join("classifier");
    copy_dir(&palisade_tests::default_classifier(), &active_dir);
    let s = Service::both(&[("CLASSIFIER_DIR", active_dir.to_str().unwrap())]).await;
    let (_, report) = s.admin(reqwest::Method::GET, "/v1/admin/shadow", None).await;
    assert_eq!(report["classifier"]["version"], Value::Null, "no candidate yet: {report}");
    let (status, _) = s.admin(reqwest::Method::POST, "/v1/admin/classifier/shadow/promote", None).await;
    assert_eq!(status, 404, "nothing to promote");

    let candidate_dir = tmp.path().join("classifier.shadow");
    copy_dir(&active_dir, &candidate_dir);
    let meta = candidate_dir.join("classifier.json");
    let mut m: Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    m["thresholds"]["SEXUAL"] = json!(0.0);
    std::fs::write(&meta, m.to_string()).unwrap();
    let (status, reloaded) = s.admin(reqwest::Method::POST, "/v1/admin/shadow/reload", None).await;
    assert_eq!((status, reloaded["classifier"]["version"].is_string()), (200, true), "{reloaded}");

    // Live screening: the verdicts stay the active classifier's.
    for (i, text) in EVERYDAY.iter().enumerate() {
        let p = screen(&s, &format!("ev-{i}"), text).await;
        assert_eq!(p["category"], "LOW_RISK", "{p}");
    }
    let (_, report) = s.admin(reqwest::Method::GET, "/v1/admin/shadow", None).await;
    let tally = report["shadows"].as_array().unwrap().iter().find(|t| t["kind"] == "classifier").expect("tallied");
    assert_eq!((tally["plugin"].as_str(), tally["source"].as_str()), (Some("classifier"), Some("classifier_dir")));
    assert_eq!((tally["compared"].as_u64(), tally["flips"]["LOW_RISK→SEXUAL"].as_u64()), (Some(4), Some(4)), "{tally}");
    // Each flip is also in the capped stream events:shadow.
    let mut redis = s.redis();
    let deadline = Instant::now() + Duration::from_secs(5);
    while redis::cmd("XLEN").arg(&s.keys.shadow).query::<u64>(&mut redis).unwrap() < 4 {
        assert!(Instant::now() < deadline, "flips not in {}", s.keys.shadow);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let entries: redis::streams::StreamRangeReply =
        redis::cmd("XRANGE").arg(&s.keys.shadow).arg("-").arg("+").query(&mut redis).unwrap();
    let entry: Value = serde_json::from_str(&entries.ids[0].get::<String>("entry").unwrap()).unwrap();
    assert_eq!((entry["shadow"].as_str(), entry["event_id"].as_str()), (Some("classifier"), Some("ev-0")), "{entry}");
    assert_eq!(
        (entry["active"]["category"].as_str(), entry["candidate"]["category"].as_str()),
        (Some("LOW_RISK"), Some("SEXUAL"))
    );

    // A backtest job over labelled rows: the candidate's F1 is lower and the changed rows are listed.
    let rows: Vec<Value> = EVERYDAY
        .iter()
        .map(|t| json!({"text": t, "label": "LOW_RISK"}))
        .chain([json!({"text": "I will kill you", "label": "VIOLENCE"})])
        .collect();
    let job = s.backtest_job(json!({"candidate": {"kind": "classifier"}, "rows": rows})).await;
    let result = &job["result"];
    assert!(result["candidate"]["weighted_f1"].as_f64() < result["active"]["weighted_f1"].as_f64(), "{job}");
    assert_eq!(result["changed_total"], 4, "{job}");
    assert_eq!(job["progress"], json!({"done": 10, "total": 10}), "{job}");

    // The gate refuses it, saying which category falls and by how much; nothing changes.
    let gate = json!({"gate": {"rows": rows, "max_f1_drop": 0.05}});
    let (status, refused) = s.admin(reqwest::Method::POST, "/v1/admin/classifier/shadow/promote", Some(gate)).await;
    assert_eq!((status, refused["error"].as_str()), (422, Some("gate_refused")), "{refused}");
    assert!(refused["message"].as_str().unwrap().contains("F1 of LOW_RISK drops"), "{refused}");
    assert!(candidate_dir.exists());
    assert_eq!(screen(&s, "g", EVERYDAY[0]).await["category"], "LOW_RISK");

    // Promoted without a gate: the candidate decides, the old one is kept on disk and loaded.
    let (status, promoted) = s.admin(reqwest::Method::POST, "/v1/admin/classifier/shadow/promote", None).await;
    assert_eq!((status, promoted["swap"]["outcome"].as_str()), (200, Some("reloaded")), "{promoted}");
    assert!(!candidate_dir.exists() && tmp.path().join("classifier.previous/classifier.json").is_file());
    let thresholds: Value =
        serde_json::from_slice(&std::fs::read(active_dir.join("classifier.json")).unwrap()).unwrap();
    assert_eq!(thresholds["thresholds"]["SEXUAL"], 0.0);
    assert_eq!(screen(&s, "p", EVERYDAY[0]).await["category"], "SEXUAL");
    let (_, report) = s.admin(reqwest::Method::GET, "/v1/admin/shadow", None).await;
    assert!(report["shadows"].as_array().unwrap().iter().all(|t| t["kind"] != "classifier"), "{report}");
    let (status, _) = s.admin(reqwest::Method::POST, "/v1/admin/classifier/rollback", None).await;
    assert_eq!(status, 200);
    assert_eq!(screen(&s, "r", EVERYDAY[0]).await["category"], "LOW_RISK");

    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, audit) = s.admin(reqwest::Method::GET, "/v1/admin/audit?count=50", None).await;
    let actions: Vec<(&str, &str)> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["subject"].as_str().unwrap()))
        .collect();
    for expected in [
        ("backtest", "classifier"),
        ("promote_refused", "classifier"),
        ("promote", "classifier"),
        ("classifier_rollback", "classifier"),
    ] {
        assert!(actions.contains(&expected), "{expected:?} not in {actions:?}");
    }
}

/// A stream backtest job for a plugin candidate reads history only; the gate on
/// the admin promote route refuses the worse candidate and passes an equal one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_backtest_job_reads_history_only_and_the_promote_route_gates() {
    let s = Service::both(&[]).await;
    shadow_threats(&s, "0.1").await;
    ingest_and_route(&s, "bt", THREATS.iter().chain(&EVERYDAY[..2])).await;
    let mut redis = s.redis();
    let state = |r: &mut redis::Connection| -> (u64, String, String) {
        let len: u64 = redis::cmd("XLEN").arg(&s.keys.raw).query(r).unwrap();
        let groups: redis::Value = redis::cmd("XINFO").arg("GROUPS").arg(&s.keys.raw).query(r).unwrap();
        let pending: redis::Value = redis::cmd("XPENDING").arg(&s.keys.raw).arg("screening").query(r).unwrap();
        (len, format!("{groups:?}"), format!("{pending:?}"))
    };
    let before = state(&mut redis);

    let prefix = s.keys.raw.strip_suffix("events:raw").unwrap();
    assert!(!prefix.is_empty());
    let stream = json!({"name": "events:raw", "since": "1h"});
    let job = s.backtest_job(json!({"candidate": {"kind": "plugin", "name": "threats"}, "stream": stream})).await;
    let comparison = &job["result"]["comparison"];
    assert_eq!(comparison["compared"], 5, "{job}");
    assert!(comparison["flips"]["VIOLENCE→LOW_RISK"].as_u64().unwrap_or(0) >= 1, "{job}");
    assert_eq!(state(&mut redis), before, "the stream, its group and pending list are untouched");

    // Bad requests are refused before a job starts.
    let bad = [
        (json!({"candidate": {"kind": "plugin", "name": "nope"}, "rows": [{"text": "x", "label": "SPAM"}]}), 404),
        (json!({"candidate": {"kind": "classifier"}, "rows": [{"text": "x", "label": "SPAM"}], "stream": {}}), 422),
        (json!({"candidate": {"kind": "plugin", "name": "threats"}, "rows": [{"text": "x", "label": "MEH"}]}), 422),
        (json!({"candidate": "threats"}), 400),
    ];
    for (body, code) in bad {
        let (status, answer) = s.admin(reqwest::Method::POST, "/v1/admin/backtests", Some(body.clone())).await;
        assert_eq!(status, code, "{body} → {answer}");
    }
    let (status, _) = s.admin(reqwest::Method::GET, "/v1/admin/backtests/bt-0-0", None).await;
    assert_eq!(status, 404);

    // The gate on promote: the worse candidate is refused (it stays a candidate) …
    let rows: Vec<Value> = THREATS
        .iter()
        .map(|t| json!({"text": t, "label": "VIOLENCE"}))
        .chain(EVERYDAY.iter().map(|t| json!({"text": t, "label": "LOW_RISK"})))
        .collect();
    let gate = json!({"gate": {"rows": rows, "max_f1_drop": 0.01}});
    let (status, refused) =
        s.admin(reqwest::Method::POST, "/v1/admin/shadow/threats/promote", Some(gate.clone())).await;
    assert_eq!((status, refused["error"].as_str()), (422, Some("gate_refused")), "{refused}");
    assert_eq!(refused["details"]["drops"][0]["category"], "VIOLENCE", "{refused}");
    assert_eq!(s.core.plugins.get("threats").unwrap().current().unwrap().manifest.weight, 1.0);
    // … an equal one passes, and the figures go with the promotion.
    shadow_threats(&s, "1.0").await;
    let (status, promoted) = s.admin(reqwest::Method::POST, "/v1/admin/shadow/threats/promote", Some(gate)).await;
    assert_eq!(status, 200, "{promoted}");
    assert_eq!((promoted["gate"]["rows"].as_u64(), promoted["gate"]["drops"].clone()), (Some(7), json!([])));
}

/// Every file under `dir`, with its bytes.
fn snapshot(dir: &std::path::Path) -> std::collections::BTreeMap<std::path::PathBuf, Vec<u8>> {
    let mut files = std::collections::BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else {
                files.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

/// A plugin name in a route's path never reaches the file system: `..%2F`,
/// absolute paths, NUL and over-long names on every route that takes one are
/// 400 `invalid_plugin_name`, and no file inside or outside PLUGIN_DIR changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_names_in_admin_paths_cannot_reach_outside_their_folder() {
    let s = Service::both(&[("SCREENING_MODEL", "none")]).await;
    shadow_threats(&s, "0.1").await;
    let outside = tempfile::tempdir().unwrap();
    for f in ["x.wasm", "x.toml"] {
        std::fs::write(outside.path().join(f), b"not yours").unwrap();
    }
    let (plugins_before, outside_before) = (snapshot(&s.plugins.path()), snapshot(outside.path()));
    let escape = |p: &std::path::Path| p.display().to_string().replace('/', "%2F");
    let outside_name = outside.path().file_name().unwrap().to_string_lossy().to_string();
    let names = [
        "..%2Fthreats".to_string(),
        format!("..%2F..%2F{outside_name}%2Fx"),
        escape(&outside.path().join("x")),
        "threats%00".into(),
        "a".repeat(300),
        "Threats".into(),
        "..".into(),
    ];
    for name in &names {
        for route in [
            format!("/v1/admin/shadow/{name}/discard"),
            format!("/v1/admin/shadow/{name}/promote"),
            format!("/v1/admin/plugins/{name}/rollback"),
            format!("/v1/admin/plugins/{name}/enable"),
            format!("/v1/admin/plugins/{name}/disable"),
        ] {
            let (status, body) = s.admin(reqwest::Method::POST, &route, None).await;
            assert!((400..500).contains(&status), "{route}: {status} {body}");
            if status == 400 {
                assert_eq!(body["error"], "invalid_plugin_name", "{route}: {body}");
            }
        }
    }
    assert_eq!(snapshot(&s.plugins.path()), plugins_before, "nothing in PLUGIN_DIR changed");
    assert_eq!(snapshot(outside.path()), outside_before, "nothing outside it changed");
    let (_, list) = s.admin(reqwest::Method::GET, "/v1/admin/plugins", None).await;
    let threats = list["plugins"].as_array().unwrap().iter().find(|p| p["name"] == "threats").expect("threats listed");
    assert_eq!(threats["state"], "active", "{threats}");
    // The real candidate is still there to discard by its name.
    let (status, body) = s.admin(reqwest::Method::POST, "/v1/admin/shadow/threats/discard", None).await;
    assert_eq!(status, 200, "{body}");
}
