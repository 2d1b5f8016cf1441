//! `palisade eval`: the screening stages over labelled data, without Redis.
//! Rules run through the installed plugins, embeddings through the model; the
//! example bank is either other files (`--bank`) or, in k-fold mode, the other
//! folds — an evaluated row never sits in the bank it is compared with.
//! Reports per-category precision / recall / F1, macro and weighted F1,
//! accuracy and a confusion matrix, for rules only, embeddings only, the
//! weighted combination, and — with `--classifier` (one not trained on the
//! evaluated rows), or `--train` (one classifier trained per fold on the other
//! folds) — the classifier alone and with the embedding stage (its embedding
//! head and the kNN blend) in the cascade band or on every event, with each
//! category's PR-AUC and threshold.

use crate::classify::train::{Embeddings, Example, TrainSettings, average_precision};
use crate::classify::{CATEGORIES, Classifier, Scored, category_index, row_hash, rule_features};
use crate::config::Band;
use crate::core::Event;
use crate::embed::Embedder;
use crate::plugins::PluginHost;
use crate::plugins::rules::{self, RuleResult};
use crate::screening::predict::{Weights, classified, predict};
use crate::screening::similarity::{self, embedding_score};
use crate::vectors::bank::{Labelled, embed_rows};
use crate::vectors::flat::FlatStore;
use crate::vectors::{Item, VectorStore};
use std::collections::BTreeMap;

pub struct EvalInput<'a> {
    pub rows: Vec<Labelled>,
    /// Rows of another data set to use as the whole bank; `None` for k-fold.
    pub bank: Option<Vec<Labelled>>,
    pub folds: usize,
    pub k: usize,
    pub weights: Weights,
    pub plugins: &'a PluginHost,
    /// `None`: no embedding stage (only rules and the classifier are scored).
    pub embedder: Option<&'a Embedder>,
    /// A trained classifier (not trained on these rows!) and its cascade settings.
    pub classifier: Option<&'a Classifier>,
    /// Instead of `classifier`: train one per fold (`folds`) on the other folds'
    /// rows with these settings, and score each row with the one that never saw it.
    pub train_per_fold: Option<TrainSettings>,
    pub cascade_band: Band,
    pub knn_weight: f32,
    /// The vector index screening uses (`ANN_MIN_ROWS`, `ANN_PROBES`), so the figures are its own.
    pub ann: Option<crate::vectors::ivf::Ann>,
}

