//! A busy machine never weakens screening: with busy loops holding every core
//! (processes of the test's own, ended when it ends) and several clients sending
//! batches of 10,000-character messages, no first-party rule is quarantined, no
//! event is screened `degraded`, and the threats rule still fires. Rules are
//! metered by fuel (instructions), not by the clock, so a quarantine is earned by
//! the plugin: a guest that really loops still runs out and is quarantined.
//! `CPU_STRESS_SECONDS` sets how long the load runs (default 60).

use palisade_tests::{Service, set_key};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Busy loops, one per core and one more, each in a process group of its own:
/// dropped, the whole group is killed; should the test die first, `timeout` ends
/// the loop by itself.
struct BusyLoops(Vec<std::process::Child>);

impl BusyLoops {
    fn start(seconds: u64) -> Self {
        use std::os::unix::process::CommandExt;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let spin = |_| {
            std::process::Command::new("timeout")
                .args([&(seconds + 30).to_string(), "sh", "-c", "while :; do :; done"])
                .process_group(0)
                .spawn()
                .expect("timeout and sh on PATH")
        };
        BusyLoops((0..=cores).map(spin).collect())
    }
}

impl Drop for BusyLoops {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let group = format!("-{}", c.id());
            let _ = std::process::Command::new("kill").args(["-KILL", "--", &group]).status();
            let _ = c.wait();
        }
    }
}

fn long_message(i: usize, threat: bool) -> Value {
    let filler = "the weather was fine and we talked about the match for a while, ";
    let mut content = filler.repeat(10_000 / filler.len());
    if threat {
        content.replace_range(..60, "i will find you and kill you tonight, you are dead, watch out ");
    }
    content.truncate(10_000);
    json!({"event_id": format!("s-{i}"), "event_type": "message", "platform": "web", "user_id": format!("u-{i}"), "content": content})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_busy_machine_drops_no_rule_and_a_looping_plugin_is_still_quarantined() {
    let seconds: u64 = std::env::var("CPU_STRESS_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    let s = Service::both(&[("SCREENING_MODEL", "none")]).await;
    // A test-only guest that loops on `loop`; its manifest's 10 ms deadline is the old
    // default: gone, so only its fuel (cut to 50M instructions) and the backstop hold it.
    s.plugins.install_with("hostile", |m| {
        set_key(&m, "max_faults", "1").replace("deadline_ms = 10\n", "fuel = 50000000\nretry_after_ms = 0\n")
    });
    s.core.plugins.reload(false);
    let busy = BusyLoops::start(seconds);
    let started = Instant::now();
    let mut clients = Vec::new();
    for c in 0..4 {
        let url = format!("{}/v1/risk/screen-batch", s.screen_base);
        clients.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let (mut batches, mut degraded, mut threats_missed) = (0, Vec::new(), 0);
            let mut i = c * 1_000_000;
            while started.elapsed() < Duration::from_secs(seconds) {
                let events: Vec<Value> = (0..8).map(|k| long_message(i + k, k == 0)).collect();
                i += 8;
                let r = http.post(&url).header("api-key", "test-key").json(&json!({ "events": events })).send().await;
                let r = r.expect("an answer");
                assert_eq!(r.status(), 200);
                let body: Value = r.json().await.unwrap();
                for p in body["predictions"].as_array().unwrap() {
                    if !p["degraded"].as_array().unwrap().is_empty() {
                        degraded.push(p["degraded"].clone());
                    }
                }
                let threat = &body["predictions"][0];
                threats_missed += usize::from(!threat["explanation"].to_string().contains("\"threats\""));
                batches += 1;
            }
            (batches, degraded, threats_missed)
        }));
    }
    let mut batches = 0;
    for client in clients {
        let (n, degraded, missed) = client.await.unwrap();
        assert!(degraded.is_empty(), "events screened without some rules: {degraded:?}");
        assert_eq!(missed, 0, "the threats rule did not fire on every threat");
        batches += n;
    }
    drop(busy);
    assert!(batches >= 8, "the load ran: {batches} batches of 8 × 10,000 characters");
    let (_, list) = s.admin(reqwest::Method::GET, "/v1/admin/plugins", None).await;
    for p in list["plugins"].as_array().unwrap() {
        assert_eq!(p["state"], "active", "{p}");
        assert_eq!(p["quarantines"], 0, "{p}");
    }

    // A guest that really loops spends its fuel and is quarantined (max_faults 1).
    let body =
        json!({"event_id": "loop-1", "event_type": "message", "platform": "web", "user_id": "u", "content": "loop"});
    let r = reqwest::Client::new()
        .post(format!("{}/v1/risk/screen", s.screen_base))
        .header("api-key", "test-key")
        .json(&body)
        .send()
        .await
        .unwrap();
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["degraded"], json!(["hostile"]), "{p}");
    let hostile = s.core.plugins.get("hostile").unwrap().info();
    assert_eq!(hostile.state, palisade_plugins::PluginState::Quarantined);
    assert_eq!(hostile.errors.get("fuel"), Some(&1), "{:?}", hostile.errors);
}
