//! Training: labelled rows → features → cross-validated choice of the
//! regularisation `C` and the class weighting → thresholds calibrated on the
//! chosen point's out-of-fold probabilities → one final fit on every row → an
//! [`Artifact`]. Deterministic: the same rows and settings give the same weights.
//! Folds come from a hash of each row's id, so they do not depend on file order.

use super::artifact::{Artifact, CategoryFigures, CvFigures, GridPoint, Meta, ToxicityMeta, TrainingFile};
use super::features::{Counts, FeatureParams, count, normalise};
use super::head::{Head, HeadMeta};
use super::solver::{self, Fit, Problem, Row, Settings};
use super::{CATEGORIES, RULE_FEATURES, TOXICITY_KEPT_OUT_OF, Vocabulary, row_hash};
use crate::toxicity::{self, Toxicity};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;

/// How each class's rows are weighted in the loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassWeight {
    /// Every row 1.
    None,
    /// `n / (classes · n_class)`: each class weighs the same in total.
    Balanced,
    /// The square root of `Balanced`: rare classes helped, less strongly.
    Sqrt,
}

impl ClassWeight {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(ClassWeight::None),
            "balanced" => Some(ClassWeight::Balanced),
            "sqrt" => Some(ClassWeight::Sqrt),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ClassWeight::None => "none",
            ClassWeight::Balanced => "balanced",
            ClassWeight::Sqrt => "sqrt",
        }
    }
}

#[derive(Debug, Clone)]
pub struct TrainSettings {
    pub folds: usize,
    pub c_grid: Vec<f64>,
    pub class_weights: Vec<ClassWeight>,
    /// Thresholds: the lowest with at least this out-of-fold precision; `None`: F1-optimal.
    pub target_precision: Option<f64>,
    pub min_df: u32,
    pub features: FeatureParams,
    /// L-BFGS iterations of the final fit, and of each cross-validation fit.
    pub max_iter: usize,
    pub cv_max_iter: usize,
    /// Scale each source's rows by `sqrt(n / (sources · n_source))`, so a small
    /// source (a team's own rows, the hand-written seed set) is not drowned by a
    /// large one; `false`: every source as it comes.
    pub balance_sources: bool,
    /// The toxicity side model, whose scores become features (kept out of
    /// `LOW_RISK` and `SPAM`, see `TOXICITY_KEPT_OUT_OF`); the artifact keeps a copy.
    pub toxicity: Option<Arc<Toxicity>>,
}

impl Default for TrainSettings {
    fn default() -> Self {
        TrainSettings {
            folds: 3,
            c_grid: vec![3.0, 10.0],
            class_weights: vec![ClassWeight::Balanced, ClassWeight::Sqrt],
            target_precision: None,
            min_df: 2,
            features: FeatureParams::default(),
            max_iter: 200,
            cv_max_iter: 100,
            balance_sources: true,
            toxicity: None,
        }
    }
}

/// One training row: its text, category index, id (for folds) and rule features.
#[derive(Debug, Clone)]
pub struct Example {
    pub id: String,
    pub text: String,
    pub label: u8,
    /// The data set it comes from (reports per source).
    pub source: String,
    pub rules: [f32; RULE_FEATURES],
}

/// The hashed columns a fit uses: buckets seen in at least `min_df` of its rows.
fn vocabulary(counts: &[&Counts], p: FeatureParams, min_df: u32, toxicity: bool) -> Vocabulary {
    let mut df = vec![0u32; p.buckets()];
    for c in counts {
        for (b, _) in &c.terms {
            df[*b as usize] += 1;
        }
    }
    let n = counts.len() as f32;
    let (mut buckets, mut idf) = (Vec::new(), Vec::new());
    for (b, d) in df.iter().enumerate() {
        if *d >= min_df.max(1) {
            buckets.push(b as u32);
            // scikit-learn's smooth idf.
            idf.push(((1.0 + n) / (1.0 + *d as f32)).ln() + 1.0);
        }
    }
    Vocabulary::new(p, buckets, idf, toxicity)
}

