//! Multinomial logistic regression with an L2 penalty, fitted by L-BFGS: the
//! solver behind `palisade train`. Our own, small, because the maintained Rust
//! ones (`linfa-logistic`) take a dense design matrix, and ours is sparse
//! (hundreds of thousands of hashed n-gram columns, a few hundred non-zeros per row).
//!
//! Objective, scikit-learn's (`LogisticRegression(C=…)`, multinomial) divided by
//! the total sample weight S — the same minimiser:
//! `(1/S) Σ sᵢ · −log softmax(xᵢW + b)[yᵢ]  +  ‖W‖² / (2·C·S)`; the intercept is
//! not penalised. `tests::matches_scikit_learn` checks a known solution.

use rayon::prelude::*;

/// A sparse row: (column, value), columns ascending.
pub type Row = Vec<(u32, f32)>;

/// The design: rows, their classes and sample weights.
pub struct Problem<'a> {
    pub rows: &'a [Row],
    pub labels: &'a [u8],
    pub weights: &'a [f32],
    pub columns: usize,
    pub classes: usize,
    /// Weights held at 0 (indices `column * classes + class`): a feature kept
    /// out of a class's score.
    pub frozen: &'a [usize],
}

/// Fitted weights: `w[column * classes + class]`, then the intercepts.
#[derive(Debug, Clone)]
pub struct Fit {
    pub w: Vec<f32>,
    pub b: Vec<f32>,
    pub iterations: usize,
    pub loss: f64,
}

#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Inverse regularisation strength (scikit-learn's `C`).
    pub c: f64,
    pub max_iter: usize,
    /// Stop when the gradient's largest entry is below this.
    pub tol: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { c: 3.0, max_iter: 300, tol: 1e-5 }
    }
}

/// Class probabilities of one row (softmax of its logits), into `out`.
pub fn probabilities(row: &[(u32, f32)], w: &[f32], b: &[f32], out: &mut [f32]) {
    let k = b.len();
    out.copy_from_slice(b);
    for (j, x) in row {
        let at = *j as usize * k;
        for (o, wv) in out.iter_mut().zip(&w[at..at + k]) {
            *o += wv * x;
        }
    }
    softmax(out);
}

pub(crate) fn softmax(z: &mut [f32]) {
    let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in z.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    z.iter_mut().for_each(|v| *v /= sum);
}

