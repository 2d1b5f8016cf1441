//! An inverted-file (IVF) index over normalised vectors: k-means centroids split
//! the rows into lists, and a query scores only the rows of its `probes` nearest
//! lists. Each list keeps a contiguous copy of its rows' vectors, so a batch is
//! scored list by list (the queries probing that list × its rows, `dot::dots`) —
//! the same kernel as exact search, on a fraction of the rows; the price is a
//! second copy of the vectors. Built when a store reaches `min_rows`, rebuilt
//! when it has doubled since; rows added in between join their nearest list.
//! Training (k-means) uses ndarray's GEMM: large products, where packing pays.

use super::dot::dots;
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
    /// The vectors of those rows, per list, contiguous.
    list_vectors: Vec<Vec<f32>>,
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
            list_vectors: vec![Vec::new(); nlist],
            trained_at: n,
        };
        for ((row, c), v) in
            nearest(vectors, &ivf.centroids, dim).into_iter().enumerate().zip(vectors.chunks_exact(dim))
        {
            ivf.lists[c].push(row as u32);
            ivf.list_vectors[c].extend_from_slice(v);
        }
        ivf
    }

    /// Put a new row in its nearest list.
    pub fn add(&mut self, row: usize, vector: &[f32]) {
        let c = nearest(vector, &self.centroids, self.dim)[0];
        self.lists[c].push(row as u32);
        self.list_vectors[c].extend_from_slice(vector);
    }

    /// Move a row whose vector changed.
    pub fn update(&mut self, row: usize, vector: &[f32]) {
        let dim = self.dim;
        for (rows, vectors) in self.lists.iter_mut().zip(&mut self.list_vectors) {
            if let Some(at) = rows.iter().position(|r| *r as usize == row) {
                rows.swap_remove(at);
                let last = vectors.len() - dim;
                vectors.copy_within(last.., at * dim);
                vectors.truncate(last);
            }
        }
        self.add(row, vector);
    }

    /// The `k` best (similarity, row) of each query over its `probes` nearest lists.
    pub fn search(&self, queries: &[f32], probes: usize, k: usize) -> Vec<Vec<(f32, usize)>> {
        let dim = self.dim;
        let queries: Vec<&[f32]> = queries.chunks_exact(dim).collect();
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
        let mut best: Vec<Vec<(f32, usize)>> = vec![Vec::with_capacity(k + 1); queries.len()];
        let mut sub = Vec::new();
        for (list, qs) in probing.iter().enumerate().filter(|(l, qs)| !qs.is_empty() && !self.lists[*l].is_empty()) {
            let rows = &self.lists[list];
            sub.clear();
            sub.extend(qs.iter().map(|qi| queries[*qi]));
            dots(&sub, &self.list_vectors[list], dim, &mut scores);
            for (qi, scores) in qs.iter().zip(scores.chunks_exact(rows.len())) {
                push_all(&mut best[*qi], scores, rows, k);
            }
        }
        best
    }
}

/// Keep `best` the `k` largest pairs seen, best first.
fn push_best(best: &mut Vec<(f32, usize)>, pair: (f32, usize), k: usize) {
    if best.len() < k || pair.0 > best[best.len() - 1].0 {
        let at = best.partition_point(|(b, _)| *b >= pair.0);
        best.insert(at, pair);
        best.truncate(k);
    }
}

/// `push_best` for each (score, row): a tight compare against the current k-th
/// score first (most rows are not among the best; this loop is hot).
fn push_all(best: &mut Vec<(f32, usize)>, scores: &[f32], rows: &[u32], k: usize) {
    let mut floor = if best.len() < k { f32::NEG_INFINITY } else { best[k - 1].0 };
    for (s, row) in scores.iter().zip(rows) {
        if *s > floor {
            push_best(best, (*s, *row as usize), k);
            if best.len() == k {
                floor = best[k - 1].0;
            }
        }
    }
}

/// The `k` best (score, index) pairs, best first (a small sorted list: k is small).
pub(super) fn top_k(scores: impl Iterator<Item = (f32, usize)>, k: usize) -> Vec<(f32, usize)> {
    let mut best = Vec::with_capacity(k + 1);
    scores.for_each(|pair| push_best(&mut best, pair, k));
    best
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