/// Per-row factors that even out sources (see [`TrainSettings::balance_sources`]).
fn source_factors(examples: &[Example], balance: bool) -> Vec<f32> {
    if !balance {
        return vec![1.0; examples.len()];
    }
    let n_source = rows_per_source(examples);
    let (n, sources) = (examples.len() as f32, n_source.len() as f32);
    examples.iter().map(|e| (n / (sources * n_source[e.source.as_str()] as f32)).sqrt()).collect()
}

fn sample_weights(labels: &[u8], cw: ClassWeight) -> Vec<f32> {
    let mut n_class = [0usize; CATEGORIES.len()];
    labels.iter().for_each(|l| n_class[*l as usize] += 1);
    let present = n_class.iter().filter(|n| **n > 0).count().max(1) as f32;
    let n = labels.len() as f32;
    labels
        .iter()
        .map(|l| {
            let balanced = n / (present * n_class[*l as usize] as f32);
            match cw {
                ClassWeight::None => 1.0,
                ClassWeight::Balanced => balanced,
                ClassWeight::Sqrt => balanced.sqrt(),
            }
        })
        .collect()
}

/// Class weights times source factors.
fn row_weights(labels: &[u8], factors: &[f32], cw: ClassWeight) -> Vec<f32> {
    sample_weights(labels, cw).iter().zip(factors).map(|(w, f)| w * f).collect()
}

fn fit_rows(
    rows: &[Row],
    labels: &[u8],
    factors: &[f32],
    cw: ClassWeight,
    vocab: &Vocabulary,
    s: Settings,
    start: Option<&Fit>,
) -> Fit {
    let weights = row_weights(labels, factors, cw);
    let frozen = vocab.frozen();
    let problem =
        Problem { rows, labels, weights: &weights, columns: vocab.width(), classes: CATEGORIES.len(), frozen: &frozen };
    solver::fit(&problem, s, start)
}

type Probs = [f32; CATEGORIES.len()];

fn predict_all(rows: &[Row], fit: &Fit) -> Vec<Probs> {
    rows.par_iter()
        .map(|r| {
            let mut p = [0f32; CATEGORIES.len()];
            solver::probabilities(r, &fit.w, &fit.b, &mut p);
            p
        })
        .collect()
}

/// Precision, recall, F1 and support of one class.
pub type ClassFigures = (f64, f64, f64, usize);

/// Macro and support-weighted F1 of decisions against truth (classes with
/// support), and each class's figures.
pub fn f1_scores(truth: &[u8], decided: &[u8]) -> (f64, f64, Vec<ClassFigures>) {
    let k = CATEGORIES.len();
    let mut per = Vec::with_capacity(k);
    let (mut macro_f1, mut weighted, mut present) = (0.0, 0.0, 0);
    for c in 0..k as u8 {
        let tp = truth.iter().zip(decided).filter(|(t, d)| **t == c && **d == c).count() as f64;
        let predicted = decided.iter().filter(|d| **d == c).count() as f64;
        let support = truth.iter().filter(|t| **t == c).count();
        let (precision, recall, f1) = prf(tp, predicted, support);
        if support > 0 {
            macro_f1 += f1;
            weighted += f1 * support as f64;
            present += 1;
        }
        per.push((precision, recall, f1, support));
    }
    (macro_f1 / f64::from(present.max(1)), weighted / truth.len().max(1) as f64, per)
}

/// Precision, recall and F1 of one class from its true positives, how often it
/// was predicted, and its support (0 where undefined).
pub fn prf(tp: f64, predicted: f64, support: usize) -> (f64, f64, f64) {
    let precision = if predicted > 0.0 { tp / predicted } else { 0.0 };
    let recall = if support > 0 { tp / support as f64 } else { 0.0 };
    let f1 = if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };
    (precision, recall, f1)
}

fn argmax(p: &Probs) -> u8 {
    (0..p.len()).max_by(|a, b| p[*a].total_cmp(&p[*b])).unwrap_or(0) as u8
}

/// Average precision of `scores` for the rows where `positive` holds.
pub fn average_precision(scores: &[f32], positive: &[bool]) -> f64 {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|a, b| scores[*b].total_cmp(&scores[*a]));
    let total = positive.iter().filter(|p| **p).count();
    if total == 0 {
        return 0.0;
    }
    let (mut tp, mut ap) = (0usize, 0.0);
    for (rank, i) in order.iter().enumerate() {
        if positive[*i] {
            tp += 1;
            ap += tp as f64 / (rank + 1) as f64;
        }
    }
    ap / total as f64
}

