//! The trained classifier as users meet it: `palisade train`'s library path on a
//! small fixture (deterministic; the same predictions after a reload), its
//! thresholds changing routing, corrupt and mismatched artifacts refused while the
//! loaded one keeps serving, a hot swap under concurrent screening, the embedding
//! head (trained with the real model, mixed into embedded events only, its file
//! checked), the cascade (only events in the band reach the embedder, counted),
//! and the default model
//! (`scripts/setup` trains it on `data/`) routing hand-written threats and
//! dehumanising generalisations to `events:reasoning_queue` while everyday
//! messages stay low.

use palisade_detect::classify::train::{self, ClassWeight, TrainSettings};
use palisade_detect::classify::{Artifact, CATEGORIES, Classifier, slot::Slot};
use palisade_tests::{Routers, Service, default_classifier, oneshot, repo_data};
use serde_json::{Value, json};
use std::path::Path;

/// A quick training run: SMS spam and the seed set, small grid.
fn train_fixture(out: &Path, c: f64) -> Artifact {
    let (examples, files) =
        train::read_examples(&[repo_data("sms-spam.dev.jsonl"), repo_data("palisade-seed.jsonl")], None)
            .expect("fixture rows");
    let settings = TrainSettings {
        folds: 2,
        c_grid: vec![c],
        class_weights: vec![ClassWeight::Balanced],
        max_iter: 60,
        cv_max_iter: 30,
        ..TrainSettings::default()
    };
    let mut trained = train::train(&examples, &settings, files, false, None).expect("training");
    trained.artifact.save(out).expect("saved");
    trained.artifact
}

fn post(uri: &str, key: &str, body: Value) -> axum::http::Request<axum::body::Body> {
    axum::http::Request::post(uri)
        .header("content-type", "application/json")
        .header("api-key", key)
        .body(axum::body::Body::from(body.to_string()))
        .unwrap()
}

fn event(id: &str, content: &str) -> Value {
    json!({"event_id": id, "event_type": "message", "platform": "web", "user_id": "u", "content": content})
}

async fn screen(r: &Routers, content: &str) -> Value {
    let (status, body) = oneshot(&r.screen, post("/v1/risk/screen", "test-key", event("e-1", content))).await;
    assert_eq!(status, 200, "{body}");
    body
}

#[test]
fn training_is_deterministic_and_a_reloaded_artifact_predicts_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let a = train_fixture(&dir.path().join("one"), 3.0);
    let b = train_fixture(&dir.path().join("two"), 3.0);
    assert_eq!(a.meta.version, b.meta.version, "same rows and settings, same weights");
    assert_eq!(a.meta.training.len(), 2);
    assert!(a.meta.training.iter().all(|f| f.sha256.len() == 64 && f.rows > 0));
    let cv = a.meta.cv.as_ref().expect("cross-validation figures");
    assert!(cv.categories["SPAM"].f1 > 0.85, "out-of-fold spam F1 {}", cv.categories["SPAM"].f1);
    let in_memory = Classifier::new(a);
    let reloaded = Classifier::new(Artifact::load(&dir.path().join("one"), None).unwrap());
    let rules = palisade_plugins::rules::RuleResult::none();
    for text in ["WINNER!! Claim your free prize now, text WIN to 80082", "see you at lunch", "Send me nudes right now"]
    {
        let (x, y) = (in_memory.score(text, &rules), reloaded.score(text, &rules));
        assert_eq!(x.scores, y.scores, "{text}");
        assert!((x.scores.iter().sum::<f32>() - 1.0).abs() < 1e-4);
    }
    assert_eq!(in_memory.score("WINNER!! Claim your free prize now, text WIN to 80082", &rules).category, "SPAM");
    assert_eq!(in_memory.score("see you at lunch tomorrow", &rules).category, "LOW_RISK");
}

