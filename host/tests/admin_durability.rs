//! Operators' changes hold: a plugin rollback, a disable and a classifier
//! rollback made through the admin API survive a restart of the service (they
//! are written to the plugin directory and the classifier folders), and with two
//! screening replicas on one Redis, each with a directory of its own, a change
//! made on one is applied by the other within 5 s (`events:control`).
//! `palisade serve screen` processes of the built binary, on the real Redis.

use palisade_tests::{PluginDir, ServeProcess, default_classifier, set_key, unique_prefix};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

/// A plugin directory with every shipped plugin, then `threats` 0.2.0 installed
/// over 0.1.0 (the install keeps 0.1.0 for a rollback).
fn plugins() -> PluginDir {
    let dir = PluginDir::new();
    for p in palisade_tests::shipped() {
        dir.install(&p);
    }
    dir.install_with("threats", |m| set_key(&m, "version", "\"0.2.0\""));
    dir
}

/// A classifier folder (the default one) with a previous version beside it.
fn classifiers(root: &Path) -> String {
    let (active, previous) = (root.join("classifier"), root.join("classifier.previous"));
    for dir in [&active, &previous] {
        std::fs::create_dir_all(dir).unwrap();
        for f in std::fs::read_dir(default_classifier()).unwrap().flatten() {
            std::fs::copy(f.path(), dir.join(f.file_name())).unwrap();
        }
    }
    let meta = previous.join("classifier.json");
    let mut json: Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    json["version"] = "the-previous-one".into();
    std::fs::write(&meta, json.to_string()).unwrap();
    active.display().to_string()
}

async fn start(plugins: &PluginDir, classifier: &str, prefix: &str) -> ServeProcess {
    let env = [
        ("SCREENING_MODEL", "none"),
        ("CLASSIFIER_DIR", classifier),
        ("REDIS_KEY_PREFIX", prefix),
        ("LOG_FORMAT", "text"),
    ];
    ServeProcess::start(env!("CARGO_BIN_EXE_palisade"), "screen", plugins, &env).await
}

async fn admin(s: &ServeProcess, method: reqwest::Method, path: &str) -> (u16, Value) {
    let r = reqwest::Client::new().request(method, format!("{}{path}", s.base)).header("api-key", "admin-key");
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// (threats' version, caps-shouting's state, the classifier's version) as the service reports them.
async fn state(s: &ServeProcess) -> (String, String, String) {
    let (_, list) = admin(s, reqwest::Method::GET, "/v1/admin/plugins").await;
    let find = |name: &str| list["plugins"].as_array().unwrap().iter().find(|p| p["name"] == name).unwrap().clone();
    let (_, classifier) = admin(s, reqwest::Method::GET, "/v1/admin/classifier").await;
    (
        find("threats")["version"].as_str().unwrap().into(),
        find("caps-shouting")["state"].as_str().unwrap().into(),
        classifier["version"].as_str().unwrap_or_default().into(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_changes_survive_a_restart_and_reach_every_replica() {
    let prefix = unique_prefix();
    let (dir_a, dir_b) = (plugins(), plugins());
    let (root_a, root_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (clf_a, clf_b) = (classifiers(root_a.path()), classifiers(root_b.path()));
    let mut a = start(&dir_a, &clf_a, &prefix).await;
    let b = start(&dir_b, &clf_b, &prefix).await;
    let before = state(&a).await;
    assert_eq!((before.0.as_str(), before.1.as_str()), ("0.2.0", "active"), "{before:?}");
    assert_ne!(before.2, "the-previous-one");

    // Three changes on replica A.
    for path in [
        "/v1/admin/plugins/threats/rollback",
        "/v1/admin/plugins/caps-shouting/disable",
        "/v1/admin/classifier/rollback",
    ] {
        let (status, body) = admin(&a, reqwest::Method::POST, path).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    let changed = ("0.1.0".to_string(), "disabled".to_string(), "the-previous-one".to_string());
    assert_eq!(state(&a).await, changed);

    // Replica B, with a directory of its own, follows within 5 s.
    let started = Instant::now();
    while state(&b).await != changed {
        assert!(started.elapsed() < Duration::from_secs(5), "replica B: {:?}\n{}", state(&b).await, b.log_text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A restart of A keeps all three.
    assert!(a.terminate().success());
    let a = start(&dir_a, &clf_a, &prefix).await;
    assert_eq!(state(&a).await, changed, "{}", a.log_text());
    // The rolled-back versions are kept: a second rollback rolls forward.
    let (status, body) = admin(&a, reqwest::Method::POST, "/v1/admin/plugins/threats/rollback").await;
    assert_eq!((status, body["version"].as_str()), (200, Some("0.2.0")), "{body}");
    let (status, body) = admin(&a, reqwest::Method::POST, "/v1/admin/classifier/rollback").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(state(&a).await.2, before.2);
}
