//! The trained classifier: a multinomial linear model over hashed TF-IDF n-grams
//! (`features`), the rule stage's verdicts and the toxicity side model's
//! scores (`crate::toxicity`), fitted by `palisade train`
//! (`train`, `solver`), stored as an artifact folder (`artifact`), and used by
//! screening for `category_scores`; with an embedding head (`head`) the events
//! that are embedded anyway get its say too. Owns the model and its file format;
//! must not import a service, Redis or the HTTP layer.
//!
//! Decision rule ([`decide`]): route on risk, label by category: high risk
//! when `risk_score = 1 − P(LOW_RISK)` reaches the any-flag threshold or a
//! category its own (both calibrated out of fold at training time); the
//! category is the most probable risky one.

pub mod artifact;
pub mod features;
pub mod head;
pub mod slot;
pub mod solver;
pub mod train;

pub use artifact::{Artifact, ArtifactError, Meta};

use crate::toxicity::{self, Toxicity};
use features::{FeatureParams, count, normalise, tf_idf};
use palisade_plugins::rules::RuleResult;
use palisade_vocab::Category;
use serde::Serialize;
use std::sync::Arc;

/// The categories every prediction scores, `LOW_RISK` first: the wire names of
/// `palisade_vocab::Category::ALL` (the one table host and SDK share).
pub const CATEGORIES: [&str; Category::ALL.len()] = {
    let mut names = [""; Category::ALL.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = Category::ALL[i].as_str();
        i += 1;
    }
    names
};

/// Position of a category name in [`CATEGORIES`].
pub fn category_index(name: &str) -> Option<usize> {
    CATEGORIES.iter().position(|c| *c == name)
}

/// A stable hash of a row id (FNV-1a): folds and sampling that do not depend on file order.
pub fn row_hash(id: &str) -> u64 {
    id.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100000001b3))
}

/// Dense features after the hashed block: the rule score, then the rule score on
/// the column of the rule category (one per risky category); then, with the
/// toxicity side model, its scores (`toxicity::FEATURES`).
pub const RULE_FEATURES: usize = CATEGORIES.len();

/// The classes the toxicity side model's columns never move: `LOW_RISK` (the
/// reference) and `SPAM`, so the odds of spam against benign do not depend on
/// how toxic a message reads.
pub const TOXICITY_KEPT_OUT_OF: [Category; 2] = [Category::LowRisk, Category::Spam];

/// The rule stage's verdict as dense features.
pub fn rule_features(r: &RuleResult) -> [f32; RULE_FEATURES] {
    let mut f = [0f32; RULE_FEATURES];
    f[0] = r.score;
    if r.category.is_risky() {
        let i = r.category.index();
        f[i] = r.score;
    }
    f
}

/// One word n-gram's pull toward the predicted category.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Contribution {
    pub ngram: String,
    pub weight: f32,
}

/// What the classifier says about one text.
#[derive(Debug, Clone, Serialize)]
pub struct Scored {
    /// Probability per category, in [`CATEGORIES`] order (sums to 1).
    pub scores: [f32; CATEGORIES.len()],
    pub category: Category,
    /// The embedding head's probabilities are mixed in (its thresholds decide).
    #[serde(skip)]
    pub embedded: bool,
}

impl Scored {
    pub fn risk(&self) -> f32 {
        1.0 - self.scores[0]
    }
}

/// A loaded artifact, ready to score: a bucket → column table over the hashed space.
pub struct Classifier {
    pub meta: Meta,
    vocab: Vocabulary,
    w: Vec<f32>,
    b: Vec<f32>,
    thresholds: [f32; CATEGORIES.len()],
    /// The embedding head, its share and the thresholds for mixed scores.
    head: Option<(head::Head, f32, [f32; CATEGORIES.len()])>,
    toxicity: Option<Arc<Toxicity>>,
}

/// The thresholds [`decide`] takes: the any-flag one in the `LOW_RISK` slot
/// (none: above any risk, so only the per-category ones route), then one per
/// risky category.
fn threshold_array(named: &std::collections::BTreeMap<String, f32>, any_flag: Option<f32>) -> [f32; CATEGORIES.len()] {
    let mut thresholds = [1.0; CATEGORIES.len()];
    thresholds[0] = any_flag.unwrap_or(NO_ANY_FLAG);
    for (name, t) in named {
        if let Some(i) = category_index(name) {
            thresholds[i] = *t;
        }
    }
    thresholds
}