/// Predicted labels of each variant, in row order.
pub struct EvalOutput {
    pub truth: Vec<String>,
    pub variants: Vec<(&'static str, Vec<String>)>,
    /// With a classifier: how well its scores rank each category the rows have.
    pub categories: Vec<CategoryRanking>,
}

/// One category's ranking by the classifier's score.
pub struct CategoryRanking {
    pub category: &'static str,
    /// Average precision of the category's probability over the rows.
    pub pr_auc: f64,
    /// The threshold the classifier decides with (one per fold with `--train`).
    pub thresholds: Vec<f32>,
}

/// The classifier's scores of every row, the classifiers trained per fold
/// (`--train`; none with `--classifier`) and which of them scored each row.
struct ClassifierScores {
    scored: Vec<Scored>,
    classifiers: Vec<Classifier>,
    which: Vec<usize>,
}

pub fn run(input: EvalInput<'_>) -> anyhow::Result<EvalOutput> {
    let rows = &input.rows;
    let progress = crate::progress::bar("rule plugins", rows.len() as u64);
    let mut rule_results: Vec<RuleResult> = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(256) {
        let events: Vec<Event> = chunk.iter().map(|r| Event::sample(&r.text)).collect();
        rule_results.extend(rules::score(input.plugins, &events));
        progress.inc(chunk.len() as u64);
    }
    progress.finish();
    let (vectors, neighbours) = match input.embedder {
        Some(embedder) => {
            let (vectors, near) = neighbours(&input, embedder)?;
            (Some(vectors), Some(near))
        }
        None => (None, None),
    };
    let mut variants: Vec<(&'static str, Vec<String>)> = Vec::new();
    let event = |row: &Labelled| Event::sample(&row.text);
    variants.push((
        "rules only",
        rows.iter()
            .zip(&rule_results)
            .map(|(row, r)| predict(event(row), r.clone(), None, input.weights).category.into())
            .collect(),
    ));
    if let Some(near) = &neighbours {
        let emb_weights = Weights { rules: 0.0, embedding: 1.0, ..input.weights };
        let (mut knn, mut combined) = (Vec::new(), Vec::new());
        for ((row, r), near) in rows.iter().zip(&rule_results).zip(near) {
            let emb = embedding_score(near);
            knn.push(predict(event(row), r.clone(), emb, emb_weights).category.to_string());
            combined.push(predict(event(row), r.clone(), emb, input.weights).category.to_string());
        }
        variants.push(("embeddings only (kNN)", knn));
        variants.push(("combined (SCORING=weighted)", combined));
    }
    let classifier = match (&input.train_per_fold, input.classifier) {
        (Some(settings), _) => {
            let embeddings = match (input.embedder, &vectors) {
                (Some(e), Some(v)) => {
                    Some(Embeddings { model: e.model_id.clone(), vectors: v.iter().map(Vec::as_slice).collect() })
                }
                _ => None,
            };
            Some(trained_per_fold(rows, &rule_results, settings, input.folds, embeddings.as_ref())?)
        }
        (None, Some(c)) => Some(ClassifierScores {
            scored: rows.iter().zip(&rule_results).map(|(row, r)| c.score(&row.text, r)).collect(),
            classifiers: Vec::new(),
            which: vec![0; rows.len()],
        }),
        (None, None) => None,
    };
    let mut categories = Vec::new();
    if let Some(ClassifierScores { scored, classifiers, which }) = &classifier {
        let classifiers: Vec<&Classifier> = match input.classifier {
            Some(c) if classifiers.is_empty() => vec![c],
            _ => classifiers.iter().collect(),
        };
        let of = |i: usize| -> &Classifier { classifiers[which[i]] };
        let thresholds: Vec<[f32; CATEGORIES.len()]> = (0..rows.len()).map(|i| *of(i).thresholds()).collect();
        categories = rankings(rows, scored, &thresholds);
        let category = |s: &Scored, r: &RuleResult| -> String {
            classified(event(&Labelled::default()), r.clone(), s, "", None, &input.weights).category.to_string()
        };
        let name = if input.train_per_fold.is_some() { "classifier (one trained per fold)" } else { "classifier" };
        variants.push((name, scored.iter().zip(&rule_results).map(|(s, r)| category(s, r)).collect()));
        if let (Some(near), Some(vectors)) = (&neighbours, &vectors) {
            // What screening does to an embedded event: the embedding head, then the neighbours.
            let blend = |only_band: bool, knn: bool| -> Vec<String> {
                (0..rows.len())
                    .map(|i| {
                        let (c, mut s) = (of(i), scored[i].clone());
                        if !only_band || input.cascade_band.contains(s.risk()) {
                            let mix = if knn { similarity::label_mix(&near[i]) } else { None };
                            c.embedding_stage(&mut s, &vectors[i], mix.as_ref(), input.knn_weight);
                        }
                        category(&s, &rule_results[i])
                    })
                    .collect()
            };
            if classifiers.iter().any(|c| c.meta.embedding_head.is_some()) {
                variants.push(("classifier + embedding head on every event (no kNN)", blend(false, false)));
            }
            variants.push(("classifier + embedding stage in CASCADE_BAND", blend(true, true)));
            variants.push(("classifier + embedding stage on every event", blend(false, true)));
        }
    }
    let truth: Vec<String> = rows.iter().map(|r| r.label.clone()).collect();
    let variants = variants.into_iter().map(|(n, p)| (n, to_data_labels(&truth, p))).collect();
    Ok(EvalOutput { truth, variants, categories })
}

/// A row's fold for `--train`: salted, so it is independent of the folds
/// `palisade train` cross-validates by inside each fold's training rows.
fn outer_fold(id: &str, folds: usize) -> usize {
    (row_hash(&format!("{id}#outer")) % folds as u64) as usize
}

/// Train a classifier on every fold's complement and score the fold with it.
fn trained_per_fold(
    rows: &[Labelled],
    rule_results: &[RuleResult],
    settings: &TrainSettings,
    folds: usize,
    embeddings: Option<&Embeddings<'_>>,
) -> anyhow::Result<ClassifierScores> {
    let folds = folds.max(2);
    let mut examples = Vec::with_capacity(rows.len());
    for (row, r) in rows.iter().zip(rule_results) {
        let Some(label) = category_index(&row.label) else {
            anyhow::bail!("row {} has label {:?}, not one of {CATEGORIES:?}", row.id, row.label);
        };
        examples.push(Example {
            id: row.id.clone(),
            text: row.text.clone(),
            label: label as u8,
            source: row.source.clone(),
            rules: rule_features(r),
        });
    }
    let mut scored = vec![None; rows.len()];
    let (mut classifiers, mut which) = (Vec::new(), vec![0; rows.len()]);
    for f in 0..folds {
        eprintln!("fold {} of {folds}: training on the other folds", f + 1);
        let (held, inside): (Vec<usize>, Vec<usize>) =
            (0..rows.len()).partition(|i| outer_fold(&rows[*i].id, folds) == f);
        let training: Vec<Example> = inside.iter().map(|i| examples[*i].clone()).collect();
        let fold_embeddings = embeddings
            .map(|e| Embeddings { model: e.model.clone(), vectors: inside.iter().map(|i| e.vectors[*i]).collect() });
        let trained = crate::classify::train::train(&training, settings, Vec::new(), true, fold_embeddings.as_ref())?;
        let classifier = Classifier::new(trained.artifact);
        for i in held {
            scored[i] = Some(classifier.score(&rows[i].text, &rule_results[i]));
            which[i] = f;
        }
        classifiers.push(classifier);
    }
    Ok(ClassifierScores {
        scored: scored.into_iter().map(|s| s.expect("every row is in a fold")).collect(),
        classifiers,
        which,
    })
}

/// PR-AUC and thresholds of each category the rows are labelled with.
fn rankings(rows: &[Labelled], scored: &[Scored], thresholds: &[[f32; CATEGORIES.len()]]) -> Vec<CategoryRanking> {
    (1..CATEGORIES.len())
        .filter(|k| rows.iter().any(|r| category_index(&r.label) == Some(*k)))
        .map(|k| {
            let positive: Vec<bool> = rows.iter().map(|r| category_index(&r.label) == Some(k)).collect();
            let scores: Vec<f32> = scored.iter().map(|s| s.scores[k]).collect();
            let mut used: Vec<f32> = thresholds.iter().map(|t| t[k]).collect();
            used.sort_by(f32::total_cmp);
            used.dedup();
            CategoryRanking { category: CATEGORIES[k], pr_auc: average_precision(&scores, &positive), thresholds: used }
        })
        .collect()
}

type Neighbours = Vec<Vec<crate::vectors::Neighbour>>;

/// Each row's embedding, and its nearest labelled examples from a bank that never holds the row itself.
fn neighbours(input: &EvalInput<'_>, embedder: &Embedder) -> anyhow::Result<(Vec<Vec<f32>>, Neighbours)> {
    let rows = &input.rows;
    let vectors = embed_rows(embedder, rows, "embedding rows")?;
    let mut neighbours = vec![Vec::new(); rows.len()];
    let fold_of = |id: &str| (row_hash(id) % input.folds.max(1) as u64) as usize;
    let plan: Vec<(FlatStore, Vec<usize>)> = match &input.bank {
        Some(bank_rows) => {
            let store = FlatStore::memory().with_ann(input.ann);
            let bank_vectors = embed_rows(embedder, bank_rows, "embedding bank")?;
            store.upsert(items(bank_rows, bank_vectors))?;
            vec![(store, (0..rows.len()).collect())]
        }
        None => (0..input.folds.max(2))
            .map(|f| {
                let store = FlatStore::memory().with_ann(input.ann);
                let (inside, outside): (Vec<usize>, Vec<usize>) =
                    (0..rows.len()).partition(|i| fold_of(&rows[*i].id) == f);
                let bank: Vec<Item> = outside
                    .iter()
                    .map(|i| Item {
                        id: rows[*i].id.clone(),
                        label: rows[*i].label.clone(),
                        text: rows[*i].text.clone(),
                        vector: vectors[*i].clone(),
                    })
                    .collect();
                store.upsert(bank).map(|_| (store, inside))
            })
            .collect::<Result<_, _>>()?,
    };
    let progress = crate::progress::bar("nearest examples", rows.len() as u64);
    let (all, k) = (&vectors, input.k);
    for (store, members) in &plan {
        // Two threads: the search is exact and CPU-bound.
        let found: Vec<(usize, Vec<crate::vectors::Neighbour>)> = std::thread::scope(|s| {
            let halves: Vec<_> = members
                .chunks(members.len().div_ceil(2).max(1))
                .map(|part| s.spawn(move || part.iter().map(|i| (*i, store.search(&all[*i], k))).collect::<Vec<_>>()))
                .collect();
            halves.into_iter().flat_map(|h| h.join().expect("search thread")).collect()
        });
        progress.inc(found.len() as u64);
        for (i, n) in found {
            neighbours[i] = n;
        }
    }
    progress.finish();
    Ok((vectors, neighbours))
}

/// Score against the labels the data set has: a risky category the data set does
/// not know (TARGETED_HARASSMENT on a set that only labels TOXIC) counts as its
/// nearest risky label — `TOXIC` where the set has it, else its first risky label
/// (so on a spam-only set it is a false SPAM, not hidden as LOW_RISK).
pub fn to_data_labels(truth: &[String], predicted: Vec<String>) -> Vec<String> {
    let mut known: Vec<&str> = truth.iter().map(String::as_str).collect();
    known.sort();
    known.dedup();
    let fallback = if known.contains(&"TOXIC") {
        "TOXIC"
    } else {
        known.iter().copied().find(|l| *l != "LOW_RISK").unwrap_or("LOW_RISK")
    };
    predicted.into_iter().map(|p| if known.contains(&p.as_str()) { p } else { fallback.to_string() }).collect()
}

fn items(rows: &[Labelled], vectors: Vec<Vec<f32>>) -> Vec<Item> {
    rows.iter()
        .zip(vectors)
        .map(|(r, vector)| Item { id: r.id.clone(), label: r.label.clone(), text: r.text.clone(), vector })
        .collect()
}

/// Precision, recall, F1 and support of one category.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Stat {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: usize,
}

/// Per-category and averaged scores of predictions against the truth.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Scores {
    pub per_category: BTreeMap<String, Stat>,
    pub macro_f1: f64,
    pub weighted_f1: f64,
    pub accuracy: f64,
    pub rows: usize,
    /// (true, predicted) → count.
    #[serde(skip)]
    pub confusion: BTreeMap<(String, String), usize>,
}

