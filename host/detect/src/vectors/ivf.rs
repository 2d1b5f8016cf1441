//! An inverted-file (IVF) index over normalised vectors: k-means centroids split
//! the rows into lists, and a query scores only the rows of its `probes` nearest
//! lists. Each list keeps a contiguous int8 copy of its rows' vectors (a quarter
//! of their f32 bytes), so a batch is scored list by list (the queries probing
//! that list × its rows, `dot::dots_i8`); the best `candidates(k)` per query are
//! then re-scored exactly against the store's f32 rows, so the similarities
//! returned are exact. Built when a store reaches `min_rows`, rebuilt when it has
//! doubled since; rows added in between join their nearest list. Training
//! (k-means) uses ndarray's GEMM: large products, where packing pays.

use super::dot::{dots, dots_i8, quantize};
use ndarray::ArrayView2;

/// When and how a store searches approximately.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ann {
    /// Stores with fewer rows are searched exactly.
    pub min_rows: usize,
    /// Lists scored per query.
    pub probes: usize,
}

pub struct Ivf {
    dim: usize,
    centroids: Vec<f32>,
    /// Row numbers per list.
    lists: Vec<Vec<u32>>,
    /// The int8 codes of those rows' vectors, per list, contiguous.
    list_codes: Vec<Vec<i8>>,
    /// Each of those rows' scale (vector ≈ scale × codes).
    list_scales: Vec<Vec<f32>>,
    /// Row count when the centroids were trained.
    pub trained_at: usize,
}

/// Most rows k-means trains on (a strided sample beyond that).
const MAX_TRAIN_ROWS: usize = 20_000;
const ITERATIONS: usize = 8;

impl Ivf {
    /// Train on `vectors` (`n × dim`, row-major) and assign every row.
    pub fn build(vectors: &[f32], dim: usize) -> Ivf {
        let n = vectors.len() / dim;
        let nlist = ((n as f64).sqrt() as usize).clamp(1, 4096);
        let stride = n.div_ceil(MAX_TRAIN_ROWS).max(1);
        let sample: Vec<f32> = vectors.chunks_exact(dim).step_by(stride).flatten().copied().collect();
        let m = sample.len() / dim;
        // Deterministic start: evenly spaced sample rows.
        let mut centroids: Vec<f32> =
            (0..nlist).flat_map(|c| sample[(c * m / nlist) * dim..][..dim].iter().copied()).collect();
        for _ in 0..ITERATIONS {
            let assigned = nearest(&sample, &centroids, dim);
            let mut sums = vec![0f32; nlist * dim];
            let mut counts = vec![0usize; nlist];
            for (row, c) in sample.chunks_exact(dim).zip(&assigned) {
                counts[*c] += 1;
                sums[c * dim..][..dim].iter_mut().zip(row).for_each(|(s, x)| *s += x);
            }
            for c in 0..nlist {
                if counts[c] > 0 {
                    // Spherical k-means: centroids are re-normalised means.
                    let mean = &mut sums[c * dim..][..dim];
                    let norm = mean.iter().map(|x| x * x).sum::<f32>().sqrt().max(f32::EPSILON);
                    mean.iter_mut().for_each(|x| *x /= norm);
                    centroids[c * dim..][..dim].copy_from_slice(mean);
                }
            }
        }
        let mut ivf = Ivf {
            dim,
            centroids,
            lists: vec![Vec::new(); nlist],
            list_codes: vec![Vec::new(); nlist],
            list_scales: vec![Vec::new(); nlist],
            trained_at: n,
        };
        for ((row, c), v) in
            nearest(vectors, &ivf.centroids, dim).into_iter().enumerate().zip(vectors.chunks_exact(dim))
        {
            ivf.push(c, row, v);
        }
        ivf
    }

    fn push(&mut self, list: usize, row: usize, vector: &[f32]) {
        self.lists[list].push(row as u32);
        let scale = quantize(vector, &mut self.list_codes[list]);
        self.list_scales[list].push(scale);
    }

    /// Put a new row in its nearest list.
    pub fn add(&mut self, row: usize, vector: &[f32]) {
        let c = nearest(vector, &self.centroids, self.dim)[0];
        self.push(c, row, vector);
    }

    /// Move a row whose vector changed.
    pub fn update(&mut self, row: usize, vector: &[f32]) {
        let dim = self.dim;
        for ((rows, codes), scales) in self.lists.iter_mut().zip(&mut self.list_codes).zip(&mut self.list_scales) {
            if let Some(at) = rows.iter().position(|r| *r as usize == row) {
                rows.swap_remove(at);
                scales.swap_remove(at);
                let last = codes.len() - dim;
                codes.copy_within(last.., at * dim);
                codes.truncate(last);
            }
        }
        self.add(row, vector);
    }

