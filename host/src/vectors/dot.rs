//! Dot products of a few queries with many stored rows — the inner loop of every
//! vector search here (exact search, IVF centroids and lists). Both sides keep
//! their components contiguous, so this is a blocked dot-product kernel rather
//! than a GEMM: no packing (which cost more than the arithmetic for the small
//! query × list products of an IVF search), 4 queries × 2 rows per block with
//! 8-lane accumulators, rows taken a cache-sized tile at a time. The block is
//! AVX2 + FMA intrinsics where the CPU has them (checked at run time), plain Rust
//! elsewhere.

/// Lanes per accumulator (one AVX register of f32).
const LANES: usize = 8;

/// `out[i * n + j] = queries[i] · rows[j]`, where `rows` holds `n` rows of
/// `dim` components back to back; `out` is resized to `queries.len() × n`.
pub fn dots(queries: &[&[f32]], rows: &[f32], dim: usize, out: &mut Vec<f32>) {
    let n = rows.len().checked_div(dim).unwrap_or(0);
    out.clear();
    out.resize(queries.len() * n, 0.0);
    if n == 0 || queries.is_empty() {
        return;
    }
    assert!(queries.iter().all(|q| q.len() == dim), "every query has the rows' dimension");
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        #[allow(unsafe_code)]
        // SAFETY: the CPU has AVX2 and FMA (checked just above).
        unsafe {
            avx2::dots(queries, rows, dim, out)
        };
        return;
    }
    dots_with::<Portable>(queries, rows, dim, out);
}

/// The `Q × R` dot products of `Q` queries with `R` rows, all of one length.
trait Block {
    fn block<const Q: usize, const R: usize>(q: [&[f32]; Q], r: [&[f32]; R]) -> [[f32; R]; Q];
}

/// Rows per tile: a tile (≈ 96 KiB of 384-d rows) stays in cache while every
/// query block passes over it, so large stores are read from memory once.
const TILE_BYTES: usize = 96 << 10;

#[inline(always)]
fn dots_with<K: Block>(queries: &[&[f32]], rows: &[f32], dim: usize, out: &mut [f32]) {
    let n = rows.len() / dim;
    let tile = (TILE_BYTES / (dim * 4)).max(2);
    for (t, tile_rows) in rows.chunks(tile * dim).enumerate() {
        let j0 = t * tile;
        for (block, qs) in queries.chunks(4).enumerate() {
            let out = &mut out[block * 4 * n + j0..];
            match *qs {
                [a, b, c, d] => tile_pass::<K, 4>([a, b, c, d], tile_rows, dim, n, out),
                [a, b, c] => tile_pass::<K, 3>([a, b, c], tile_rows, dim, n, out),
                [a, b] => tile_pass::<K, 2>([a, b], tile_rows, dim, n, out),
                [a] => tile_pass::<K, 1>([a], tile_rows, dim, n, out),
                _ => unreachable!("chunks of 1 to 4"),
            }
        }
    }
}

/// `Q` queries against every row of a tile, two rows at a time; query `a`'s score
/// with the tile's row `j` goes to `out[a * stride + j]`.
#[inline(always)]
fn tile_pass<K: Block, const Q: usize>(q: [&[f32]; Q], rows: &[f32], dim: usize, stride: usize, out: &mut [f32]) {
    let n = rows.len() / dim;
    let mut j = 0;
    while j + 2 <= n {
        let s = K::block::<Q, 2>(q, [&rows[j * dim..(j + 1) * dim], &rows[(j + 1) * dim..(j + 2) * dim]]);
        for (a, pair) in s.iter().enumerate() {
            out[a * stride + j..a * stride + j + 2].copy_from_slice(pair);
        }
        j += 2;
    }
    if j < n {
        let s = K::block::<Q, 1>(q, [&rows[j * dim..(j + 1) * dim]]);
        for (a, one) in s.iter().enumerate() {
            out[a * stride + j] = one[0];
        }
    }
}

/// Plain Rust, for CPUs without AVX2 + FMA (the compiler vectorizes what it can).
struct Portable;

