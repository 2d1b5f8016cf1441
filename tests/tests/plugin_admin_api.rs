//! The admin API over real HTTP: key checks, listing, reload, rollback,
//! enable/disable, and per-plugin metrics on /metrics.

use palisade::api::{AppState, common_routes};
use palisade_tests::{PluginDir, set_key};
use serde_json::Value;
use std::sync::Arc;

async fn serve(dir: &PluginDir) -> (String, Arc<palisade_plugins::PluginHost>) {
    let (host, registry) = dir.open();
    let state = AppState {
        service: "screening",
        plugins: host.clone(),
        gauges: palisade_core::telemetry::gauges::Gauges::register(&registry).unwrap(),
        faults: palisade_core::telemetry::faults::Faults::register(&registry).unwrap(),
        audit: None,
        control: None,
        registry,
        admin_api_keys: Arc::new(vec!["admin-key".into()]),
        entity_labels: None,
        body: palisade_core::BodyLimits { max_bytes: 1 << 20, timeout: std::time::Duration::from_secs(5) },
        depth: None,
        swagger_ui_dir: Arc::new(std::path::PathBuf::from("/nonexistent")),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, common_routes(state)).await.unwrap() });
    (format!("http://{addr}"), host)
}

#[tokio::test]
async fn admin_routes_need_the_admin_key_and_manage_plugins_live() {
    let dir = PluginDir::new();
    dir.install("probe");
    dir.install("threats");
    let (base, host) = serve(&dir).await;
    let http = reqwest::Client::new();
    let get = |path: &str, key: Option<&str>| {
        let mut r = http.get(format!("{base}{path}"));
        if let Some(k) = key {
            r = r.header("api-key", k);
        }
        r.send()
    };
    let post = |path: &str| http.post(format!("{base}{path}")).header("api-key", "admin-key").send();

    for key in [None, Some("event-key"), Some("admin-ke")] {
        let r = get("/v1/admin/plugins", key).await.unwrap();
        assert_eq!(r.status(), 401, "{key:?}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "unauthorized");
    }

    let list: Value = get("/v1/admin/plugins", Some("admin-key")).await.unwrap().json().await.unwrap();
    let names: Vec<&str> = list["plugins"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["probe", "threats"]);
    assert_eq!(list["plugins"][1]["kind"], "heuristic");
    assert_eq!(list["plugins"][1]["state"], "active");
    assert_eq!(list["plugins"][1]["sha256"].as_str().unwrap().len(), 64);

    // Rollback without a previous version, and of an unknown plugin.
    let r = post("/v1/admin/plugins/probe/rollback").await.unwrap();
    assert_eq!(r.status(), 409);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "no_previous_version");
    assert_eq!(post("/v1/admin/plugins/nope/rollback").await.unwrap().status(), 404);

    // A new version through reload, then rollback.
    dir.install_with("probe", |m| set_key(&set_key(&m, "version", "\"2.0.0\""), "tag", "\"v2\""));
    let reload: Value = post("/v1/admin/plugins/reload").await.unwrap().json().await.unwrap();
    assert!(reload["outcomes"].as_array().unwrap().iter().any(|o| o["plugin"] == "probe" && o["outcome"] == "loaded"));
    assert_eq!(reload["failed"], 0);
    let rolled: Value = post("/v1/admin/plugins/probe/rollback").await.unwrap().json().await.unwrap();
    assert_eq!(rolled["version"], "1.0.0");

    // Disable stops calls; enable resumes them.
    let off: Value = post("/v1/admin/plugins/threats/disable").await.unwrap().json().await.unwrap();
    assert_eq!(off["state"], "disabled");
    let events = palisade_plugins::to_wit(&[palisade_core::Event::sample("i will kill you")]);
    assert!(host.get("threats").unwrap().score(&events).is_err());
    assert_eq!(
        palisade_plugins::rules::score(&host, &[palisade_core::Event::sample("i will kill you")])[0].category,
        "LOW_RISK"
    );
    post("/v1/admin/plugins/threats/enable").await.unwrap();
    assert_eq!(
        palisade_plugins::rules::score(&host, &[palisade_core::Event::sample("i will kill you")])[0].category,
        "VIOLENCE"
    );

    let metrics = get("/metrics", None).await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"palisade_plugin_calls_total{plugin="threats"} 1"#), "{metrics}");
    assert!(metrics.contains(r#"palisade_plugin_reloads_total{outcome="rolled_back",plugin="probe"} 1"#), "{metrics}");
    let ready: Value = get("/ready", None).await.unwrap().json().await.unwrap();
    assert_eq!(ready["ready"], true);
}
