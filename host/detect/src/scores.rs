//! How predictions score against labels: per-category precision, recall and F1,
//! macro and weighted F1, accuracy and a confusion matrix. The one scoring code
//! `palisade eval`, backtests and shadow comparisons report with.

use std::collections::BTreeMap;

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
    /// Flagged or not: any risky category against `LOW_RISK`, on both sides.
    pub any_flag: Stat,
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
        let risky = |l: &String| l != "LOW_RISK";
        let flagged = predicted.iter().filter(|p| risky(p)).count() as f64;
        let support = truth.iter().filter(|t| risky(t)).count();
        let hit = truth.iter().zip(predicted).filter(|(t, p)| risky(t) && risky(p)).count() as f64;
        let (precision, recall, f1) = crate::classify::train::prf(hit, flagged, support);
        Scores {
            any_flag: Stat { precision, recall, f1, support },
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
    let a = scores.any_flag;
    out += &format!(
        "any flag (risky vs LOW_RISK): precision {:.3}   recall {:.3}   F1 {:.3}   ({} risky)\n",
        a.precision, a.recall, a.f1, a.support
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
        // A hate message called TOXIC is a wrong category but a right flag.
        let t: Vec<String> = ["HATE_SPEECH", "SPAM", "LOW_RISK", "LOW_RISK"].map(String::from).to_vec();
        let p: Vec<String> = ["TOXIC", "LOW_RISK", "SPAM", "LOW_RISK"].map(String::from).to_vec();
        let a = Scores::of(&t, &p).any_flag;
        assert_eq!((a.precision, a.recall, a.f1, a.support), (0.5, 0.5, 0.5, 2));
    }
}