/// The hashed columns a model uses (bucket → column, each with its IDF), shared
/// by training and scoring so both turn a text into the same row.
pub(crate) struct Vocabulary {
    /// bucket → column (`u32::MAX`: unused).
    pub columns: Vec<u32>,
    pub buckets: Vec<u32>,
    pub idf: Vec<f32>,
    /// Whether the toxicity side model's columns follow the rule features.
    pub toxicity: bool,
}

impl Vocabulary {
    pub fn new(params: FeatureParams, buckets: Vec<u32>, idf: Vec<f32>, toxicity: bool) -> Self {
        let mut columns = vec![u32::MAX; params.buckets()];
        for (col, bucket) in buckets.iter().enumerate() {
            columns[*bucket as usize] = col as u32;
        }
        Vocabulary { columns, buckets, idf, toxicity }
    }

    /// TF-IDF weights of a text's hashed terms, by bucket (unused buckets dropped).
    pub fn weigh(&self, counts: &features::Counts) -> Vec<(u32, f32)> {
        tf_idf(counts, |b| match self.columns[b as usize] {
            u32::MAX => 0.0,
            col => self.idf[col as usize],
        })
    }

    /// The model's sparse row: hashed columns, then the rule features, then the
    /// toxicity scores (when the vocabulary has their columns).
    pub fn row(
        &self,
        counts: &features::Counts,
        rules: &[f32; RULE_FEATURES],
        toxicity: Option<&[f32; toxicity::FEATURES]>,
    ) -> solver::Row {
        let mut row: solver::Row = self.weigh(counts).into_iter().map(|(b, v)| (self.columns[b as usize], v)).collect();
        row.sort_unstable_by_key(|(c, _)| *c);
        let hashed = self.buckets.len();
        let scores = toxicity.filter(|_| self.toxicity).into_iter().flatten();
        let dense = rules.iter().chain(scores);
        row.extend(dense.enumerate().filter(|(_, v)| **v != 0.0).map(|(i, v)| ((hashed + i) as u32, *v)));
        row
    }

    /// Hashed columns plus the dense ones.
    pub fn width(&self) -> usize {
        self.buckets.len() + RULE_FEATURES + if self.toxicity { toxicity::FEATURES } else { 0 }
    }

    /// The weights held at 0 (see [`TOXICITY_KEPT_OUT_OF`]), as `column * classes + class`.
    pub fn frozen(&self) -> Vec<usize> {
        if !self.toxicity {
            return Vec::new();
        }
        let first = self.buckets.len() + RULE_FEATURES;
        let classes = CATEGORIES.len();
        (first..first + toxicity::FEATURES)
            .flat_map(|col| TOXICITY_KEPT_OUT_OF.iter().map(move |c| col * classes + c.index()))
            .collect()
    }
}

impl Classifier {
    pub fn new(a: Artifact) -> Self {
        let vocab = Vocabulary::new(a.meta.features, a.buckets, a.idf, a.toxicity.is_some());
        let thresholds = threshold_array(&a.meta.thresholds, a.meta.any_flag);
        let head = match (a.head, &a.meta.embedding_head) {
            (Some(h), Some(m)) => Some((h, m.share, threshold_array(&m.thresholds, m.any_flag))),
            _ => None,
        };
        Classifier { vocab, w: a.w, b: a.b, thresholds, head, toxicity: a.toxicity, meta: a.meta }
    }

    pub fn params(&self) -> FeatureParams {
        self.meta.features
    }

    /// The model's sparse row for a text and its rule verdict (the toxicity side
    /// model scores the text when the model was trained with it).
    pub fn row(&self, text: &str, rules: &RuleResult) -> solver::Row {
        let toxicity = self.toxicity(text);
        self.vocab.row(&count(&normalise(text), self.params()), &rule_features(rules), toxicity.as_ref())
    }

    /// The toxicity side model's scores of `text`, when the model carries one.
    pub fn toxicity(&self, text: &str) -> Option<[f32; toxicity::FEATURES]> {
        self.toxicity.as_ref().map(|t| t.scores(text))
    }

    /// Category probabilities and the decision for one text.
    pub fn score(&self, text: &str, rules: &RuleResult) -> Scored {
        let row = self.row(text, rules);
        let mut scores = [0f32; CATEGORIES.len()];
        solver::probabilities(&row, &self.w, &self.b, &mut scores);
        Scored { scores, category: decide(&scores, &self.thresholds), embedded: false }
    }