#[test]
fn corrupt_and_mismatched_artifacts_are_refused_with_the_old_one_serving() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clf");
    let first = train_fixture(&path, 3.0);
    let slot = Slot::open(&path, None).unwrap();
    // A truncated weights file.
    let weights = path.join("weights.bin");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    let e = slot.reload().unwrap_err().to_string();
    assert!(e.contains("corrupt") && e.contains("sha256"), "{e}");
    assert_eq!(slot.get().meta.version, first.meta.version, "the old one keeps serving");
    assert!(slot.status()["last_error"].as_str().unwrap().contains("corrupt"));
    std::fs::write(&weights, &bytes).unwrap();
    // Trained for another embedding model than the configured one.
    let meta = path.join("classifier.json");
    let mut m: Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    m["embedding_model"] = json!("some-other-model");
    std::fs::write(&meta, m.to_string()).unwrap();
    let e = Artifact::load(&path, Some("all-MiniLM-L6-v2")).unwrap_err().to_string();
    assert!(e.contains("some-other-model") && e.contains("all-MiniLM-L6-v2"), "{e}");
    // Not a classifier at all, and a missing one.
    std::fs::write(&meta, "{}").unwrap();
    assert!(slot.reload().unwrap_err().to_string().contains("not a classifier description"));
    let e = Slot::open(&dir.path().join("nowhere"), None).err().unwrap().to_string();
    assert!(e.contains("palisade train"), "says how to get one: {e}");
    assert_eq!(slot.get().meta.version, first.meta.version);
}

/// `palisade train` with a model configured also fits the embedding head: the
/// artifact names the model, the head's say moves an embedded event's scores
/// (and only when a vector of its model is given), it survives a reload, and a
/// damaged `embedding.bin` is refused.
#[test]
fn the_embedding_head_is_trained_with_the_model_and_speaks_for_embedded_events() {
    let (examples, files) = train::read_examples(&[repo_data("sms-spam.dev.jsonl")], None).unwrap();
    // Every fourth row: enough to learn spam from, quick to embed.
    let examples: Vec<train::Example> = examples.into_iter().step_by(4).collect();
    let (model, lib) = palisade_tests::model_files();
    let embedder = palisade_detect::embed::Embedder::load(&model, &lib, palisade_detect::embed::Device::Cpu, 32, "")
        .expect("the model");
    let texts: Vec<&str> = examples.iter().map(|e| e.text.as_str()).collect();
    let vectors = embedder.embed(&texts).unwrap();
    let settings = TrainSettings {
        folds: 2,
        c_grid: vec![3.0],
        class_weights: vec![ClassWeight::Balanced],
        max_iter: 60,
        cv_max_iter: 30,
        ..TrainSettings::default()
    };
    let embeddings =
        train::Embeddings { model: embedder.model_id.clone(), vectors: vectors.iter().map(Vec::as_slice).collect() };
    let with_head = train::train(&examples, &settings, files.clone(), false, Some(&embeddings)).unwrap();
    let ngrams_only = train::train(&examples, &settings, files, false, None).unwrap();
    let meta = &with_head.artifact.meta;
    assert_eq!(meta.embedding_model.as_deref(), Some("all-MiniLM-L6-v2"));
    let head = meta.embedding_head.as_ref().expect("a head");
    assert_eq!(head.dim, 384);
    assert!(head.thresholds.contains_key("SPAM") && head.weighted_f1 > 0.8, "{head:?}");
    assert!(ngrams_only.artifact.meta.embedding_head.is_none());

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clf");
    let mut artifact = with_head.artifact.clone();
    artifact.save(&path).unwrap();
    assert!(path.join("embedding.bin").is_file());
    let (mut saved, mut plain) = (with_head.artifact, ngrams_only.artifact);
    saved.save(&dir.path().join("again")).unwrap();
    plain.save(&dir.path().join("plain")).unwrap();
    assert_eq!(saved.meta.version, artifact.meta.version, "deterministic");
    assert_ne!(saved.meta.version, plain.meta.version, "the head is part of the version");

    let reloaded = Classifier::new(Artifact::load(&path, Some("all-MiniLM-L6-v2")).unwrap());
    let in_memory = Classifier::new(artifact);
    let rules = palisade_plugins::rules::RuleResult::none();
    let text = "Congratulations! You have been chosen for a cash reward, reply YES to collect it";
    let vector = embedder.embed(&[text]).unwrap().remove(0);
    let ngram = reloaded.score(text, &rules);
    let (mut a, mut b) = (ngram.clone(), in_memory.score(text, &rules));
    reloaded.add_embedding(&mut a, &vector);
    in_memory.add_embedding(&mut b, &vector);
    assert_eq!(a.scores, b.scores, "the same after a reload");
    assert!(a.embedded && a.scores != ngram.scores, "the head moved the scores: {:?} -> {:?}", ngram.scores, a.scores);
    assert!((a.scores.iter().sum::<f32>() - 1.0).abs() < 1e-4);
    assert_eq!(a.category, "SPAM");
    let mut c = ngram.clone();
    reloaded.add_embedding(&mut c, &vector[..100]);
    assert!(!c.embedded && c.scores == ngram.scores, "a vector of another size is not read");

    let head_file = path.join("embedding.bin");
    let bytes = std::fs::read(&head_file).unwrap();
    std::fs::write(&head_file, &bytes[..bytes.len() - 8]).unwrap();
    let e = Artifact::load(&path, None).unwrap_err().to_string();
    assert!(e.contains("corrupt") && e.contains("embedding.bin"), "{e}");
    std::fs::remove_file(&head_file).unwrap();
    let e = Artifact::load(&path, None).unwrap_err().to_string();
    assert!(e.contains("embedding.bin"), "{e}");
}