impl Scores {
    pub fn of(truth: &[String], predicted: &[String]) -> Scores {
        let mut labels: Vec<&str> = truth.iter().chain(predicted).map(String::as_str).collect();
        labels.sort();
        labels.dedup();
        let mut confusion: BTreeMap<(String, String), usize> = BTreeMap::new();
        for (t, p) in truth.iter().zip(predicted) {
            *confusion.entry((t.clone(), p.clone())).or_default() += 1;
        }
        let count = |t: Option<&str>, p: Option<&str>| -> usize {
            confusion
                .iter()
                .filter(|((ct, cp), _)| t.is_none_or(|t| ct == t) && p.is_none_or(|p| cp == p))
                .map(|(_, n)| n)
                .sum()
        };
        let (mut per_category, mut macro_f1, mut weighted_f1, mut classes) = (BTreeMap::new(), 0.0, 0.0, 0);
        for l in &labels {
            let tp = count(Some(l), Some(l)) as f64;
            let (pred, support) = (count(None, Some(l)) as f64, count(Some(l), None));
            let (precision, recall, f1) = crate::classify::train::prf(tp, pred, support);
            if support > 0 {
                macro_f1 += f1;
                weighted_f1 += f1 * support as f64;
                classes += 1;
            }
            per_category.insert(l.to_string(), Stat { precision, recall, f1, support });
        }
        let n = truth.len() as f64;
        Scores {
            per_category,
            macro_f1: macro_f1 / f64::from(classes.max(1)),
            weighted_f1: weighted_f1 / n.max(1.0),
            accuracy: truth.iter().zip(predicted).filter(|(t, p)| t == p).count() as f64 / n.max(1.0),
            rows: truth.len(),
            confusion,
        }
    }
}

