//! Capability grants and the host functions of WIT 0.1.1, with real built
//! plugins, the real classifier, model and Redis: a component importing a
//! function its manifest does not grant is refused naming the import (the old
//! version serving); a component built against `palisade:plugin@0.1.0` still
//! loads; `similar`, `classify` and `labels` answer what the host holds; labels
//! expire; and the first-party `repeat-offender` rule routes a labelled author's
//! borderline message to review through the HTTP API, with the label in the
//! prediction and every label change in the audit trail. When the label store
//! cannot answer, the verdict says it is `degraded`.

use palisade::entity_labels::EntityLabel;
use palisade_core::Event;
use palisade_plugins::rules;
use palisade_tests::{PluginDir, Service, bank, default_classifier, manifest, model_files, set_key, unique_prefix};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

fn event(user: &str, text: &str) -> Event {
    Event { user_id: user.into(), author_id: None, ..Event::sample(text) }
}

/// The hits a plugin gave one event, by rule name.
fn hit<'a>(r: &'a rules::RuleResult, rule: &str) -> &'a str {
    r.verdicts.iter().flat_map(|v| &v.hits).find(|h| h.rule == rule).and_then(|h| h.detail.as_deref()).unwrap_or("")
}

#[test]
fn an_ungranted_import_is_refused_naming_it_and_the_old_version_keeps_serving() {
    let dir = PluginDir::new();
    dir.install("repeat-offender");
    let (host, _) = dir.open();
    let info = host.get("repeat-offender").unwrap().info();
    let caps: Vec<&str> = info.capabilities.iter().map(|c| c.as_str()).collect();
    assert_eq!(caps, ["log", "config", "classify", "labels"], "the grants are listed");

    // 0.2.0's manifest takes `classify` away; the component still imports it.
    let narrowed = set_key(&manifest("repeat-offender"), "capabilities", r#"["log", "config", "labels"]"#);
    let narrowed = set_key(&narrowed, "version", "\"0.2.0\"");
    let err = palisade_plugins::install::install(
        &dir.runtime,
        &dir.path(),
        &palisade_tests::wasm("repeat-offender"),
        &narrowed,
    )
    .map(|_| ())
    .unwrap_err()
    .to_string();
    assert!(err.contains("palisade:plugin/host@0.1.1#classify") && err.contains("`classify` capability"), "{err}");

    // Written by hand past `install`: refused at load, 0.1.0 serving.
    let sha = palisade_plugins::runtime::sha256_hex(&palisade_tests::wasm("repeat-offender"));
    std::fs::write(dir.path().join("repeat-offender.toml"), format!("sha256 = \"{sha}\"\n{narrowed}")).unwrap();
    host.reload(false);
    let info = host.get("repeat-offender").unwrap().info();
    assert_eq!(info.version.as_deref(), Some("0.1.0"));
    let error = info.load_error.unwrap();
    assert!(error.contains("#classify"), "the refusal names the import: {error}");
}

#[test]
fn a_component_built_against_wit_0_1_0_still_loads_and_scores() {
    let dir = PluginDir::new();
    let version = dir.install("compat-0-1-0");
    let imports = palisade_plugins::capabilities::imported(dir.runtime.engine(), &{
        dir.runtime.component(&palisade_tests::wasm("compat-0-1-0"), &version.sha256).unwrap().0
    });
    assert!(imports.iter().all(|(i, _)| i.starts_with("palisade:plugin/host@0.1.0#")), "{imports:?}");
    let (host, _) = dir.open();
    let results = rules::score(&host, &[Event::sample("compat check"), Event::sample("nothing here")]);
    assert!(results[0].failed.is_empty(), "{:?} {:?}", results[0].failed, host.list());
    assert_eq!(results[0].verdicts[0].plugin, "compat-0-1-0");
    assert!((results[0].score - 0.8).abs() < 1e-6, "{}", results[0].score);
    assert!(results[1].verdicts.is_empty());
}

/// A screener lending a real classifier and a bank of labelled examples.
fn core_with(
    dir: &PluginDir,
    vectors: &std::path::Path,
) -> (Arc<palisade::app::Process>, Arc<palisade::screening::Screener>) {
    let (model, lib) = model_files();
    let raw = std::collections::BTreeMap::from([
        ("PLUGIN_DIR".to_string(), dir.path().display().to_string()),
        ("SCREENING_MODEL".into(), model.display().to_string()),
        ("ORT_DYLIB_PATH".into(), lib.display().to_string()),
        ("VECTOR_DIR".into(), vectors.display().to_string()),
        ("CLASSIFIER_DIR".into(), default_classifier().display().to_string()),
        ("CLASSIFIER_WATCH".into(), "false".into()),
        ("PLUGIN_WATCH".into(), "false".into()),
        ("REDIS_KEY_PREFIX".into(), unique_prefix()),
    ]);
    let core = Arc::new(palisade::app::Process::start(palisade::config::Config::from_map(&raw).unwrap()).unwrap());
    let screener = Arc::new(core.screener().unwrap());
    screener.lend_to_plugins();
    (core, screener)
}

#[test]
fn similar_classify_and_labels_answer_what_the_host_holds_and_labels_expire() {
    let dir = PluginDir::new();
    dir.install("lend-echo");
    let vectors = bank(&[
        ("ex-threat", "VIOLENCE", "I am going to hurt you badly"),
        ("ex-spam", "SPAM", "win a free prize now, click the link"),
        ("ex-hello", "LOW_RISK", "good morning everyone"),
    ]);
    let (core, screener) = core_with(&dir, vectors.path());
    let now = palisade_core::now_ms();
    let label = |entity: &str, name: &str, expires_at_ms| EntityLabel {
        entity: entity.into(),
        label: name.into(),
        source: "reviewer".into(),
        reason: "test".into(),
        expires_at_ms,
        set_at_ms: now,
        set_by: "test".into(),
    };
    core.entity_labels.set(&label("user:troll", "repeat-offender", None)).unwrap();
    core.entity_labels.set(&label("user:troll", "muted", Some(now + 700))).unwrap();

    let events = [event("troll", "claim your free prize, click now"), event("someone", "good morning all")];
    let results = rules::score(&core.plugins, &events);
    // similar: the bank's nearest examples, as the host's own search finds them.
    let near = hit(&results[0], "similar");
    assert!(near.starts_with("ex-spam=SPAM="), "{near}");
    assert_eq!(near.split(';').count(), 2, "k = 2: {near}");
    assert!(hit(&results[1], "similar").starts_with("ex-hello=LOW_RISK="));
    // classify: the classifier's probabilities for the text alone, every category.
    let classifier = palisade_detect::classify::Classifier::new(
        palisade_detect::classify::artifact::Artifact::load(&default_classifier(), None).unwrap(),
    );
    let expected = classifier.score(&events[0].content, &rules::RuleResult::none());
    let lent = hit(&results[0], "classify");
    for (name, p) in palisade_detect::classify::CATEGORIES.iter().zip(expected.scores) {
        assert!(lent.contains(&format!("{name}={p:.4}")), "{name}: {lent}");
    }
    // labels: what the store holds, and the labels the verdict rested on in the rule result.
    assert_eq!(hit(&results[0], "labels"), "user:troll=muted;user:troll=repeat-offender");
    assert_eq!(hit(&results[1], "labels"), "");
    let used: Vec<&str> = results[0].labels.iter().map(|l| l.label.as_str()).collect();
    assert_eq!(used, ["muted", "repeat-offender"]);
    assert!(results[1].labels.is_empty());

    // The hash lives as long as its longest label (one never expires: no TTL);
    // the expiring label is gone once its time has passed.
    std::thread::sleep(Duration::from_millis(800));
    let results = rules::score(&core.plugins, &events[..1]);
    assert_eq!(hit(&results[0], "labels"), "user:troll=repeat-offender");
    core.entity_labels.remove("user:troll", "repeat-offender").unwrap();
    core.entity_labels.set(&label("user:brief", "muted", Some(palisade_core::now_ms() + 60_000))).unwrap();
    let mut redis = redis::Client::open("redis://127.0.0.1:6379").unwrap().get_connection().unwrap();
    let key = format!("{}labels:user:brief", core.config.redis.key_prefix);
    let ttl: i64 = redis::cmd("PTTL").arg(&key).query(&mut redis).unwrap();
    assert!((1..=60_000).contains(&ttl), "the hash expires with its label: {ttl}");
    drop(screener);
}

/// A label store that cannot answer (its Redis hangs) is not silence: the rule
/// scores without labels, and the verdict is `degraded`, flagged
/// `host_unavailable:repeat-offender`, until Redis answers again.
#[test]
fn a_label_store_that_cannot_answer_leaves_the_verdict_degraded() {
    let redis = palisade_tests::OwnRedis::start();
    let dir = PluginDir::new();
    dir.install("repeat-offender");
    let raw = std::collections::BTreeMap::from([
        ("PLUGIN_DIR".to_string(), dir.path().display().to_string()),
        ("PLUGIN_WATCH".into(), "false".into()),
        ("SCREENING_MODEL".into(), "none".into()),
        ("SCORING".into(), "weighted".into()),
        ("CLASSIFIER_DIR".into(), "none".into()),
        ("REDIS_URL".into(), redis.url()),
        ("REDIS_TIMEOUT_MS".into(), "200".into()),
    ]);
    let core = palisade::app::Process::start(palisade::config::Config::from_map(&raw).unwrap()).unwrap();
    let screener = core.screener().unwrap();
    let screen = || screener.screen(vec![event("troll", "you again? nobody wants you here")]).remove(0);
    let whole = screen();
    assert!(whole.degraded.is_empty() && !whole.flags.iter().any(|f| f == "degraded"), "{:?}", whole.flags);

    redis.pause();
    let short = screen();
    redis.resume();
    assert_eq!(short.degraded, ["repeat-offender"], "{:?}", short.flags);
    for flag in ["degraded", "host_unavailable:repeat-offender"] {
        assert!(short.flags.iter().any(|f| f == flag), "{flag} not in {:?}", short.flags);
    }
    // Redis answers again: whole again (the store reconnects on its next call).
    palisade_tests::wait_until(Duration::from_secs(5), || screen().degraded.is_empty(), "a whole verdict");
}

#[test]
fn time_in_host_functions_is_not_charged_to_the_plugins_deadline() {
    // A 5 ms deadline, and a batch whose `similar` call embeds 24 new texts
    // (tens of milliseconds of model time on two cores).
    let dir = PluginDir::new();
    dir.install_with("lend-echo", |m| set_key(&m, "deadline_ms", "5"));
    let vectors = bank(&[("ex-hello", "LOW_RISK", "good morning everyone")]);
    let (core, _screener) = core_with(&dir, vectors.path());
    let events: Vec<Event> =
        (0..24).map(|i| event(&format!("u{i}"), &format!("message number {i} about topic {}", i * 7))).collect();
    let started = std::time::Instant::now();
    let results = rules::score(&core.plugins, &events);
    let took = started.elapsed();
    assert!(took > Duration::from_millis(10), "the host work is longer than the deadline: {took:?}");
    assert!(results[0].failed.is_empty(), "not a timeout: {:?}", results[0].failed);
    assert!(results.iter().all(|r| hit(r, "similar").starts_with("ex-hello=LOW_RISK=")));
}

async fn call(http: &reqwest::Client, method: reqwest::Method, url: String, body: Option<Value>) -> (u16, Value) {
    let mut r = http.request(method, url).header("api-key", "admin-key");
    if let Some(b) = body {
        r = r.json(&b);
    }
    let response = r.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeat_offenders_borderline_message_goes_to_review_and_label_changes_are_audited() {
    let svc = Service::both(&[]).await;
    let http = reqwest::Client::new();
    let post = reqwest::Method::POST;
    // A veiled threat: the classifier finds it borderline (risk ≈ 0.35) and lets it pass.
    let text = "you will regret this";
    let screen = |user: &'static str| {
        let http = http.clone();
        let url = format!("{}/v1/risk/screen", svc.screen_base);
        async move {
            let body = json!({
                "event_id": format!("e-{user}"), "event_type": "message", "platform": "web", "user_id": user, "content": text,
            });
            let r = http.post(url).header("api-key", "test-key").json(&body).send().await.unwrap();
            r.json::<Value>().await.unwrap()
        }
    };
    let before = screen("troll").await;
    assert_eq!(before["high_risk"], false, "borderline without the label: {before}");

    // Bad requests say what is wrong.
    let labels = format!("{}/v1/labels", svc.screen_base);
    let (code, body) =
        call(&http, post.clone(), labels.clone(), Some(json!({ "entity": "user:troll", "label": "x" }))).await;
    assert_eq!((code, body["error"].as_str()), (400, Some("invalid_json")), "{body}");
    let bad = json!({ "entity": "user troll", "label": "repeat-offender", "reason": "r" });
    let (code, body) = call(&http, post.clone(), labels.clone(), Some(bad)).await;
    assert_eq!((code, body["details"]["field"].as_str()), (422, Some("entity")), "{body}");
    let r = http.post(&labels).json(&json!({})).send().await.unwrap();
    assert_eq!(r.status(), 401, "labels need the admin key");

    let new = json!({ "entity": "user:troll", "label": "repeat-offender", "reason": "3 upheld reports", "source": "reviewer", "expires_in_s": 3600 });
    let (code, body) = call(&http, post.clone(), labels.clone(), Some(new)).await;
    assert_eq!(code, 201, "{body}");
    let after = screen("troll").await;
    assert_eq!(after["high_risk"], true, "the repeat offender's bar is lower: {after}");
    assert_ne!(after["category"], "LOW_RISK");
    assert_eq!(after["labels"][0]["label"], "repeat-offender", "the prediction names the label: {after}");
    let other = screen("newcomer").await;
    assert_eq!(other["high_risk"], false, "{other}");
    assert!(other.get("labels").is_none());

    let (code, body) = call(&http, reqwest::Method::GET, format!("{labels}/user:troll"), None).await;
    assert_eq!((code, body["labels"][0]["reason"].as_str()), (200, Some("3 upheld reports")), "{body}");
    // Appeal: removing needs a reason.
    let url = format!("{labels}/user:troll/repeat-offender");
    let (code, body) = call(&http, reqwest::Method::DELETE, url.clone(), None).await;
    assert_eq!((code, body["error"].as_str()), (422, Some("reason_required")), "{body}");
    let (code, _) = call(&http, reqwest::Method::DELETE, format!("{url}?reason=appeal%20upheld"), None).await;
    assert_eq!(code, 200);
    let (code, body) = call(&http, reqwest::Method::DELETE, format!("{url}?reason=again"), None).await;
    assert_eq!((code, body["error"].as_str()), (404, Some("label_not_found")));
    assert_eq!(screen("troll").await["high_risk"], false, "the label is gone");

    // Both changes are in the audit trail, with the admin key's id and the reasons.
    let mut audit = Vec::new();
    for _ in 0..50 {
        let (_, body) = call(&http, reqwest::Method::GET, format!("{}/v1/admin/audit", svc.screen_base), None).await;
        audit = body["entries"].as_array().cloned().unwrap_or_default();
        if audit.iter().filter(|e| e["action"].as_str().is_some_and(|a| a.starts_with("label_"))).count() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let set = audit.iter().find(|e| e["action"] == "label_set").expect("label_set audited");
    assert_eq!(
        (set["subject"].as_str(), set["detail"]["label"]["reason"].as_str()),
        (Some("user:troll"), Some("3 upheld reports"))
    );
    assert!(set["actor"].as_str().unwrap().starts_with("key:"));
    let removed = audit.iter().find(|e| e["action"] == "label_removed").expect("label_removed audited");
    assert_eq!(removed["detail"]["reason"], "appeal upheld");
    svc.stop.send(true).ok();
}
