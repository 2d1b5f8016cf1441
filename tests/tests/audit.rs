//! The audit trail (`events:audit`, `GET /v1/admin/audit`) over real HTTP and a
//! real Redis: every plugin change an operator makes is there with the admin
//! key's id (never the key), the plugin, and the old and new version and hash;
//! a quarantine is there with its reason.

use palisade_core::audit::key_id;
use palisade_tests::{Service, set_key};
use serde_json::Value;
use std::time::{Duration, Instant};

async fn admin(s: &Service, path: &str) -> Value {
    let response = reqwest::Client::new()
        .post(format!("{}{path}", s.screen_base))
        .header("api-key", "admin-key")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

/// The trail, newest first, once it holds at least `n` entries.
async fn trail(s: &Service, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let body: Value = reqwest::Client::new()
            .get(format!("{}/v1/admin/audit?count=50", s.screen_base))
            .header("api-key", "admin-key")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let entries = body["entries"].as_array().cloned().unwrap_or_default();
        if entries.len() >= n {
            return entries;
        }
        assert!(Instant::now() < deadline, "only {} entries: {body}", entries.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn every_plugin_change_is_audited_with_who_and_which_versions() {
    let s = Service::both(&[]).await;
    let me = key_id("admin-key");
    let shipped = s.core.plugins.get("threats").unwrap().current().unwrap();

    // A new version, loaded by an operator's reload; then off, on, and back.
    s.plugins.install_with("threats", |m| set_key(&m, "version", "\"9.9.9\""));
    admin(&s, "/v1/admin/plugins/reload").await;
    admin(&s, "/v1/admin/plugins/threats/disable").await;
    admin(&s, "/v1/admin/plugins/threats/enable").await;
    admin(&s, "/v1/admin/plugins/threats/rollback").await;

    let entries = trail(&s, 4).await;
    let actions: Vec<&str> = entries.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions[..4], ["rollback", "enable", "disable", "reload"], "newest first: {entries:?}");
    for e in &entries[..4] {
        assert_eq!(e["actor"], me.as_str());
        assert_eq!(e["subject"], "threats");
        assert!(e["at_ms"].as_u64().unwrap() > 0 && e["id"].as_str().is_some());
    }
    let (reload, rollback) = (&entries[3], &entries[0]);
    assert_eq!((reload["old"]["version"].as_str(), reload["new"]["version"].as_str()), (Some("0.1.0"), Some("9.9.9")));
    assert_eq!(reload["old"]["sha256"], shipped.sha256.as_str());
    // Only the manifest changed: the hash names the component, which is the same.
    assert_eq!(reload["new"]["sha256"], reload["old"]["sha256"]);
    assert_eq!(
        (rollback["old"]["version"].as_str(), rollback["new"]["version"].as_str()),
        (Some("9.9.9"), Some("0.1.0"))
    );
    let text = serde_json::to_string(&entries).unwrap();
    assert!(!text.contains("\"admin-key\""), "the key itself is never written");

    // A rule that faults is quarantined by the host, with the reason.
    s.plugins.install_with("hostile", |m| set_key(&m, "max_faults", "1"));
    admin(&s, "/v1/admin/plugins/reload").await;
    let response = reqwest::Client::new()
        .post(format!("{}/v1/risk/screen", s.screen_base))
        .header("api-key", "test-key")
        .json(&serde_json::json!({"event_id": "a1", "event_type": "message", "platform": "web", "user_id": "u", "content": "trap"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let entries = trail(&s, 6).await;
    let installed = entries.iter().find(|e| e["action"] == "install").expect("install entry");
    assert_eq!((installed["subject"].as_str(), installed["actor"].as_str()), (Some("hostile"), Some(me.as_str())));
    assert!(installed["old"].is_null() && installed["new"]["sha256"].as_str().unwrap().len() == 64);
    let quarantine = &entries[0];
    assert_eq!((quarantine["action"].as_str(), quarantine["actor"].as_str()), (Some("quarantine"), Some("host")));
    assert_eq!(quarantine["subject"], "hostile");
    assert!(quarantine["detail"]["reason"].as_str().unwrap().contains("faults"), "{quarantine}");
}

/// The trail is capped (`AUDIT_MAX_ENTRIES`), and says so: after 240 changes
/// under a cap of 10 it holds a few (Redis trims whole nodes of 100), and the
/// listing reports how many it holds and keeps at most.
#[tokio::test]
async fn the_trail_keeps_at_most_its_configured_entries_and_says_so() {
    let s = Service::both(&[("AUDIT_MAX_ENTRIES", "10")]).await;
    for _ in 0..120 {
        admin(&s, "/v1/admin/plugins/threats/disable").await;
        admin(&s, "/v1/admin/plugins/threats/enable").await;
    }
    // Entries are written in the background: wait until the trail stops changing.
    let listing = || async {
        let r = reqwest::Client::new()
            .get(format!("{}/v1/admin/audit?count=1", s.screen_base))
            .header("api-key", "admin-key");
        r.send().await.unwrap().json::<Value>().await.unwrap()
    };
    let mut body = listing().await;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let again = listing().await;
        if again == body {
            break;
        }
        body = again;
    }
    assert_eq!(body["entries"][0]["action"], "enable", "the newest change is kept: {body}");
    assert_eq!(body["kept_at_most"], 10, "{body}");
    let length = body["length"].as_u64().unwrap();
    assert!((10..=110).contains(&length), "240 changes, a cap of 10: {length} kept");
}