impl Block for Portable {
    #[inline(always)]
    fn block<const Q: usize, const R: usize>(q: [&[f32]; Q], r: [&[f32]; R]) -> [[f32; R]; Q] {
        let mut out = [[0f32; R]; Q];
        for (a, q) in q.iter().enumerate() {
            for (b, r) in r.iter().enumerate() {
                let mut acc = [0f32; LANES];
                let (qc, rc) = (q.chunks_exact(LANES), r.chunks_exact(LANES));
                let tail: f32 = qc.remainder().iter().zip(rc.remainder()).map(|(x, y)| x * y).sum();
                for (x, y) in qc.zip(rc) {
                    for l in 0..LANES {
                        acc[l] += x[l] * y[l];
                    }
                }
                out[a][b] = acc.iter().sum::<f32>() + tail;
            }
        }
        out
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx2 {
    //! The same kernel with AVX2 + FMA intrinsics: `Q × R` 8-lane accumulators
    //! (at most 8 registers), each loaded query and row used `R` and `Q` times.
    use super::{Block, LANES, dots_with};
    use std::arch::x86_64::*;

    /// # Safety
    /// The CPU must have AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dots(queries: &[&[f32]], rows: &[f32], dim: usize, out: &mut [f32]) {
        dots_with::<Avx2>(queries, rows, dim, out);
    }

    struct Avx2;

    impl Block for Avx2 {
        #[inline(always)]
        fn block<const Q: usize, const R: usize>(q: [&[f32]; Q], r: [&[f32]; R]) -> [[f32; R]; Q] {
            // SAFETY: only reached through `dots` above, whose caller checked the CPU.
            unsafe { block(q, r) }
        }
    }

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn block<const Q: usize, const R: usize>(q: [&[f32]; Q], r: [&[f32]; R]) -> [[f32; R]; Q] {
        let dim = r[0].len();
        let main = dim - dim % LANES;
        let mut acc = [[_mm256_setzero_ps(); R]; Q];
        let mut rv = [_mm256_setzero_ps(); R];
        let mut c = 0;
        while c < main {
            for b in 0..R {
                // SAFETY: c + LANES <= main <= dim = r[b].len().
                rv[b] = unsafe { _mm256_loadu_ps(r[b].as_ptr().add(c)) };
            }
            for a in 0..Q {
                // SAFETY: every query has length dim (checked by the public `dots`).
                let qv = unsafe { _mm256_loadu_ps(q[a].as_ptr().add(c)) };
                for b in 0..R {
                    acc[a][b] = _mm256_fmadd_ps(qv, rv[b], acc[a][b]);
                }
            }
            c += LANES;
        }
        let mut out = [[0f32; R]; Q];
        for a in 0..Q {
            for b in 0..R {
                let mut lanes = [0f32; LANES];
                // SAFETY: `lanes` has room for 8 floats.
                unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), acc[a][b]) };
                let tail: f32 = (main..dim).map(|i| q[a][i] * r[b][i]).sum();
                out[a][b] = lanes.iter().sum::<f32>() + tail;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(q: &[f32], r: &[f32]) -> f32 {
        q.iter().zip(r).map(|(a, b)| a * b).sum()
    }

    #[test]
    fn every_shape_matches_the_plain_sum() {
        // Query counts around the block of 4, row counts around the pair, and
        // dimensions with and without a tail past the 8 lanes.
        for dim in [1, 7, 8, 13, 384] {
            for nq in 1..=9 {
                for n in 1..=5 {
                    let val = |i: usize| ((i * 7919) % 23) as f32 / 11.0 - 1.0;
                    let queries: Vec<Vec<f32>> = (0..nq).map(|i| (0..dim).map(|k| val(i * 31 + k)).collect()).collect();
                    let rows: Vec<f32> = (0..n * dim).map(|i| val(i + 5)).collect();
                    let refs: Vec<&[f32]> = queries.iter().map(Vec::as_slice).collect();
                    let mut out = Vec::new();
                    dots(&refs, &rows, dim, &mut out);
                    assert_eq!(out.len(), nq * n);
                    for i in 0..nq {
                        for j in 0..n {
                            let want = naive(&queries[i], &rows[j * dim..(j + 1) * dim]);
                            let got = out[i * n + j];
                            assert!((got - want).abs() <= 1e-4 * (1.0 + want.abs()), "{dim} {nq} {n}: {got} vs {want}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn rows_past_one_tile_land_in_their_columns() {
        let dim = 384;
        let n = TILE_BYTES / (dim * 4) * 2 + 3;
        let rows: Vec<f32> = (0..n * dim).map(|i| (i % dim == i / dim % dim) as u8 as f32).collect();
        let queries: Vec<Vec<f32>> = (0..5).map(|i| (0..dim).map(|k| (k == i * 70) as u8 as f32).collect()).collect();
        let refs: Vec<&[f32]> = queries.iter().map(Vec::as_slice).collect();
        let mut out = Vec::new();
        dots(&refs, &rows, dim, &mut out);
        // Row j has its one at component j % dim; query i at i * 70.
        for i in 0..5 {
            for j in 0..n {
                assert_eq!(out[i * n + j], (j % dim == i * 70) as u8 as f32, "query {i} row {j}");
            }
        }
    }

    #[test]
    fn nothing_to_score_is_empty() {
        let mut out = vec![1.0];
        dots(&[], &[1.0, 2.0], 2, &mut out);
        assert!(out.is_empty());
        dots(&[&[1.0, 2.0]], &[], 2, &mut out);
        assert!(out.is_empty());
    }
}