    /// Mix the embedding head's probabilities for `vector` into `s` and decide
    /// again (with the head's thresholds); no head, or a vector of another size: unchanged.
    pub fn add_embedding(&self, s: &mut Scored, vector: &[f32]) {
        let Some((head, share, _)) = &self.head else { return };
        let Some(p) = head.probabilities(vector) else { return };
        if !s.embedded {
            s.scores = head::mix(&s.scores, &p, *share);
            s.embedded = true;
            self.redecide(s);
        }
    }

    /// The embedding stage's say on an embedded event: the embedding head's
    /// probabilities for `vector` (see [`Self::add_embedding`]), then the
    /// neighbours' label mix with weight `knn_weight × trust`; decided again.
    pub fn embedding_stage(
        &self,
        s: &mut Scored,
        vector: &[f32],
        neighbours: Option<&([f32; CATEGORIES.len()], f32)>,
        knn_weight: f32,
    ) {
        self.add_embedding(s, vector);
        if let Some((mix, trust)) = neighbours {
            let a = knn_weight * trust;
            s.scores.iter_mut().zip(mix).for_each(|(p, m)| *p = (1.0 - a) * *p + a * m);
            self.redecide(s);
        }
    }

    /// Decide `s` again after its scores changed.
    fn redecide(&self, s: &mut Scored) {
        s.category = decide(&s.scores, self.thresholds_of(s));
    }

    /// The thresholds that decide `s`: the head's when it was mixed in.
    fn thresholds_of(&self, s: &Scored) -> &[f32; CATEGORIES.len()] {
        match &self.head {
            Some((_, _, t)) if s.embedded => t,
            _ => &self.thresholds,
        }
    }

    /// The word n-grams of `text` that pushed hardest toward `category` (at most `n`).
    pub fn contributions(&self, text: &str, category: Category, n: usize) -> Vec<Contribution> {
        let k = category.index();
        let normalised = normalise(text);
        let params = self.params();
        let counts = count(&normalised, params);
        let values: std::collections::HashMap<u32, f32> = self.vocab.weigh(&counts).into_iter().collect();
        let classes = CATEGORIES.len();
        let mut out: Vec<Contribution> = features::word_grams(&normalised, params)
            .into_iter()
            .filter_map(|(gram, bucket)| {
                let col = self.vocab.columns[bucket as usize];
                let x = values.get(&bucket)?;
                let w = &self.w[col as usize * classes..col as usize * classes + classes];
                // Pull toward `category` against the mean of the others.
                let others = (w.iter().sum::<f32>() - w[k]) / (classes - 1) as f32;
                Some(Contribution { ngram: gram, weight: x * (w[k] - others) })
            })
            .filter(|c| c.weight > 0.0)
            .collect();
        out.sort_by(|a, b| b.weight.total_cmp(&a.weight));
        out.dedup_by(|a, b| a.ngram == b.ngram);
        out.truncate(n);
        out
    }

    pub fn thresholds(&self) -> &[f32; CATEGORIES.len()] {
        &self.thresholds
    }
}

/// The any-flag threshold of an artifact that has none: above every risk.
const NO_ANY_FLAG: f32 = 2.0;

/// Route on risk, label by category: an event is risky when its total risk
/// (1 − P(`LOW_RISK`)) reaches the any-flag threshold (`thresholds[0]`), or when
/// a risky category reaches its own threshold. Its category is the most probable
/// risky category among those at their threshold, else the most probable risky
/// one; `LOW_RISK` when neither holds. So probability spread over several risky
/// categories still routes high, and a per-category threshold can only add.
pub fn decide(scores: &[f32; CATEGORIES.len()], thresholds: &[f32; CATEGORIES.len()]) -> Category {
    let top = |over: &dyn Fn(usize) -> bool| {
        (1..CATEGORIES.len()).filter(|i| over(*i)).max_by(|a, b| scores[*a].total_cmp(&scores[*b]))
    };
    let cleared = top(&|i| scores[i] >= thresholds[i]);
    let risky = cleared.or_else(|| top(&|_| 1.0 - scores[0] >= thresholds[0]));
    risky.map_or(Category::LowRisk, |i| Category::ALL[i])
}