#[tokio::test]
async fn predictions_carry_category_scores_and_thresholds_change_routing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clf");
    train_fixture(&path, 3.0);
    let r = Routers::new(&[("CLASSIFIER_DIR", path.to_str().unwrap())], &[]);
    let p = screen(&r, "see you at lunch tomorrow").await;
    assert_eq!((p["category"].as_str(), p["high_risk"].as_bool()), (Some("LOW_RISK"), Some(false)), "{p}");
    let scores = p["category_scores"].as_object().unwrap();
    assert_eq!(scores.len(), CATEGORIES.len());
    let sum: f64 = scores.values().map(|v| v.as_f64().unwrap()).sum();
    assert!((sum - 1.0).abs() < 1e-3, "{sum}");
    assert!((p["risk_score"].as_f64().unwrap() - (1.0 - scores["LOW_RISK"].as_f64().unwrap())).abs() < 1e-5);
    assert_eq!(p["scoring"], "classifier");

    // A threshold of 0 makes SEXUAL fire for anything: the same text now routes high.
    let meta = path.join("classifier.json");
    let mut m: Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    m["thresholds"]["SEXUAL"] = json!(0.0);
    std::fs::write(&meta, m.to_string()).unwrap();
    let (status, swap) = oneshot(&r.screen, post("/v1/admin/classifier/reload", "admin-key", json!({}))).await;
    assert_eq!((status, swap["outcome"].as_str()), (200, Some("reloaded")), "{swap}");
    let p = screen(&r, "see you at lunch tomorrow").await;
    assert_eq!((p["category"].as_str(), p["high_risk"].as_bool()), (Some("SEXUAL"), Some(true)), "{p}");
    let (status, swap) = oneshot(&r.screen, post("/v1/admin/classifier/reload", "admin-key", json!({}))).await;
    assert_eq!((status, swap["outcome"].as_str()), (200, Some("unchanged")), "{swap}");
    let (status, body) = oneshot(
        &r.screen,
        axum::http::Request::get("/v1/admin/classifier")
            .header("api-key", "test-key")
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (401, Some("unauthorized")), "an event key is not an admin key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_swap_under_concurrent_screening_loses_no_request_and_rolls_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clf");
    let v1 = train_fixture(&path, 3.0).meta.version;
    let r = std::sync::Arc::new(Routers::new(&[("CLASSIFIER_DIR", path.to_str().unwrap())], &[]));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut screeners = Vec::new();
    for t in 0..4 {
        let (r, stop) = (r.clone(), stop.clone());
        screeners.push(tokio::spawn(async move {
            let mut versions = std::collections::BTreeSet::new();
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || n < 5 {
                let events: Vec<Value> =
                    (0..20).map(|i| event(&format!("t{t}-{n}-{i}"), "claim your free prize now")).collect();
                let (status, body) =
                    oneshot(&r.screen, post("/v1/risk/screen-batch", "test-key", json!({ "events": events }))).await;
                assert_eq!(status, 200, "{body}");
                let predictions = body["predictions"].as_array().unwrap();
                assert_eq!(predictions.len(), 20);
                versions.extend(predictions.iter().map(|p| p["classifier_version"].as_str().unwrap().to_string()));
                n += 1;
            }
            versions
        }));
    }
    let v2 = tokio::task::spawn_blocking({
        let path = path.clone();
        move || train_fixture(&path, 10.0).meta.version
    })
    .await
    .unwrap();
    assert_ne!(v1, v2);
    let (status, swap) = oneshot(&r.screen, post("/v1/admin/classifier/reload", "admin-key", json!({}))).await;
    assert_eq!(status, 200);
    assert_eq!(swap, json!({"outcome": "reloaded", "from": v1, "to": v2}));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut seen = std::collections::BTreeSet::new();
    for s in screeners {
        seen.extend(s.await.unwrap());
    }
    assert!(seen.contains(&v2) && seen.iter().all(|v| *v == v1 || *v == v2), "{seen:?}");
    let (status, status_body) = oneshot(
        &r.screen,
        axum::http::Request::get("/v1/admin/classifier")
            .header("api-key", "admin-key")
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, status_body["version"].as_str(), status_body["previous_version"].as_str()),
        (200, Some(&*v2), Some(&*v1))
    );
    let (status, back) = oneshot(&r.screen, post("/v1/admin/classifier/rollback", "admin-key", json!({}))).await;
    assert_eq!((status, back["to"].as_str()), (200, Some(&*v1)), "{back}");
    assert_eq!(screen(&r, "hello there").await["classifier_version"], v1);
}

