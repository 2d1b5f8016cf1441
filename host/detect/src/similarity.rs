//! From nearest labelled examples to an embedding score and category.
//!
//! Each of the k neighbours weighs `w = max(similarity, 0)²`, so close examples
//! dominate. The score is the weighted share of risky (non-`LOW_RISK`) neighbours,
//! scaled down when even the nearest one is far (`× min(1, top similarity / 0.5)`);
//! the category is the risky label with the largest total weight.
//!
//! With a classifier, [`label_mix`] gives the same weights as a distribution over
//! every category, which the cascade blends into the classifier's scores.

use crate::classify::CATEGORIES;
use crate::vectors::Neighbour;
use palisade_vocab::Category;

/// Each category's total weight (`max(similarity, 0)²` per neighbour) and the
/// top similarity; `None` without neighbours.
fn weights(neighbours: &[Neighbour]) -> Option<([f32; CATEGORIES.len()], f32)> {
    let top = neighbours.first()?.similarity;
    let mut totals = [0f32; CATEGORIES.len()];
    for n in neighbours {
        if let Some(i) = CATEGORIES.iter().position(|c| *c == &*n.label) {
            totals[i] += n.similarity.max(0.0).powi(2);
        }
    }
    Some((totals, top))
}

/// How much nearest examples are trusted: `min(1, top similarity / 0.5)`.
fn trust(top: f32) -> f32 {
    (top / 0.5).clamp(0.0, 1.0)
}

/// The neighbours' label shares (the weights above, summing to 1) and how much to
/// trust them; `None` without neighbours (or none with weight).
pub fn label_mix(neighbours: &[Neighbour]) -> Option<([f32; CATEGORIES.len()], f32)> {
    let (mut totals, top) = weights(neighbours)?;
    let all: f32 = totals.iter().sum();
    if all <= 0.0 {
        return None;
    }
    totals.iter_mut().for_each(|t| *t /= all);
    Some((totals, trust(top)))
}

/// `(score, category)`, or `None` without neighbours.
pub fn embedding_score(neighbours: &[Neighbour]) -> Option<(f32, Category)> {
    let (totals, top) = weights(neighbours)?;
    let all: f32 = totals.iter().sum();
    if all <= 0.0 {
        return Some((0.0, Category::LowRisk));
    }
    let risky: f32 = totals[1..].iter().sum();
    let (best, weight) = totals[1..].iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).expect("categories");
    let category = if *weight > 0.0 { Category::ALL[best + 1] } else { Category::LowRisk };
    Some(((risky / all) * trust(top), category))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(label: &str, similarity: f32) -> Neighbour {
        Neighbour { id: "".into(), label: label.into(), text: "".into(), similarity }
    }

    #[test]
    fn close_risky_neighbours_score_high_and_far_ones_low() {
        let (s, c) = embedding_score(&[n("SPAM", 0.9), n("SPAM", 0.8), n("LOW_RISK", 0.3)]).unwrap();
        assert!(s > 0.9 && c == "SPAM", "{s} {c}");
        let (s, _) = embedding_score(&[n("SPAM", 0.2), n("SPAM", 0.2)]).unwrap();
        assert!(s < 0.5, "far neighbours are weak evidence: {s}");
        assert_eq!(embedding_score(&[n("LOW_RISK", 0.9)]).unwrap(), (0.0, Category::LowRisk));
        assert!(embedding_score(&[]).is_none());
        let (mix, trust) = label_mix(&[n("SPAM", 0.8), n("LOW_RISK", 0.4), n("unknown", 0.9)]).unwrap();
        assert!((mix.iter().sum::<f32>() - 1.0).abs() < 1e-6 && mix[1] > 0.75 && trust == 1.0, "{mix:?}");
        assert!(label_mix(&[]).is_none());
    }
}