    /// The `k` best (similarity, row) of each query over its `probes` nearest lists;
    /// `vectors` are the store's rows (f32, row-major), for the exact re-scoring.
    pub fn search(&self, queries: &[f32], vectors: &[f32], probes: usize, k: usize) -> Vec<Vec<(f32, usize)>> {
        let dim = self.dim;
        let queries: Vec<&[f32]> = queries.chunks_exact(dim).collect();
        let mut query_codes = Vec::with_capacity(queries.len() * dim);
        let query_scales: Vec<f32> = queries.iter().map(|q| quantize(q, &mut query_codes)).collect();
        let nlist = self.lists.len();
        let mut scores = Vec::new();
        dots(&queries, &self.centroids, dim, &mut scores);
        // Which queries probe each list.
        let mut probing: Vec<Vec<usize>> = vec![Vec::new(); nlist];
        for (qi, row) in scores.chunks_exact(nlist).enumerate() {
            for (_, list) in top_k(row.iter().copied().enumerate().map(|(i, s)| (s, i)), probes) {
                probing[list].push(qi);
            }
        }
        // Candidates by the int8 scores, then the best k of them by the exact ones.
        let mut best: Vec<Best> = (0..queries.len()).map(|_| Best::new(candidates(k))).collect();
        let (mut sub, mut raw) = (Vec::new(), Vec::new());
        for (list, qs) in probing.iter().enumerate().filter(|(l, qs)| !qs.is_empty() && !self.lists[*l].is_empty()) {
            let (rows, row_scales) = (&self.lists[list], &self.list_scales[list]);
            sub.clear();
            sub.extend(qs.iter().map(|qi| &query_codes[qi * dim..(qi + 1) * dim]));
            dots_i8(&sub, &self.list_codes[list], dim, &mut raw);
            for (qi, raw) in qs.iter().zip(raw.chunks_exact(rows.len())) {
                let q_scale = query_scales[*qi];
                for ((r, s), row) in raw.iter().zip(row_scales).zip(rows) {
                    best[*qi].push(*r as f32 * q_scale * s, *row as usize);
                }
            }
        }
        let mut exact = Vec::new();
        queries
            .iter()
            .zip(best)
            .map(|(query, candidates)| {
                let mut rescored = Best::new(k);
                for (_, row) in candidates.into_pairs() {
                    dots(&[query], &vectors[row * dim..(row + 1) * dim], dim, &mut exact);
                    rescored.push(exact[0], row);
                }
                rescored.into_sorted()
            })
            .collect()
    }
}

/// How many candidates per query the int8 scores keep for exact re-scoring: the
/// int8 error (~1e-3 in similarity) only reorders near-ties, which these cover.
fn candidates(k: usize) -> usize {
    k + 8
}

/// The best `k` (score, row) pairs seen: an unsorted buffer of up to `2k`, cut
/// back to the `k` best when full, and the score a new pair must beat once `k`
/// are held (most rows are not among the best: one compare each).
pub(super) struct Best {
    k: usize,
    pairs: Vec<(f32, usize)>,
    floor: f32,
}

/// Higher score first; the lower row on a tie (the same answer in any order).
fn better(a: &(f32, usize), b: &(f32, usize)) -> std::cmp::Ordering {
    b.0.total_cmp(&a.0).then(a.1.cmp(&b.1))
}

impl Best {
    pub(super) fn new(k: usize) -> Self {
        Best { k, pairs: Vec::with_capacity(2 * k), floor: f32::NEG_INFINITY }
    }

    pub(super) fn push(&mut self, score: f32, row: usize) {
        if score > self.floor && self.k > 0 {
            self.pairs.push((score, row));
            if self.pairs.len() == 2 * self.k {
                self.cut();
            }
        }
    }

    fn cut(&mut self) {
        if self.pairs.len() > self.k {
            self.pairs.select_nth_unstable_by(self.k - 1, better);
            self.pairs.truncate(self.k);
            self.floor = self.pairs.iter().fold(f32::INFINITY, |m, p| m.min(p.0));
        }
    }

    /// The best `k`, in no order.
    fn into_pairs(mut self) -> Vec<(f32, usize)> {
        self.cut();
        self.pairs
    }

    /// The best `k`, best first.
    pub(super) fn into_sorted(self) -> Vec<(f32, usize)> {
        let mut pairs = self.into_pairs();
        pairs.sort_unstable_by(better);
        pairs
    }
}

/// The `k` best (score, index) pairs, best first.
pub(super) fn top_k(scores: impl Iterator<Item = (f32, usize)>, k: usize) -> Vec<(f32, usize)> {
    let mut best = Best::new(k);
    scores.for_each(|(s, i)| best.push(s, i));
    best.into_sorted()
}

/// The nearest centroid of each row (one matrix product).
fn nearest(rows: &[f32], centroids: &[f32], dim: usize) -> Vec<usize> {
    let r = ArrayView2::from_shape((rows.len() / dim, dim), rows).expect("row shape");
    let c = ArrayView2::from_shape((centroids.len() / dim, dim), centroids).expect("centroid shape");
    r.dot(&c.t())
        .outer_iter()
        .map(|s| s.iter().enumerate().fold((0, f32::MIN), |b, (i, x)| if *x > b.1 { (i, *x) } else { b }).0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_keeps_the_k_highest_whatever_the_order() {
        // 100 scores, pushed in a scrambled order, through several cuts of the buffer.
        let scores: Vec<(f32, usize)> = (0..100).map(|i| (((i * 37) % 100) as f32, i)).collect();
        let got = top_k(scores.iter().copied(), 5);
        let want: Vec<(f32, usize)> =
            [99, 98, 97, 96, 95].map(|s| (s as f32, scores.iter().find(|p| p.0 == s as f32).unwrap().1)).to_vec();
        assert_eq!(got, want);
        // Ties go to the lower row; fewer pairs than k, or k = 0, are fine.
        assert_eq!(top_k([(1.0, 7), (1.0, 3), (0.5, 1), (1.0, 5)].into_iter(), 2), [(1.0, 3), (1.0, 5)]);
        assert_eq!(top_k([(0.5, 1)].into_iter(), 3), [(0.5, 1)]);
        assert!(top_k([(0.5, 1)].into_iter(), 0).is_empty());
    }
}