#[test]
fn the_cascade_embeds_only_events_in_its_band() {
    let texts = [
        "see you at lunch tomorrow",
        "WINNER!! Claim your free prize now, text WIN to 80082",
        "you are such an idiot lol",
        "call me when you get a chance, free tonight?",
        "urgent! your account has a message waiting",
        "I hate mondays",
        "the meeting moved to 3pm",
        "that film was sick",
    ];
    let events: Vec<palisade_core::Event> = texts.iter().map(|t| palisade_core::Event::sample(t)).collect();
    let plugins = palisade_tests::PluginDir::new();
    for p in palisade_tests::shipped() {
        plugins.install(&p);
    }
    let (model, lib) = palisade_tests::model_files();
    let bank = palisade_tests::bank(&[("b1", "SPAM", "claim your prize"), ("b2", "LOW_RISK", "lunch at noon")]);
    let screener = |cascade: &str| {
        let raw = std::collections::BTreeMap::from([
            ("PLUGIN_DIR".to_string(), plugins.path().display().to_string()),
            ("PLUGIN_WATCH".into(), "false".into()),
            ("SCREENING_MODEL".into(), model.display().to_string()),
            ("ORT_DYLIB_PATH".into(), lib.display().to_string()),
            ("VECTOR_DIR".into(), bank.path().display().to_string()),
            ("EMBEDDING_CACHE_TTL".into(), "0".into()),
            ("SIMILAR_EVENTS_K".into(), "0".into()),
            ("CLASSIFIER_DIR".into(), default_classifier().display().to_string()),
            ("CLASSIFIER_WATCH".into(), "false".into()),
            ("CASCADE".into(), cascade.into()),
            ("CASCADE_BAND".into(), "0.2,0.8".into()),
        ]);
        let core = palisade::app::Process::start(palisade::config::Config::from_map(&raw).unwrap()).unwrap();
        core.screener().unwrap()
    };
    let on = screener("on");
    let predictions = on.screen(events.clone());
    let embedded = on.metrics.stages.with_label_values(&["embedding"]).get();
    // Which events were in the band, by the classifier alone.
    let classifier = Classifier::new(Artifact::load(&default_classifier(), None).unwrap());
    let rules = palisade_plugins::rules::score(&on.plugins, &events);
    let in_band = events
        .iter()
        .zip(&rules)
        .filter(|(e, r)| (0.2..=0.8).contains(&classifier.score(&e.content, r).risk()))
        .count() as u64;
    assert_eq!(embedded, in_band, "only events in the band reach the embedder");
    assert!(in_band < events.len() as u64, "a band that holds every event tests nothing");
    assert_eq!(on.metrics.stages.with_label_values(&["classifier"]).get(), events.len() as u64);
    let flagged = predictions.iter().filter(|p| p.flags.iter().any(|f| f == "embedded")).count() as u64;
    assert_eq!(flagged, in_band);
    assert!(predictions.iter().filter(|p| p.flags.iter().any(|f| f == "embedded")).all(|p| !p.similar.is_empty()));
    let off = screener("off");
    off.screen(events.clone());
    assert_eq!(
        off.metrics.stages.with_label_values(&["embedding"]).get(),
        events.len() as u64,
        "CASCADE=off embeds all"
    );
}

