//! Screening with the real model and an example bank built from the labelled dev
//! data: held-out clear spam and abuse route to the reasoning queue's side (risk
//! above the threshold), held-out benign messages stay low. Rows of the held-out
//! fold are never in the bank. This is the seed's weighted scoring
//! (`SCORING=weighted`); the trained classifier has its own tests (`classifier.rs`).

use palisade_detect::embed::{Device, Embedder};
use palisade_detect::vectors::bank::{Labelled, import, read};
use palisade_detect::vectors::flat::FlatStore;
use palisade_tests::{Service, fold_of, model_files, repo_data};
use serde_json::{Value, json};

const FOLDS: u64 = 5;

async fn screen(s: &Service, rows: &[&Labelled]) -> Vec<Value> {
    let events: Vec<Value> = rows
        .iter()
        .map(|r| json!({"event_id": r.id, "event_type": "message", "platform": "web", "user_id": "u", "content": r.text}))
        .collect();
    let r = reqwest::Client::new()
        .post(format!("{}/v1/risk/screen-batch", s.screen_base))
        .header("api-key", "test-key")
        .json(&json!({ "events": events }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["predictions"].as_array().unwrap().clone()
}

fn share_high(predictions: &[Value]) -> f64 {
    predictions.iter().filter(|p| p["high_risk"] == true).count() as f64 / predictions.len() as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_spam_and_abuse_route_high_and_benign_messages_low() {
    let rows = read(&[repo_data("sms-spam.dev.jsonl"), repo_data("davidson-hate-offensive.dev.jsonl")]).unwrap();
    let (held_out, bank): (Vec<Labelled>, Vec<Labelled>) = rows.into_iter().partition(|r| fold_of(&r.id, FOLDS) == 0);
    // A bank of up to 300 rows per label from the other folds (embedding runs ~140 texts/s here).
    let mut per_label = std::collections::HashMap::<String, usize>::new();
    let bank: Vec<Labelled> = bank
        .into_iter()
        .filter(|r| {
            let n = per_label.entry(r.label.clone()).or_default();
            *n += 1;
            *n <= 300
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    {
        let (model, lib) = model_files();
        let embedder = Embedder::load(&model, &lib, Device::Cpu, 32, "").unwrap();
        let store = FlatStore::open(&dir.path().join("exemplars.vec")).unwrap();
        import(&embedder, &store, bank).unwrap();
    }
    let s = Service::both(&[("VECTOR_DIR", dir.path().to_str().unwrap()), ("SCORING", "weighted")]).await;
    let pick = |label: &str, must: &[&str], n: usize| -> Vec<&Labelled> {
        held_out
            .iter()
            .filter(|r| r.label == label && must.iter().any(|m| r.text.to_lowercase().contains(m)))
            .take(n)
            .collect()
    };
    let spam = pick("SPAM", &["claim", "prize", "won", "winner", "urgent"], 40);
    let abuse = pick("TOXIC", &["bitch", "fuck", "hoe"], 40);
    let benign: Vec<&Labelled> = held_out.iter().filter(|r| r.label == "LOW_RISK").take(200).collect();
    assert!(spam.len() >= 20 && abuse.len() >= 20, "not enough held-out examples");
    let spam_p = screen(&s, &spam).await;
    let abuse_p = screen(&s, &abuse).await;
    let benign_p = screen(&s, &benign).await;
    assert!(spam_p.iter().all(|p| !p["similar"].as_array().unwrap().is_empty() && p["model_id"] == "all-MiniLM-L6-v2"));
    assert!(share_high(&spam_p) >= 0.8, "clear spam routed high: {:.2}", share_high(&spam_p));
    assert!(share_high(&abuse_p) >= 0.8, "clear abuse routed high: {:.2}", share_high(&abuse_p));
    assert!(share_high(&benign_p) <= 0.05, "benign routed high: {:.2}", share_high(&benign_p));
    let spam_cat = spam_p.iter().filter(|p| p["category"] == "SPAM").count();
    assert!(spam_cat * 10 >= spam_p.len() * 8, "{spam_cat} of {} spam categorised SPAM", spam_p.len());
}