/// One category's threshold from out-of-fold scores: F1-optimal, or the lowest
/// reaching `target` precision (F1-optimal when none does). 1.0 without positives.
pub fn calibrate(scores: &[f32], positive: &[bool], target: Option<f64>) -> f32 {
    calibrate_weighted(scores, positive, |_| 1.0, target)
}

/// [`calibrate`] with each row counted `weight(row)` times.
fn calibrate_weighted(scores: &[f32], positive: &[bool], weight: impl Fn(usize) -> f64, target: Option<f64>) -> f32 {
    let total: f64 = (0..scores.len()).filter(|i| positive[*i]).map(&weight).sum();
    if total <= 0.0 {
        return 1.0;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|a, b| scores[*b].total_cmp(&scores[*a]));
    let (mut tp, mut flagged, mut best_f1, mut best_t, mut lowest_at_target) = (0.0, 0.0, -1.0, 0.5f32, None);
    for (rank, i) in order.iter().enumerate() {
        flagged += weight(*i);
        if positive[*i] {
            tp += weight(*i);
        }
        // Only cut between distinct scores.
        if order.get(rank + 1).is_some_and(|j| scores[*j] == scores[*i]) {
            continue;
        }
        let precision = tp / flagged;
        let recall = tp / total;
        let f1 = if tp > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };
        if f1 > best_f1 {
            (best_f1, best_t) = (f1, scores[*i]);
        }
        if target.is_some_and(|t| precision >= t) {
            lowest_at_target = Some(scores[*i]);
        }
    }
    lowest_at_target.unwrap_or(best_t)
}

/// The decision's thresholds from out-of-fold probabilities: in the `LOW_RISK`
/// slot the any-flag threshold on the total risk ([`calibrate_any_flag`]), then
/// one per risky category.
fn calibrate_all(out_of_fold: &[Probs], labels: &[u8], balance: &[f32], target: Option<f64>) -> Probs {
    let mut thresholds = [1.0f32; CATEGORIES.len()];
    let risk: Vec<f32> = out_of_fold.iter().map(|p| 1.0 - p[0]).collect();
    let risky: Vec<bool> = labels.iter().map(|l| *l != 0).collect();
    thresholds[0] = calibrate_any_flag(&risk, &risky, balance);
    for (k, t) in thresholds.iter_mut().enumerate().skip(1) {
        let scores: Vec<f32> = out_of_fold.iter().map(|p| p[k]).collect();
        let positive: Vec<bool> = labels.iter().map(|l| *l as usize == k).collect();
        *t = calibrate(&scores, &positive, target);
    }
    thresholds
}

/// The any-flag threshold: the risk (1 − P(`LOW_RISK`)) at which flagging is
/// F1-optimal for "risky or not" on out-of-fold risks, each row weighted by
/// `balance` so that every source counts alike (a big source does not set the
/// cut for the others). 1.0 without risky rows.
pub fn calibrate_any_flag(risk: &[f32], risky: &[bool], balance: &[f32]) -> f32 {
    calibrate_weighted(risk, risky, |i| f64::from(balance[i]), None)
}

/// Per-row weights that give every source the same total (for calibration).
fn source_balance(examples: &[Example]) -> Vec<f32> {
    let n_source = rows_per_source(examples);
    examples.iter().map(|e| 1.0 / n_source[e.source.as_str()] as f32).collect()
}

fn rows_per_source(examples: &[Example]) -> BTreeMap<&str, usize> {
    let mut n_source: BTreeMap<&str, usize> = BTreeMap::new();
    examples.iter().for_each(|e| *n_source.entry(e.source.as_str()).or_default() += 1);
    n_source
}

fn decide_all(out_of_fold: &[Probs], thresholds: &Probs) -> Vec<u8> {
    out_of_fold.iter().map(|p| super::decide(p, thresholds).index() as u8).collect()
}

/// The risky categories' thresholds by name (the any-flag one is kept apart).
fn named(thresholds: &Probs) -> BTreeMap<String, f32> {
    CATEGORIES.iter().zip(thresholds).skip(1).map(|(c, t)| (c.to_string(), *t)).collect()
}

