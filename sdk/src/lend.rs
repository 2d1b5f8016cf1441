//! What the host lends a plugin whose manifest grants it (WIT 0.1.1):
//! [`similar`] (the labelled examples nearest a text, capability `similar`),
//! [`classify`] (the trained classifier's category scores, `classify`) and
//! [`labels`] (what the platform knows about a user or channel, `labels`).
//! Each takes a list: call it once per batch, not once per event. A service that
//! lacks the part (no classifier, no example bank, no label store) answers empty.
//! Natively (unit tests) the answers come from what [`crate::testing`] lent.

use crate::Category;
use std::cell::RefCell;
use std::collections::BTreeMap;

/// A labelled example near a text.
#[derive(Debug, Clone, PartialEq)]
pub struct Neighbour {
    pub id: String,
    pub label: String,
    /// Cosine similarity, up to 1.
    pub similarity: f32,
}

/// One label an entity holds.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityLabel {
    pub entity: String,
    pub label: String,
    /// `rule`, `reviewer` or `bulk`.
    pub source: String,
    pub reason: String,
    pub expires_at_ms: Option<u64>,
}

/// The classifier's probability per category for one text (empty when the
/// service has no classifier).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CategoryScores(pub Vec<(Category, f32)>);

impl CategoryScores {
    pub fn get(&self, category: Category) -> f32 {
        self.0.iter().find(|(c, _)| *c == category).map_or(0.0, |(_, s)| *s)
    }

    /// 1 − P(`LOW_RISK`): how likely the text is harmful in any way (0 when empty).
    pub fn risk(&self) -> f32 {
        if self.0.is_empty() { 0.0 } else { 1.0 - self.get(Category::LowRisk) }
    }

    /// The most likely category other than `LOW_RISK`, with its probability.
    pub fn top_risky(&self) -> Option<(Category, f32)> {
        self.0.iter().filter(|(c, _)| *c != Category::LowRisk).copied().max_by(|a, b| a.1.total_cmp(&b.1))
    }
}

/// Up to `k` labelled examples nearest each text.
pub fn similar(texts: &[String], k: u32) -> Vec<Vec<Neighbour>> {
    #[cfg(target_arch = "wasm32")]
    return crate::guest::host_similar(texts, k);
    #[cfg(not(target_arch = "wasm32"))]
    NATIVE.with(|n| {
        let n = n.borrow();
        texts
            .iter()
            .map(|t| n.similar.get(t).map(|v| v.iter().take(k as usize).cloned().collect()).unwrap_or_default())
            .collect()
    })
}

/// The classifier's category scores of each text.
pub fn classify(texts: &[String]) -> Vec<CategoryScores> {
    #[cfg(target_arch = "wasm32")]
    return crate::guest::host_classify(texts);
    #[cfg(not(target_arch = "wasm32"))]
    NATIVE.with(|n| texts.iter().map(|t| n.borrow().classify.get(t).cloned().unwrap_or_default()).collect())
}

/// The labels each entity holds now (`user:<id>`, `channel:<id>`: see
/// [`crate::Event::entities`]).
pub fn labels(entities: &[String]) -> Vec<Vec<EntityLabel>> {
    #[cfg(target_arch = "wasm32")]
    return crate::guest::host_labels(entities);
    #[cfg(not(target_arch = "wasm32"))]
    NATIVE.with(|n| entities.iter().map(|e| n.borrow().labels.get(e).cloned().unwrap_or_default()).collect())
}

/// What native tests lend (see `testing::lend_*`).
#[derive(Default)]
pub(crate) struct Native {
    pub similar: BTreeMap<String, Vec<Neighbour>>,
    pub classify: BTreeMap<String, CategoryScores>,
    pub labels: BTreeMap<String, Vec<EntityLabel>>,
}

thread_local! {
    pub(crate) static NATIVE: RefCell<Native> = RefCell::new(Native::default());
}
