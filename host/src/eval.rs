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

use crate::config::Band;
use palisade_core::Event;
use palisade_detect::cascade::{Embedded, cascade, in_band};
use palisade_detect::classify::train::{Embeddings, Example, TrainSettings, average_precision};
use palisade_detect::classify::{CATEGORIES, Classifier, Scored, category_index, row_hash, rule_features};
use palisade_detect::embed::Embedder;
use palisade_detect::predict::{DecisionPolicy, predict};
use palisade_detect::scores::to_data_labels;
use palisade_detect::similarity::embedding_score;
use palisade_detect::vectors::bank::{Labelled, embed_rows};
use palisade_detect::vectors::flat::FlatStore;
use palisade_detect::vectors::{Item, VectorStore};
use palisade_plugins::PluginHost;
use palisade_plugins::rules::{self, RuleResult};
use palisade_vocab::Category;

pub struct EvalInput<'a> {
    pub rows: Vec<Labelled>,
    /// Rows of another data set to use as the whole bank; `None` for k-fold.
    pub bank: Option<Vec<Labelled>>,
    pub folds: usize,
    pub k: usize,
    pub policy: DecisionPolicy,
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
    pub ann: Option<palisade_detect::vectors::ivf::Ann>,
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
    pub category: Category,
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
    let progress = palisade_core::progress::bar("rule plugins", rows.len() as u64);
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
            .map(|(row, r)| predict(event(row), r.clone(), None, input.policy).category.to_string())
            .collect(),
    ));
    if let Some(near) = &neighbours {
        let emb_weights = DecisionPolicy { rules: 0.0, embedding: 1.0, ..input.policy };
        let (mut knn, mut combined) = (Vec::new(), Vec::new());
        for ((row, r), near) in rows.iter().zip(&rule_results).zip(near) {
            let emb = embedding_score(near);
            knn.push(predict(event(row), r.clone(), emb, emb_weights).category.to_string());
            combined.push(predict(event(row), r.clone(), emb, input.policy).category.to_string());
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
        // Every variant below is the service's own cascade (`palisade_detect::cascade`).
        let cascaded = |i: usize, found: Option<Embedded<'_>>| -> String {
            let (r, s) = (rule_results[i].clone(), scored[i].clone());
            cascade(event(&rows[i]), r, s, found, of(i), input.knn_weight, &input.policy).category.to_string()
        };
        let name = if input.train_per_fold.is_some() { "classifier (one trained per fold)" } else { "classifier" };
        variants.push((name, (0..rows.len()).map(|i| cascaded(i, None)).collect()));
        if let (Some(near), Some(vectors)) = (&neighbours, &vectors) {
            // What screening does to an embedded event: the embedding head, then the neighbours.
            let blend = |band: Option<Band>, knn: bool| -> Vec<String> {
                (0..rows.len())
                    .map(|i| {
                        let neighbours = if knn { near[i].as_slice() } else { &[] };
                        let found = Embedded { vector: &vectors[i], neighbours };
                        cascaded(i, in_band(band, scored[i].risk()).then_some(found))
                    })
                    .collect()
            };
            if classifiers.iter().any(|c| c.meta.embedding_head.is_some()) {
                variants.push(("classifier + embedding head on every event (no kNN)", blend(None, false)));
            }
            variants.push(("classifier + embedding stage in CASCADE_BAND", blend(Some(input.cascade_band), true)));
            variants.push(("classifier + embedding stage on every event", blend(None, true)));
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
        let trained =
            palisade_detect::classify::train::train(&training, settings, Vec::new(), true, fold_embeddings.as_ref())?;
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
            CategoryRanking {
                category: Category::ALL[k],
                pr_auc: average_precision(&scores, &positive),
                thresholds: used,
            }
        })
        .collect()
}

type Neighbours = Vec<Vec<palisade_detect::vectors::Neighbour>>;

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
    let progress = palisade_core::progress::bar("nearest examples", rows.len() as u64);
    let (all, k) = (&vectors, input.k);
    for (store, members) in &plan {
        // Two threads: the search is exact and CPU-bound.
        let found: Vec<(usize, Vec<palisade_detect::vectors::Neighbour>)> = std::thread::scope(|s| {
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

fn items(rows: &[Labelled], vectors: Vec<Vec<f32>>) -> Vec<Item> {
    rows.iter()
        .zip(vectors)
        .map(|(r, vector)| Item { id: r.id.clone(), label: r.label.clone(), text: r.text.clone(), vector })
        .collect()
}