/// Each training row's sentence embedding, from `model`: `palisade train` then
/// fits the embedding head too.
pub struct Embeddings<'a> {
    pub model: String,
    pub vectors: Vec<&'a [f32]>,
}

/// Everything `palisade train` reports beside the artifact.
pub struct Trained {
    pub artifact: Artifact,
    /// Out-of-fold probabilities of the chosen grid point, per row.
    pub out_of_fold: Vec<Probs>,
}

/// The head fitted on every row, and its description: thresholds calibrated on
/// its out-of-fold probabilities mixed with the n-gram model's, and their figures.
fn fit_head(
    e: &Embeddings<'_>,
    labels: &[u8],
    weights: &[f32],
    balance: &[f32],
    fold_of: &[usize],
    ngram_oof: &[Probs],
    s: &TrainSettings,
) -> anyhow::Result<(Head, HeadMeta)> {
    anyhow::ensure!(e.vectors.len() == labels.len(), "{} embeddings for {} rows", e.vectors.len(), labels.len());
    let folds = fold_of.iter().max().map_or(0, |f| f + 1);
    let dim = e.vectors.first().map_or(0, |v| v.len());
    anyhow::ensure!(dim > 0 && e.vectors.iter().all(|v| v.len() == dim), "embeddings of mixed or empty size");
    let progress = palisade_core::progress::bar("embedding head fits", folds as u64 + 1);
    let mut mixed = vec![[0f32; CATEGORIES.len()]; labels.len()];
    for f in 0..folds {
        let (inside, outside): (Vec<usize>, Vec<usize>) = (0..labels.len()).partition(|i| fold_of[*i] != f);
        let head = Head::fit(
            &inside.iter().map(|i| e.vectors[*i]).collect::<Vec<_>>(),
            &inside.iter().map(|i| labels[*i]).collect::<Vec<_>>(),
            &inside.iter().map(|i| weights[*i]).collect::<Vec<_>>(),
            s.cv_max_iter,
        );
        for i in outside {
            let p = head.probabilities(e.vectors[i]).expect("same size");
            mixed[i] = super::head::mix(&ngram_oof[i], &p, super::head::SHARE);
        }
        progress.inc(1);
    }
    let head = Head::fit(&e.vectors, labels, weights, s.max_iter);
    progress.finish();
    let thresholds = calibrate_all(&mixed, labels, balance, s.target_precision);
    let (macro_f1, weighted_f1, _) = f1_scores(labels, &decide_all(&mixed, &thresholds));
    let meta = HeadMeta {
        model: e.model.clone(),
        dim,
        share: super::head::SHARE,
        c: super::head::C,
        thresholds: named(&thresholds),
        any_flag: Some(thresholds[0]),
        macro_f1,
        weighted_f1,
        sha256: String::new(),
    };
    Ok((head, meta))
}