/// Loss and gradient at `theta` (`[W, b]`, f64). `scratch` holds one gradient
/// buffer per worker, reused across calls (allocating megabytes per call cost
/// more in page faults than the arithmetic).
fn evaluate(p: &Problem<'_>, theta: &[f64], c: f64, total_weight: f64, scratch: &mut [Vec<f64>]) -> (f64, Vec<f64>) {
    let k = p.classes;
    let n_w = p.columns * k;
    let chunk = p.rows.len().div_ceil(scratch.len()).max(1);
    let losses: Vec<f64> = scratch
        .par_iter_mut()
        .enumerate()
        .map(|(ci, g)| {
            g.iter_mut().for_each(|v| *v = 0.0);
            let mut loss = 0f64;
            let mut z = vec![0f64; k];
            let from = (ci * chunk).min(p.rows.len());
            let to = (from + chunk).min(p.rows.len());
            for i in from..to {
                let row = &p.rows[i];
                z.copy_from_slice(&theta[n_w..]);
                for (j, x) in row {
                    let at = *j as usize * k;
                    for (zv, wv) in z.iter_mut().zip(&theta[at..at + k]) {
                        *zv += wv * f64::from(*x);
                    }
                }
                let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let log_sum = z.iter().map(|v| (v - max).exp()).sum::<f64>().ln() + max;
                let (y, s) = (p.labels[i] as usize, f64::from(p.weights[i]));
                loss += s * (log_sum - z[y]);
                for (class, zv) in z.iter_mut().enumerate() {
                    let indicator = if class == y { 1.0 } else { 0.0 };
                    *zv = s * ((*zv - log_sum).exp() - indicator);
                }
                for (j, x) in row {
                    let at = *j as usize * k;
                    for (gv, d) in g[at..at + k].iter_mut().zip(&z) {
                        *gv += d * f64::from(*x);
                    }
                }
                for (gv, d) in g[n_w..].iter_mut().zip(&z) {
                    *gv += d;
                }
            }
            loss
        })
        .collect();
    let (first, rest) = scratch.split_first().expect("one buffer at least");
    let mut grad = first.clone();
    for other in rest {
        grad.iter_mut().zip(other).for_each(|(a, b)| *a += b);
    }
    let penalty = 1.0 / (c * total_weight);
    let mut reg = 0.0;
    for (g, w) in grad[..n_w].iter_mut().zip(&theta[..n_w]) {
        *g += penalty * w * total_weight;
        reg += w * w;
    }
    grad.iter_mut().for_each(|g| *g /= total_weight);
    // A frozen weight never moves: L-BFGS's direction is built from gradients
    // and steps, both 0 there.
    p.frozen.iter().for_each(|i| grad[*i] = 0.0);
    (losses.iter().sum::<f64>() / total_weight + 0.5 * penalty * reg, grad)
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Fit by L-BFGS (10 correction pairs, backtracking Armijo line search), from
/// `start` when given (a warm start), else zeros.
pub fn fit(p: &Problem<'_>, s: Settings, start: Option<&Fit>) -> Fit {
    let k = p.classes;
    let n = p.columns * k + k;
    let total_weight: f64 = p.weights.iter().map(|w| f64::from(*w)).sum::<f64>().max(f64::MIN_POSITIVE);
    let mut theta = match start {
        Some(f) => f.w.iter().chain(&f.b).map(|v| f64::from(*v)).collect(),
        None => vec![0f64; n],
    };
    p.frozen.iter().for_each(|i| theta[*i] = 0.0);
    let mut scratch = vec![vec![0f64; n]; rayon::current_num_threads().max(1)];
    let (mut loss, mut grad) = evaluate(p, &theta, s.c, total_weight, &mut scratch);
    let memory = 10;
    let (mut s_hist, mut y_hist): (Vec<Vec<f64>>, Vec<Vec<f64>>) = (Vec::new(), Vec::new());
    let mut iterations = 0;
    while iterations < s.max_iter {
        if grad.iter().fold(0f64, |m, g| m.max(g.abs())) < s.tol {
            break;
        }
        // Two-loop recursion: direction = −H·grad.
        let mut q = grad.clone();
        let mut alphas = Vec::with_capacity(s_hist.len());
        for (sv, yv) in s_hist.iter().zip(&y_hist).rev() {
            let a = dot(sv, &q) / dot(yv, sv);
            q.iter_mut().zip(yv).for_each(|(qv, y)| *qv -= a * y);
            alphas.push(a);
        }
        let gamma = match (s_hist.last(), y_hist.last()) {
            (Some(sv), Some(yv)) => dot(sv, yv) / dot(yv, yv),
            _ => 1.0 / grad.iter().map(|g| g * g).sum::<f64>().sqrt().max(1.0),
        };
        q.iter_mut().for_each(|v| *v *= gamma);
        for ((sv, yv), a) in s_hist.iter().zip(&y_hist).zip(alphas.into_iter().rev()) {
            let beta = dot(yv, &q) / dot(yv, sv);
            q.iter_mut().zip(sv).for_each(|(qv, s)| *qv += (a - beta) * s);
        }
        let mut direction: Vec<f64> = q.into_iter().map(|v| -v).collect();
        let mut slope = dot(&grad, &direction);
        if slope >= 0.0 {
            // Not a descent direction (curvature lost): restart from steepest descent.
            s_hist.clear();
            y_hist.clear();
            direction = grad.iter().map(|g| -g).collect();
            slope = dot(&grad, &direction);
        }
        let mut step = 1.0;
        let (new_theta, new_loss, new_grad) = loop {
            let candidate: Vec<f64> = theta.iter().zip(&direction).map(|(t, d)| t + step * d).collect();
            let (l, g) = evaluate(p, &candidate, s.c, total_weight, &mut scratch);
            if l <= loss + 1e-4 * step * slope || step < 1e-10 {
                break (candidate, l, g);
            }
            step *= 0.5;
        };
        iterations += 1;
        let sv: Vec<f64> = new_theta.iter().zip(&theta).map(|(a, b)| a - b).collect();
        let yv: Vec<f64> = new_grad.iter().zip(&grad).map(|(a, b)| a - b).collect();
        let converged = (loss - new_loss).abs() <= 1e-10 * loss.abs().max(1.0);
        if dot(&sv, &yv) > 1e-12 {
            if s_hist.len() == memory {
                s_hist.remove(0);
                y_hist.remove(0);
            }
            s_hist.push(sv);
            y_hist.push(yv);
        }
        (theta, loss, grad) = (new_theta, new_loss, new_grad);
        if converged {
            break;
        }
    }
    let w = theta[..p.columns * k].iter().map(|v| *v as f32).collect();
    let b = theta[p.columns * k..].iter().map(|v| *v as f32).collect();
    Fit { w, b, iterations, loss }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// scikit-learn 1.9.1 on the same 12 rows:
    /// `LogisticRegression(C=1.0, tol=1e-10, max_iter=10000).fit(X, y)`
    /// (lbfgs, multinomial; weights `sample_weight`), printed `coef_`, `intercept_`.
    #[test]
    fn matches_scikit_learn() {
        let x: [[f32; 3]; 12] = [
            [1.0, 0.0, 0.5],
            [0.9, 0.1, 0.0],
            [0.8, 0.3, 0.2],
            [1.2, 0.0, 0.1],
            [0.0, 1.0, 0.3],
            [0.1, 0.8, 0.0],
            [0.2, 1.1, 0.4],
            [0.5, 0.6, 0.1],
            [0.0, 0.1, 1.0],
            [0.3, 0.0, 0.9],
            [0.1, 0.2, 1.3],
            [0.6, 0.4, 0.7],
        ];
        let labels: [u8; 12] = [0, 0, 0, 0, 1, 1, 1, 0, 2, 2, 2, 1];
        let weights: [f32; 12] = [1.0, 1.0, 2.0, 1.0, 1.0, 0.5, 1.0, 1.0, 1.0, 1.0, 3.0, 1.0];
        let rows: Vec<Row> = x
            .iter()
            .map(|r| r.iter().enumerate().filter(|(_, v)| **v != 0.0).map(|(j, v)| (j as u32, *v)).collect())
            .collect();
        let p = Problem { rows: &rows, labels: &labels, weights: &weights, columns: 3, classes: 3, frozen: &[] };
        let fit = fit(&p, Settings { c: 1.0, max_iter: 1000, tol: 1e-9 }, None);
        let coef = [
            [SK_COEF[0], SK_COEF[1], SK_COEF[2]],
            [SK_COEF[3], SK_COEF[4], SK_COEF[5]],
            [SK_COEF[6], SK_COEF[7], SK_COEF[8]],
        ];
        for (class, row) in coef.iter().enumerate() {
            for (j, want) in row.iter().enumerate() {
                let got = fit.w[j * 3 + class];
                assert!((got - want).abs() < 1e-3, "coef[{class}][{j}] = {got}, scikit-learn {want}");
            }
            assert!((fit.b[class] - SK_INTERCEPT[class]).abs() < 1e-3, "intercept[{class}] = {}", fit.b[class]);
        }
    }

    const SK_COEF: [f32; 9] =
        [1.035521, -0.396408, -0.92249, -0.362229, 0.965248, -0.269888, -0.673292, -0.568841, 1.192378];
    const SK_INTERCEPT: [f32; 3] = [0.424196, -0.227049, -0.197148];

    #[test]
    fn separable_classes_are_learned_and_probabilities_sum_to_one() {
        let rows: Vec<Row> = (0..40).map(|i| vec![((i % 4) as u32, 1.0)]).collect();
        let labels: Vec<u8> = (0..40).map(|i| (i % 4 / 2) as u8).collect();
        let weights = vec![1.0; 40];
        let p = Problem { rows: &rows, labels: &labels, weights: &weights, columns: 4, classes: 2, frozen: &[] };
        let f = fit(&p, Settings { c: 10.0, ..Settings::default() }, None);
        let mut out = [0f32; 2];
        for (row, y) in rows.iter().zip(&labels) {
            probabilities(row, &f.w, &f.b, &mut out);
            assert!((out.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            assert!(out[*y as usize] > 0.9, "{out:?}");
        }
    }

    #[test]
    fn a_frozen_weight_stays_zero_and_the_others_still_learn() {
        // Column 1 predicts class 2 perfectly; its weight for class 1 is frozen.
        let rows: Vec<Row> = (0..60).map(|i| vec![((i % 3 == 2) as u32, 1.0)]).collect();
        let labels: Vec<u8> = (0..60).map(|i| (i % 3) as u8).collect();
        let weights = vec![1.0; 60];
        let frozen = [3 + 1];
        let p = Problem { rows: &rows, labels: &labels, weights: &weights, columns: 2, classes: 3, frozen: &frozen };
        let free = Problem { frozen: &[], ..p };
        let start = fit(&free, Settings::default(), None);
        assert!(start.w[4].abs() > 0.1, "unfrozen, column 1 pulls on class 1 too: {:?}", start.w);
        for warm in [None, Some(&start)] {
            let f = fit(&p, Settings::default(), warm);
            assert_eq!(f.w[4], 0.0, "{:?}", f.w);
            assert!(f.w[5] > 1.0, "column 1 still learns class 2: {:?}", f.w);
        }
    }
}
