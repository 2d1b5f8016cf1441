//! `palisade train`: the classifier from labelled files (and reviewer labels),
//! with its cross-validated report and out-of-fold figures per source.

use super::{embedder, open_offline};
use crate::config::Config;
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The arguments of `palisade train`.
#[derive(clap::Args)]
pub struct Args {
    /// Labelled files to train on.
    pub files: Vec<PathBuf>,
    /// The artifact folder (replaced whole when it exists).
    #[arg(long)]
    pub out: PathBuf,
    /// A team's own labelled files, added to FILES.
    #[arg(long)]
    pub add: Vec<PathBuf>,
    /// Also the reviewer labels in the `events:labels` stream (REDIS_URL, REDIS_KEY_PREFIX),
    /// saved beside the artifact as OUT.labels.jsonl (the file the model records).
    #[arg(long)]
    pub from_stream: bool,
    /// Cross-validation folds (choosing C and class weights, calibrating thresholds).
    #[arg(long, default_value_t = 3)]
    pub folds: usize,
    /// Values of the inverse regularisation strength C to try.
    #[arg(long, value_delimiter = ',', default_value = "3,10")]
    pub c: Vec<f64>,
    /// Class weightings to try: none, balanced, sqrt.
    #[arg(long, value_delimiter = ',', default_value = "balanced,sqrt")]
    pub class_weight: Vec<String>,
    /// Per-category thresholds: the lowest reaching this out-of-fold precision (default: F1-optimal).
    #[arg(long)]
    pub target_precision: Option<f64>,
    /// Train without the heuristic plugins' verdicts as features.
    #[arg(long)]
    pub no_rules: bool,
    /// Weigh every source's rows as they come (default: small sources are scaled up, sqrt-balanced).
    #[arg(long)]
    pub no_source_balance: bool,
    /// Train the n-gram model only: no embedding head, even when SCREENING_MODEL names a model.
    #[arg(long)]
    pub no_embedding: bool,
}

pub fn run(config: &Config, args: Args) -> anyhow::Result<()> {
    let Args {
        files,
        out,
        add,
        from_stream,
        folds,
        c,
        class_weight,
        target_precision,
        no_rules,
        no_source_balance,
        no_embedding,
    } = args;
    let class_weights = class_weight
        .iter()
        .map(|w| {
            palisade_detect::classify::train::ClassWeight::parse(w)
                .with_context(|| format!("--class-weight {w}: one of none, balanced, sqrt"))
        })
        .collect::<anyhow::Result<_>>()?;
    let settings = palisade_detect::classify::train::TrainSettings {
        folds,
        c_grid: c,
        class_weights,
        target_precision,
        balance_sources: !no_source_balance,
        toxicity: super::toxicity_model(config)?,
        ..Default::default()
    };
    let mut files: Vec<PathBuf> = files.into_iter().chain(add).collect();
    if from_stream {
        files.push(export_labels(config, &out)?);
    }
    train_on(config, files, &out, settings, !no_rules, !no_embedding)
}

/// The reviewer labels stream as labelled JSONL beside `out` (`OUT.labels.jsonl`).
fn export_labels(config: &Config, out: &Path) -> anyhow::Result<PathBuf> {
    let key = palisade_streams::Keys::new(&config.redis.key_prefix).labels;
    let target = config.redis.target();
    let rows = palisade_streams::labels::read_all(&target, &key)
        .with_context(|| format!("reading {key} from {target} (REDIS_URL, REDIS_CLUSTER_NODES)"))?;
    if rows.is_empty() {
        bail!("{key} holds no labels (POST /v1/admin/labels adds them)");
    }
    let path = PathBuf::from(format!("{}.labels.jsonl", out.display()));
    let mut text = String::new();
    for r in &rows {
        let source = if r.reviewer.is_empty() { "reviewers".to_string() } else { format!("reviewer:{}", r.reviewer) };
        text += &serde_json::json!({"id": r.id, "text": r.text, "label": r.label, "source": source}).to_string();
        text.push('\n');
    }
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    println!("{} reviewer labels from {key} -> {}", rows.len(), path.display());
    Ok(path)
}

fn train_on(
    config: &Config,
    files: Vec<PathBuf>,
    out: &Path,
    settings: palisade_detect::classify::train::TrainSettings,
    rules: bool,
    embedding: bool,
) -> anyhow::Result<()> {
    use palisade_detect::classify::train;
    if files.is_empty() {
        bail!("name one or more labelled JSONL files");
    }
    let host = if rules { Some(open_offline(config, None)?) } else { None };
    let started = Instant::now();
    let (examples, records) = train::read_examples(&files, host.as_deref())?;
    // The embedding head, when a model is configured: every row embedded once.
    let embedder = match (embedding, &config.model.dir) {
        (true, Some(_)) => {
            Some(embedder(config).context("the embedding head needs the model (or train with --no-embedding)")?)
        }
        _ => None,
    };
    // Rows embedded for an earlier training (this OUT's or the active model's)
    // are read back, not embedded again.
    let vectors = match &embedder {
        Some(e) => {
            use palisade_detect::embed::saved::{embed_with_saved, path_beside};
            let texts: Vec<&str> = examples.iter().map(|x| x.text.as_str()).collect();
            let active: Vec<PathBuf> = config.classifier.dir.as_deref().map(path_beside).into_iter().collect();
            let keep = path_beside(out);
            let (vectors, embedded) = embed_with_saved(e, &texts, &keep, &active, "embedding rows")?;
            println!(
                "embedded {embedded} of {} rows ({} read back; saved in {})",
                texts.len(),
                texts.len() - embedded,
                keep.display()
            );
            vectors
        }
        None => Vec::new(),
    };
    let embeddings = embedder
        .as_ref()
        .map(|e| train::Embeddings { model: e.model_id.clone(), vectors: vectors.iter().map(Vec::as_slice).collect() });
    let mut trained = train::train(&examples, &settings, records, rules, embeddings.as_ref())?;
    trained.artifact.save(out).with_context(|| format!("writing {}", out.display()))?;
    print!("{}", train::report(&trained.artifact.meta));
    // Out-of-fold figures per source: how each data set fares when its rows are held out by fold.
    let thresholds = palisade_detect::classify::Classifier::new(trained.artifact.clone()).thresholds().to_owned();
    let mut sources: Vec<&str> = examples.iter().map(|e| e.source.as_str()).collect();
    sources.sort();
    sources.dedup();
    for source in sources {
        let (truth, predicted): (Vec<String>, Vec<String>) = examples
            .iter()
            .zip(&trained.out_of_fold)
            .filter(|(e, _)| e.source == source)
            .map(|(e, p)| {
                let decided = palisade_detect::classify::decide(p, &thresholds);
                (palisade_detect::classify::CATEGORIES[e.label as usize].to_string(), decided.to_string())
            })
            .unzip();
        let predicted = palisade_detect::scores::to_data_labels(&truth, predicted);
        println!("{}", palisade_detect::scores::report(&format!("out of fold: {source}"), &truth, &predicted));
    }
    let size: u64 = std::fs::read_dir(out)?.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum();
    println!("wrote {} ({:.1} MB) in {:.0} s", out.display(), size as f64 / 1e6, started.elapsed().as_secs_f64());
    if let Some(host) = &host {
        println!("rule faults while reading the rows: {}", host.fault_summary());
    }
    Ok(())
}