/// Train on `examples`; `training` describes the files they came from.
pub fn train(
    examples: &[Example],
    s: &TrainSettings,
    training: Vec<TrainingFile>,
    rule_features: bool,
    embeddings: Option<&Embeddings<'_>>,
) -> anyhow::Result<Trained> {
    anyhow::ensure!(examples.len() >= 2 * s.folds.max(2), "too few rows to train on ({})", examples.len());
    anyhow::ensure!(!s.c_grid.is_empty() && !s.class_weights.is_empty(), "an empty grid");
    let progress = palisade_core::progress::bar("n-gram features", examples.len() as u64);
    let counts: Vec<Counts> = examples
        .par_iter()
        .map(|e| {
            let c = count(&normalise(&e.text), s.features);
            progress.inc(1);
            c
        })
        .collect();
    progress.finish();
    let scores = toxicity_scores(examples, s.toxicity.as_deref());
    let with_toxicity = s.toxicity.is_some();
    let row = |vocab: &Vocabulary, i: usize| vocab.row(&counts[i], &examples[i].rules, scores.get(i));
    let labels: Vec<u8> = examples.iter().map(|e| e.label).collect();
    let factors = source_factors(examples, s.balance_sources);
    let folds = s.folds.max(2);
    let fold_of: Vec<usize> = examples.iter().map(|e| (row_hash(&e.id) % folds as u64) as usize).collect();
    let settings = |c: f64, max_iter: usize| Settings { c, max_iter, ..Settings::default() };

    // Out-of-fold probabilities for every grid point: [class weight][C][row].
    let grid_len = s.class_weights.len() * s.c_grid.len();
    let progress = palisade_core::progress::bar("cross-validation fits", (grid_len * folds) as u64);
    let mut oof = vec![vec![[0f32; CATEGORIES.len()]; examples.len()]; grid_len];
    for f in 0..folds {
        let (inside, outside): (Vec<usize>, Vec<usize>) = (0..examples.len()).partition(|i| fold_of[*i] != f);
        let inside_counts: Vec<&Counts> = inside.iter().map(|i| &counts[*i]).collect();
        let vocab = vocabulary(&inside_counts, s.features, s.min_df, with_toxicity);
        let train_rows: Vec<Row> = inside.par_iter().map(|i| row(&vocab, *i)).collect();
        let held_rows: Vec<Row> = outside.par_iter().map(|i| row(&vocab, *i)).collect();
        let train_labels: Vec<u8> = inside.iter().map(|i| labels[*i]).collect();
        let train_factors: Vec<f32> = inside.iter().map(|i| factors[*i]).collect();
        for (wi, cw) in s.class_weights.iter().enumerate() {
            let mut warm: Option<Fit> = None;
            for (ci, c) in s.c_grid.iter().enumerate() {
                let fit = fit_rows(
                    &train_rows,
                    &train_labels,
                    &train_factors,
                    *cw,
                    &vocab,
                    settings(*c, s.cv_max_iter),
                    warm.as_ref(),
                );
                for (i, p) in outside.iter().zip(predict_all(&held_rows, &fit)) {
                    oof[wi * s.c_grid.len() + ci][*i] = p;
                }
                warm = Some(fit);
                progress.inc(1);
            }
        }
    }
    progress.finish();
    let grid: Vec<GridPoint> = (0..grid_len)
        .map(|g| {
            let decided: Vec<u8> = oof[g].iter().map(argmax).collect();
            let (macro_f1, weighted_f1, _) = f1_scores(&labels, &decided);
            GridPoint {
                c: s.c_grid[g % s.c_grid.len()],
                class_weight: s.class_weights[g / s.c_grid.len()].name().into(),
                macro_f1,
                weighted_f1,
            }
        })
        .collect();
    let best = (0..grid_len).max_by(|a, b| grid[*a].macro_f1.total_cmp(&grid[*b].macro_f1)).expect("a grid");
    let out_of_fold = std::mem::take(&mut oof[best]);

    let balance = source_balance(examples);
    let thresholds = calibrate_all(&out_of_fold, &labels, &balance, s.target_precision);
    let (macro_f1, weighted_f1, per) = f1_scores(&labels, &decide_all(&out_of_fold, &thresholds));
    let categories = (1..CATEGORIES.len())
        .chain([0])
        .filter(|k| per[*k].3 > 0)
        .map(|k| {
            let scores: Vec<f32> = out_of_fold.iter().map(|p| p[k]).collect();
            let positive: Vec<bool> = labels.iter().map(|l| *l as usize == k).collect();
            let (precision, recall, f1, support) = per[k];
            let figures = CategoryFigures {
                precision,
                recall,
                f1,
                pr_auc: average_precision(&scores, &positive),
                support,
                threshold: thresholds[k],
            };
            (CATEGORIES[k].to_string(), figures)
        })
        .collect();
    let chosen = grid[best].clone();
    let cv = CvFigures { folds, grid, chosen: chosen.clone(), categories, macro_f1, weighted_f1 };

    let progress = palisade_core::progress::bar("final fit", 1);
    let vocab = vocabulary(&counts.iter().collect::<Vec<_>>(), s.features, s.min_df, with_toxicity);
    let rows: Vec<Row> = (0..examples.len()).into_par_iter().map(|i| row(&vocab, i)).collect();
    let cw = ClassWeight::parse(&chosen.class_weight).expect("a grid name");
    let fit = fit_rows(&rows, &labels, &factors, cw, &vocab, settings(chosen.c, s.max_iter), None);
    progress.finish();
    let head = match embeddings {
        Some(e) => {
            let weights = row_weights(&labels, &factors, cw);
            Some(fit_head(e, &labels, &weights, &balance, &fold_of, &out_of_fold, s)?)
        }
        None => None,
    };

    let mut rows_by_label = BTreeMap::new();
    for l in &labels {
        *rows_by_label.entry(CATEGORIES[*l as usize].to_string()).or_insert(0) += 1;
    }
    let meta = Meta {
        format: match s.toxicity {
            Some(_) => super::artifact::FORMAT,
            None => super::artifact::FORMAT_WITHOUT_TOXICITY,
        },
        version: String::new(),
        created: palisade_core::schema::format_rfc3339(palisade_core::now_ms()),
        categories: CATEGORIES.iter().map(|c| c.to_string()).collect(),
        features: s.features,
        min_df: s.min_df,
        rule_features,
        embedding_model: head.as_ref().map(|(_, m)| m.model.clone()),
        thresholds: named(&thresholds),
        any_flag: Some(thresholds[0]),
        threshold_rule: match s.target_precision {
            Some(t) => format!("lowest with out-of-fold precision ≥ {t} (F1-optimal where none reaches it)"),
            None => "F1-optimal on out-of-fold probabilities".into(),
        },
        training,
        rows_by_label,
        cv: Some(cv),
        weights_sha256: String::new(),
        columns: vocab.width(),
        embedding_head: head.as_ref().map(|(_, m)| m.clone()),
        toxicity: s.toxicity.as_ref().map(|t| ToxicityMeta {
            model: toxicity::NAME.into(),
            features: toxicity::CLASSES.iter().map(|c| c.to_string()).collect(),
            kept_out_of: TOXICITY_KEPT_OUT_OF.iter().map(|c| c.to_string()).collect(),
            sha256: t.sha256.clone(),
        }),
    };
    let head = head.map(|(h, _)| h);
    let toxicity = s.toxicity.clone();
    let artifact = Artifact { meta, buckets: vocab.buckets, idf: vocab.idf, w: fit.w, b: fit.b, head, toxicity };
    Ok(Trained { artifact, out_of_fold })
}

