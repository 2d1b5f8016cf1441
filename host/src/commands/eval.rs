//! `palisade eval`: the screening stages over labelled files, scored per category.

use super::{embedder, open_offline};
use crate::config::Config;
use anyhow::bail;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Labelled files to evaluate.
    files: Vec<PathBuf>,
    /// Build the example bank from these files instead of k-fold over the evaluated ones.
    #[arg(long)]
    bank: Vec<PathBuf>,
    /// Folds (k-fold: each row is compared only with the other folds).
    #[arg(long, default_value_t = 5)]
    folds: usize,
    /// Evaluate only the first N rows (after a deterministic shuffle).
    #[arg(long)]
    limit: Option<usize>,
    /// Also score with this trained classifier (one not trained on FILES).
    #[arg(long, conflicts_with = "train")]
    classifier: Option<PathBuf>,
    /// Also train a classifier per fold on the other folds (palisade train's
    /// defaults) and score each row with the one that never saw it.
    #[arg(long)]
    train: bool,
    /// Skip the embedding stage (rules and classifier only; fast).
    #[arg(long)]
    no_embedding: bool,
}

pub fn run(config: &Config, args: Args) -> anyhow::Result<()> {
    let Args { files, bank, folds, limit, classifier, train, no_embedding } = args;
    if files.is_empty() {
        bail!("name one or more labelled JSONL files");
    }
    let mut rows = palisade_detect::vectors::bank::read(&files)?;
    if let Some(n) = limit {
        // Deterministic shuffle by id hash, so a limit samples every label.
        rows.sort_by_key(|r| palisade_detect::classify::row_hash(&r.id));
        rows.truncate(n);
    }
    let bank_rows = if bank.is_empty() { None } else { Some(palisade_detect::vectors::bank::read(&bank)?) };
    let host = open_offline(config, None)?;
    let embedder = if no_embedding { None } else { Some(embedder(config)?) };
    let classifier = classifier
        .map(|dir| {
            anyhow::Ok(palisade_detect::classify::Classifier::new(palisade_detect::classify::Artifact::load(
                &dir, None,
            )?))
        })
        .transpose()?;
    if let Some(c) = &classifier {
        println!(
            "classifier {} (trained on {:?})",
            c.meta.version,
            c.meta.training.iter().map(|f| &f.path).collect::<Vec<_>>()
        );
    }
    let policy = config.decision_policy();
    if classifier.is_some() || train {
        let c = &config.classifier;
        println!(
            "CASCADE_BAND {},{} · CASCADE_KNN_WEIGHT {} · RULE_OVERRIDE_MIN_RISK {} · SCREENING_THRESHOLD {}",
            c.band.low, c.band.high, c.knn_weight, c.rule_override_min_risk, config.screening.threshold
        );
    }
    let train_per_fold = match train {
        true => Some(palisade_detect::classify::train::TrainSettings {
            toxicity: super::toxicity_model(config)?,
            ..Default::default()
        }),
        false => None,
    };
    let out = crate::eval::run(crate::eval::EvalInput {
        rows,
        bank: bank_rows,
        folds,
        k: config.screening.similar_k,
        policy,
        plugins: &host,
        embedder: embedder.as_ref(),
        classifier: classifier.as_ref(),
        train_per_fold,
        cascade_band: config.classifier.band,
        knn_weight: config.classifier.knn_weight,
        ann: config.vectors.ann(),
    })?;
    for (name, predicted) in &out.variants {
        println!("{}", palisade_detect::scores::report(name, &out.truth, predicted));
    }
    if !out.categories.is_empty() {
        println!("the classifier's ranking per category (PR-AUC of its probability; the threshold it decides with)");
        for c in &out.categories {
            let t: Vec<String> = c.thresholds.iter().map(|t| format!("{t:.3}")).collect();
            println!("  {:<20} PR-AUC {:.3}   threshold {}", c.category, c.pr_auc, t.join(" / "));
        }
    }
    println!("rule faults (their verdicts are missing from the figures above): {}", host.fault_summary());
    Ok(())
}