/// Routed to which stream, by event id.
fn routes(s: &Service) -> std::collections::HashMap<String, &'static str> {
    use redis::Commands;
    let mut conn = s.redis();
    let mut out = std::collections::HashMap::new();
    for (stream, name) in [(&s.keys.reasoning, "reasoning_queue"), (&s.keys.low_risk, "low_risk")] {
        let reply: redis::streams::StreamRangeReply = conn.xrange_all(stream).unwrap();
        for e in reply.ids {
            let id: String = e.get("event_id").unwrap();
            out.insert(id, name);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_model_routes_threats_and_hate_high_and_everyday_messages_low() {
    // None of these texts is in data/ (the seed set's phrasings differ).
    let harmful = [
        "I'm going to bring a gun to school and shoot everyone",
        "Watch your back tomorrow, you won't make it home alive",
        "Muslims are all terrorists and should be banned",
        "I know where you live and I'm going to come over and stab you",
        "Tomorrow I will shoot every one of my coworkers",
        "Immigrants are rats and should all be deported",
        "Jews are a disease on this country",
    ];
    let everyday = [
        "kill the process, it's hanging",
        "this beat is sick",
        "the API reference is at https://docs.rs/serde/latest/serde/",
        "GOOOO TEAM!!! CHAMPIONS!!!",
        "can we move standup to 10?",
        "that last level murdered me lol",
        "I shot some photos at the lake today",
    ];
    let s = Service::both(&[]).await;
    let events: Vec<Value> = harmful
        .iter()
        .enumerate()
        .map(|(i, t)| event(&format!("harm-{i}"), t))
        .chain(everyday.iter().enumerate().map(|(i, t)| event(&format!("fine-{i}"), t)))
        .collect();
    assert_eq!(s.ingest_batch(&events).await.status(), 202);
    let started = std::time::Instant::now();
    let mut routed = routes(&s);
    while routed.len() < events.len() {
        assert!(started.elapsed().as_secs() < 30, "only {} of {} routed", routed.len(), events.len());
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        routed = routes(&s);
    }
    let wrong: Vec<String> = harmful
        .iter()
        .enumerate()
        .filter(|(i, _)| routed[&format!("harm-{i}")] != "reasoning_queue")
        .map(|(_, t)| format!("missed: {t}"))
        .chain(
            everyday
                .iter()
                .enumerate()
                .filter(|(i, _)| routed[&format!("fine-{i}")] != "low_risk")
                .map(|(_, t)| format!("flagged: {t}")),
        )
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviewer_labels_reach_the_stream_that_training_reads() {
    let s = Service::both(&[]).await;
    let http = reqwest::Client::new();
    let send = |body: Value| {
        http.post(format!("{}/v1/admin/labels", s.screen_base)).header("api-key", "admin-key").json(&body).send()
    };
    let rows = json!({"labels": [
        {"id": "r-1", "text": "limited offer, reply YES for cash", "label": "SPAM", "reviewer": "alice"},
        {"id": "r-2", "text": "see you at the game", "label": "LOW_RISK", "reviewer": "bob"},
        {"id": "r-1", "text": "limited offer, reply YES for cash", "label": "LOW_RISK", "reviewer": "carol"}
    ]});
    let r = send(rows).await.unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.json::<Value>().await.unwrap()["appended"], 3);
    // A row with an unknown category refuses the whole request, naming the row.
    let r = send(json!({"labels": [
        {"id": "r-3", "text": "fine", "label": "LOW_RISK"},
        {"id": "r-4", "text": "hmm", "label": "RUDE"}
    ]}))
    .await
    .unwrap();
    assert_eq!(r.status(), 422);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (body["error"].as_str(), body["details"]["index"].as_u64()),
        (Some("validation_failed"), Some(1)),
        "{body}"
    );
    // An event key may not label.
    let r = http
        .post(format!("{}/v1/admin/labels", s.screen_base))
        .header("api-key", "test-key")
        .json(&json!({"labels": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // What `palisade train --from-stream` reads: two rows, the later label of r-1 winning.
    let read =
        palisade_streams::labels::read_all(&palisade_streams::Target::new(&s.redis_url, &[]), &s.keys.labels).unwrap();
    let got: Vec<(&str, &str, &str)> =
        read.iter().map(|r| (r.id.as_str(), r.label.as_str(), r.reviewer.as_str())).collect();
    assert_eq!(got, [("r-1", "LOW_RISK", "carol"), ("r-2", "LOW_RISK", "bob")]);
}

/// `palisade eval --train`: each row is scored by a classifier trained on the other
/// folds only. Every row has a made-up word of its own and a label drawn at random:
/// a model trained on the row ranks it by its label, one that never saw it does no
/// better than chance (PR-AUC, as thresholds fitted on chance-level data say little).
#[test]
fn eval_with_train_scores_every_row_by_a_model_that_never_saw_it() {
    // Word and label from SHA-256 of different strings: unrelated to each other.
    let digest = |s: String| -> [u8; 32] { <sha2::Sha256 as sha2::Digest>::digest(s.as_bytes()).into() };
    let word =
        |i: u64| -> String { digest(format!("word {i}"))[..7].iter().map(|b| (b'a' + b % 26) as char).collect() };
    let rows: Vec<palisade_detect::vectors::bank::Labelled> = (0..300u64)
        .map(|i| {
            let label = if digest(format!("label {i}"))[0] % 2 == 0 { "SPAM" } else { "LOW_RISK" };
            palisade_detect::vectors::bank::Labelled {
                id: format!("r{i}"),
                text: format!("a note about {} for you", word(i)),
                label: label.into(),
                source: "random".into(),
            }
        })
        .collect();
    let plugins = palisade_tests::PluginDir::new();
    let (host, _) = plugins.open();
    let settings =
        TrainSettings { c_grid: vec![10.0], class_weights: vec![ClassWeight::Balanced], ..Default::default() };
    let input = |classifier, train_per_fold| palisade::eval::EvalInput {
        rows: rows.clone(),
        bank: None,
        folds: 3,
        k: 5,
        policy: palisade_detect::predict::DecisionPolicy::default(),
        plugins: &host,
        embedder: None,
        classifier,
        train_per_fold,
        cascade_band: palisade::config::Band { low: 0.25, high: 0.75 },
        knn_weight: 0.3,
        ann: None,
    };
    // How well the classifier's SPAM probability ranks the rows (chance: the share of SPAM).
    let spam = |out: &palisade::eval::EvalOutput| {
        out.categories.iter().find(|c| c.category == "SPAM").map(|c| (c.pr_auc, c.thresholds.len())).expect("SPAM")
    };
    let per_fold = palisade::eval::run(input(None, Some(settings.clone()))).unwrap();
    assert!(per_fold.variants.iter().any(|(n, _)| *n == "classifier (one trained per fold)"));
    let (held_out, models) = spam(&per_fold);
    let examples: Vec<train::Example> = rows
        .iter()
        .map(|r| train::Example {
            id: r.id.clone(),
            text: r.text.clone(),
            label: palisade_detect::classify::category_index(&r.label).unwrap() as u8,
            source: r.source.clone(),
            rules: [0.0; palisade_detect::classify::RULE_FEATURES],
        })
        .collect();
    let everything = Classifier::new(train::train(&examples, &settings, Vec::new(), true, None).unwrap().artifact);
    let (in_sample, _) = spam(&palisade::eval::run(input(Some(&everything), None)).unwrap());
    let share = rows.iter().filter(|r| r.label == "SPAM").count() as f64 / rows.len() as f64;
    eprintln!("SPAM share {share:.3}; PR-AUC in sample {in_sample:.3}, held out {held_out:.3}");
    assert!(in_sample > 0.9, "a model trained on the rows fits them: {in_sample:.3}");
    assert!(held_out < share + 0.15, "held-out rows are ranked no better than chance ({share:.3}): {held_out:.3}");
    assert!((1..=3).contains(&models), "one threshold per fold's model at most: {models}");
}