/// Per-category and averaged scores of one variant, as a printable report.
pub fn report(name: &str, truth: &[String], predicted: &[String]) -> String {
    let scores = Scores::of(truth, predicted);
    let mut out =
        format!("== {name} ==\n{:<22} {:>9} {:>9} {:>9} {:>8}\n", "category", "precision", "recall", "f1", "support");
    for (l, s) in &scores.per_category {
        out += &format!("{l:<22} {:>9.3} {:>9.3} {:>9.3} {:>8}\n", s.precision, s.recall, s.f1, s.support);
    }
    out += &format!(
        "macro F1 {:.3}   weighted F1 {:.3}   accuracy {:.3}   ({} rows)\n",
        scores.macro_f1, scores.weighted_f1, scores.accuracy, scores.rows
    );
    let labels: Vec<&String> = scores.per_category.keys().collect();
    out += &format!("confusion (rows: true, columns: predicted)\n{:<22}", "");
    for l in &labels {
        out += &format!(" {:>10}", &l[..l.len().min(10)]);
    }
    out += "\n";
    for t in &labels {
        out += &format!("{t:<22}");
        for p in &labels {
            let n = scores.confusion.get(&((*t).clone(), (*p).clone())).copied().unwrap_or(0);
            out += &format!(" {n:>10}");
        }
        out += "\n";
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_from_a_known_confusion() {
        let t: Vec<String> = ["SPAM", "SPAM", "LOW_RISK", "LOW_RISK"].map(String::from).to_vec();
        let p: Vec<String> = ["SPAM", "LOW_RISK", "LOW_RISK", "LOW_RISK"].map(String::from).to_vec();
        let r = report("x", &t, &p);
        assert!(r.contains("SPAM                       1.000     0.500     0.667        2"), "{r}");
        assert!(r.contains("LOW_RISK                   0.667     1.000     0.800        2"), "{r}");
        assert!(r.contains("accuracy 0.750"), "{r}");
    }
}
