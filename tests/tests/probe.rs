//! The probe (`tests/data/probe.jsonl`): hand-written messages, benign ones with
//! edgy words and clearly harmful ones in every category, that detection is
//! measured on (`palisade eval tests/data/probe.jsonl`) and never trained on.
//! These tests keep it that way: it is in no training file, no training row
//! shares an 8-word run with it, and it covers what it claims to.

use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn rows(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Lower-case words of letters and digits.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

/// Every run of 8 words (the whole text when it is shorter).
fn shingles(text: &str) -> Vec<String> {
    let w = words(text);
    if w.len() < 8 { vec![w.join(" ")] } else { w.windows(8).map(|s| s.join(" ")).collect() }
}

fn training_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("data"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "the training files in data/: {files:?}");
    files
}

#[test]
fn no_training_row_shares_an_eight_word_run_with_the_probe() {
    let probe: HashSet<String> = rows(&root().join("tests/data/probe.jsonl"))
        .iter()
        .flat_map(|r| shingles(r["text"].as_str().unwrap()))
        .collect();
    let mut shared = Vec::new();
    for file in training_files() {
        for row in rows(&file) {
            let text = row["text"].as_str().unwrap_or_default();
            if shingles(text).iter().any(|s| probe.contains(s)) {
                shared.push(format!("{}: {}", file.display(), row["id"]));
            }
        }
    }
    assert!(shared.is_empty(), "training rows that overlap the probe: {shared:?}");
}

#[test]
fn the_probe_has_benign_and_harmful_messages_in_every_category() {
    let probe = rows(&root().join("tests/data/probe.jsonl"));
    let mut by_label: BTreeMap<String, usize> = BTreeMap::new();
    for r in &probe {
        *by_label.entry(r["label"].as_str().unwrap().to_string()).or_default() += 1;
        assert_eq!(r["source"], "palisade-probe", "{r}");
    }
    assert!(probe.len() >= 60, "{} messages", probe.len());
    assert!(by_label["LOW_RISK"] >= 30, "{by_label:?}");
    for c in ["SPAM", "TOXIC", "TARGETED_HARASSMENT", "HATE_SPEECH", "VIOLENCE", "SEXUAL"] {
        assert!(by_label.get(c).copied().unwrap_or(0) >= 4, "{c}: {by_label:?}");
    }
}

#[test]
fn the_shingle_check_catches_a_copied_row() {
    let probe = rows(&root().join("tests/data/probe.jsonl"));
    let text = probe[40]["text"].as_str().unwrap();
    let copied = format!("rt @someone: {}!!", text.to_uppercase());
    let probe_runs: HashSet<String> = shingles(text).into_iter().collect();
    assert!(shingles(&copied).iter().any(|s| probe_runs.contains(s)), "{copied}");
}