/// Every row's toxicity scores (empty without the side model).
fn toxicity_scores(examples: &[Example], model: Option<&Toxicity>) -> Vec<[f32; toxicity::FEATURES]> {
    let Some(model) = model else { return Vec::new() };
    let progress = palisade_core::progress::bar("toxicity side model", examples.len() as u64);
    let scores = examples
        .par_iter()
        .map(|e| {
            let s = model.scores(&e.text);
            progress.inc(1);
            s
        })
        .collect();
    progress.finish();
    scores
}

/// Labelled JSONL files → examples (with the rule stage's verdicts when a plugin
/// host is given) and their [`TrainingFile`] records. Rows whose label is not a
/// Palisade category are an error naming the file.
pub fn read_examples(
    files: &[std::path::PathBuf],
    plugins: Option<&palisade_plugins::PluginHost>,
) -> anyhow::Result<(Vec<Example>, Vec<TrainingFile>)> {
    use sha2::Digest;
    let mut examples = Vec::new();
    let mut records = Vec::new();
    for file in files {
        let bytes = std::fs::read(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        let rows = crate::vectors::bank::read(std::slice::from_ref(file))?;
        for r in &rows {
            let Some(label) = super::category_index(&r.label) else {
                anyhow::bail!("{}: row {} has label {:?}, not one of {CATEGORIES:?}", file.display(), r.id, r.label);
            };
            examples.push(Example {
                id: r.id.clone(),
                text: r.text.clone(),
                label: label as u8,
                source: if r.source.is_empty() { file.display().to_string() } else { r.source.clone() },
                rules: [0.0; RULE_FEATURES],
            });
        }
        records.push(TrainingFile {
            path: file.display().to_string(),
            sha256: hex::encode(sha2::Sha256::digest(&bytes)),
            rows: rows.len(),
        });
    }
    if let Some(host) = plugins {
        let progress = palisade_core::progress::bar("rule plugins", examples.len() as u64);
        for chunk in examples.chunks_mut(512) {
            let events: Vec<palisade_core::Event> =
                chunk.iter().map(|e| palisade_core::Event::sample(&e.text)).collect();
            for (e, r) in chunk.iter_mut().zip(palisade_plugins::rules::score(host, &events)) {
                e.rules = super::rule_features(&r);
            }
            progress.inc(chunk.len() as u64);
        }
        progress.finish();
    }
    Ok((examples, records))
}

/// The artifact's cross-validation figures as a table.
pub fn report(meta: &Meta) -> String {
    let mut out = format!("classifier {} ({} columns)\n", meta.version, meta.columns);
    for f in &meta.training {
        out += &format!("  trained on {} ({} rows, sha256 {})\n", f.path, f.rows, &f.sha256[..12]);
    }
    if let Some(t) = &meta.toxicity {
        out += &format!(
            "  toxicity side model {} (sha256 {}): {} as features, kept out of {}\n",
            t.model,
            &t.sha256[..12.min(t.sha256.len())],
            t.features.join(", "),
            t.kept_out_of.join(" and ")
        );
    }
    let Some(cv) = &meta.cv else { return out };
    out += &format!("cross-validation ({} folds), macro F1 of the argmax per grid point:\n", cv.folds);
    for g in &cv.grid {
        let mark = if g == &cv.chosen { "  <- chosen" } else { "" };
        out += &format!(
            "  C {:<6} class weight {:<9} macro F1 {:.3}  weighted F1 {:.3}{mark}\n",
            g.c, g.class_weight, g.macro_f1, g.weighted_f1
        );
    }
    out += &format!("out of fold at the thresholds ({}):\n", meta.threshold_rule);
    out += &format!(
        "  {:<20} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8}\n",
        "category", "threshold", "precision", "recall", "f1", "PR-AUC", "support"
    );
    for (name, c) in &cv.categories {
        out += &format!(
            "  {name:<20} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>8}\n",
            c.threshold, c.precision, c.recall, c.f1, c.pr_auc, c.support
        );
    }
    out += &format!("  macro F1 {:.3}   weighted F1 {:.3}\n", cv.macro_f1, cv.weighted_f1);
    if let Some(t) = meta.any_flag {
        out += &format!(
            "  high risk from a total risk (1 − P(LOW_RISK)) of {t:.3} whatever category carries it (the LOW_RISK row's threshold; F1-optimal out of fold, sources weighted alike)\n"
        );
    }
    if let Some(h) = &meta.embedding_head {
        out += &format!(
            "embedding head ({}, {} dims, share {}): out of fold, mixed with the n-grams at its own thresholds:\n  macro F1 {:.3}   weighted F1 {:.3}\n",
            h.model, h.dim, h.share, h.macro_f1, h.weighted_f1
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_meet_a_target_precision_or_maximise_f1() {
        let scores = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4];
        let positive = [true, true, false, true, false, false];
        assert_eq!(calibrate(&scores, &positive, None), 0.6, "F1-optimal: 3 of 4 above 0.6");
        assert_eq!(calibrate(&scores, &positive, Some(1.0)), 0.8);
        assert_eq!(calibrate(&scores, &[false; 6], None), 1.0);
        assert!((average_precision(&scores, &positive) - (1.0 + 1.0 + 0.75) / 3.0).abs() < 1e-9);
    }

    #[test]
    fn the_any_flag_threshold_weighs_every_source_alike() {
        // Source A (ten rows): risky rows from 0.6, three benign ones at 0.25.
        // Source B (two rows): its risky row scores 0.2, its benign one 0.02.
        let mut risk = vec![0.9, 0.8, 0.7, 0.6, 0.25, 0.25, 0.25, 0.05, 0.05, 0.05];
        let mut risky = vec![true, true, true, true, false, false, false, false, false, false];
        assert_eq!(calibrate_any_flag(&risk, &risky, &[1.0; 10]), 0.6, "source A alone");
        risk.extend([0.2, 0.02]);
        risky.extend([true, false]);
        assert_eq!(calibrate_any_flag(&risk, &risky, &[1.0; 12]), 0.6, "row by row, B hardly counts");
        let balanced: Vec<f32> = (0..12).map(|i| if i < 10 { 0.1 } else { 0.5 }).collect();
        assert_eq!(calibrate_any_flag(&risk, &risky, &balanced), 0.2, "sources alike: B's risky row is worth flagging");
        assert_eq!(calibrate_any_flag(&risk, &[false; 12], &balanced), 1.0);
    }
}
