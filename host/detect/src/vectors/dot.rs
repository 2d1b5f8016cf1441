//! Dot products of a few queries with many stored rows — the inner loop of every
//! vector search here (exact search, IVF centroids and lists). Both sides keep
//! their components contiguous, so this is a blocked dot-product kernel rather
//! than a GEMM: no packing (which cost more than the arithmetic for the small
//! query × list products of an IVF search), 4 queries × 2 rows per block with
//! 8-lane accumulators, rows taken a cache-sized tile at a time. The block is
//! AVX2 + FMA intrinsics where the CPU has them (checked at run time), plain Rust
//! elsewhere.
//!
//! The same blocking over int8 codes (`quantize`, `dots_i8`): exact integer dot
//! products, a quarter of the bytes of f32 and, with AVX-VNNI, four times the
//! products per instruction. The IVF lists use them to find candidates, which are
//! then re-scored in f32.

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
    dots_with::<Portable, f32, f32>(queries, rows, dim, out);
}

/// Int8 codes of `v` appended to `codes`, and their scale: `v ≈ scale × code`,
/// codes in -127..=127 (the largest component maps to ±127).
pub fn quantize(v: &[f32], codes: &mut Vec<i8>) -> f32 {
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
    // Rounds half away from zero (`as` truncates); `f32::round` is a libm call here.
    codes.extend(v.iter().map(|x| (x / scale + 0.5f32.copysign(*x)) as i8));
    scale
}

/// `out[i * n + j] = queries[i] · rows[j]` over int8 codes, exactly (in i32); the
/// caller applies the scales. `out` is resized to `queries.len() × n`.
pub fn dots_i8(queries: &[&[i8]], rows: &[i8], dim: usize, out: &mut Vec<i32>) {
    let n = rows.len().checked_div(dim).unwrap_or(0);
    out.clear();
    out.resize(queries.len() * n, 0);
    if n == 0 || queries.is_empty() {
        return;
    }
    assert!(queries.iter().all(|q| q.len() == dim), "every query has the rows' dimension");
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        #[allow(unsafe_code)]
        // SAFETY: the CPU has AVX2, and AVX-VNNI where `vnni` is chosen (checked here).
        unsafe {
            if std::is_x86_feature_detected!("avxvnni") {
                avx2::dots_i8_vnni(queries, rows, dim, out)
            } else {
                avx2::dots_i8(queries, rows, dim, out)
            }
        };
        return;
    }
    dots_with::<Portable, i8, i32>(queries, rows, dim, out);
}

/// The `Q × R` dot products of `Q` queries with `R` rows, all of one length, over
/// elements `T`, accumulated as `Acc`.
trait Block<T, Acc> {
    fn block<const Q: usize, const R: usize>(q: [&[T]; Q], r: [&[T]; R]) -> [[Acc; R]; Q];
}

/// Rows per tile: a tile (≈ 96 KiB of rows) stays in cache while every query
/// block passes over it, so large stores are read from memory once.
const TILE_BYTES: usize = 96 << 10;

#[inline(always)]
fn dots_with<K: Block<T, Acc>, T, Acc: Copy>(queries: &[&[T]], rows: &[T], dim: usize, out: &mut [Acc]) {
    let n = rows.len() / dim;
    let tile = (TILE_BYTES / (dim * size_of::<T>())).max(2);
    for (t, tile_rows) in rows.chunks(tile * dim).enumerate() {
        let j0 = t * tile;
        for (block, qs) in queries.chunks(4).enumerate() {
            let out = &mut out[block * 4 * n + j0..];
            match *qs {
                [a, b, c, d] => tile_pass::<K, T, Acc, 4>([a, b, c, d], tile_rows, dim, n, out),
                [a, b, c] => tile_pass::<K, T, Acc, 3>([a, b, c], tile_rows, dim, n, out),
                [a, b] => tile_pass::<K, T, Acc, 2>([a, b], tile_rows, dim, n, out),
                [a] => tile_pass::<K, T, Acc, 1>([a], tile_rows, dim, n, out),
                _ => unreachable!("chunks of 1 to 4"),
            }
        }
    }
}

/// `Q` queries against every row of a tile, two rows at a time; query `a`'s score
/// with the tile's row `j` goes to `out[a * stride + j]`.
#[inline(always)]
fn tile_pass<K: Block<T, Acc>, T, Acc: Copy, const Q: usize>(
    q: [&[T]; Q],
    rows: &[T],
    dim: usize,
    stride: usize,
    out: &mut [Acc],
) {
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

impl Block<f32, f32> for Portable {
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

impl Block<i8, i32> for Portable {
    #[inline(always)]
    fn block<const Q: usize, const R: usize>(q: [&[i8]; Q], r: [&[i8]; R]) -> [[i32; R]; Q] {
        let mut out = [[0i32; R]; Q];
        for (a, q) in q.iter().enumerate() {
            for (b, r) in r.iter().enumerate() {
                out[a][b] = q.iter().zip(*r).map(|(x, y)| *x as i32 * *y as i32).sum();
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
    //! For int8: AVX-VNNI's `vpdpbusd` (32 byte products per instruction), or the
    //! portable block compiled for AVX2. The f32 and VNNI blocks share their shape,
    //! not code: loads, multiply-adds and reductions are different instructions on
    //! different types, and a trait over them would cost more reading than the copy.
    use super::{Block, LANES, Portable, dots_with};
    use std::arch::x86_64::*;

    /// # Safety
    /// The CPU must have AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dots(queries: &[&[f32]], rows: &[f32], dim: usize, out: &mut [f32]) {
        dots_with::<Avx2, f32, f32>(queries, rows, dim, out);
    }

    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn dots_i8(queries: &[&[i8]], rows: &[i8], dim: usize, out: &mut [i32]) {
        dots_with::<Portable, i8, i32>(queries, rows, dim, out);
    }

    /// # Safety
    /// The CPU must have AVX2 and AVX-VNNI.
    #[target_feature(enable = "avx2,avxvnni")]
    pub(super) unsafe fn dots_i8_vnni(queries: &[&[i8]], rows: &[i8], dim: usize, out: &mut [i32]) {
        dots_with::<Vnni, i8, i32>(queries, rows, dim, out);
    }

    struct Avx2;

    impl Block<f32, f32> for Avx2 {
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

    struct Vnni;

    impl Block<i8, i32> for Vnni {
        #[inline(always)]
        fn block<const Q: usize, const R: usize>(q: [&[i8]; Q], r: [&[i8]; R]) -> [[i32; R]; Q] {
            // SAFETY: only reached through `dots_i8_vnni` above, whose caller checked the CPU.
            unsafe { block_vnni(q, r) }
        }
    }

    /// `vpdpbusd` multiplies unsigned by signed bytes: the query's codes are shifted
    /// by 128 (`q ^ 0x80`), so each sum carries 128 × the row's sum, taken off at the end.
    #[target_feature(enable = "avx2,avxvnni")]
    #[inline]
    unsafe fn block_vnni<const Q: usize, const R: usize>(q: [&[i8]; Q], r: [&[i8]; R]) -> [[i32; R]; Q] {
        const BYTES: usize = 32;
        let dim = r[0].len();
        let main = dim - dim % BYTES;
        let (flip, ones) = (_mm256_set1_epi8(-128), _mm256_set1_epi8(1));
        let mut acc = [[_mm256_setzero_si256(); R]; Q];
        let mut sums = [_mm256_setzero_si256(); R];
        let mut rv = [_mm256_setzero_si256(); R];
        let mut c = 0;
        while c < main {
            for b in 0..R {
                // SAFETY: c + BYTES <= main <= dim = r[b].len().
                rv[b] = unsafe { _mm256_loadu_si256(r[b].as_ptr().add(c).cast()) };
                sums[b] = _mm256_dpbusd_avx_epi32(sums[b], ones, rv[b]);
            }
            for a in 0..Q {
                // SAFETY: every query has length dim (checked by the public `dots_i8`).
                let qv = _mm256_xor_si256(unsafe { _mm256_loadu_si256(q[a].as_ptr().add(c).cast()) }, flip);
                for b in 0..R {
                    acc[a][b] = _mm256_dpbusd_avx_epi32(acc[a][b], qv, rv[b]);
                }
            }
            c += BYTES;
        }
        let total = |v: __m256i| {
            let mut lanes = [0i32; 8];
            // SAFETY: `lanes` has room for 8 i32.
            unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), v) };
            lanes.iter().sum::<i32>()
        };
        let mut out = [[0i32; R]; Q];
        for a in 0..Q {
            for b in 0..R {
                let tail: i32 = (main..dim).map(|i| q[a][i] as i32 * r[b][i] as i32).sum();
                out[a][b] = total(acc[a][b]) - 128 * total(sums[b]) + tail;
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
    fn int8_products_are_exact_on_every_path() {
        // Dimensions around the 32 bytes of one VNNI step; codes over the whole -127..=127.
        for dim in [1, 31, 32, 45, 384] {
            for nq in 1..=6 {
                for n in 1..=5 {
                    let val = |i: usize| (((i * 7919) % 255) as i32 - 127) as i8;
                    let queries: Vec<Vec<i8>> = (0..nq).map(|i| (0..dim).map(|k| val(i * 31 + k)).collect()).collect();
                    let rows: Vec<i8> = (0..n * dim).map(|i| val(i * 3 + 5)).collect();
                    let refs: Vec<&[i8]> = queries.iter().map(Vec::as_slice).collect();
                    let want: Vec<i32> = (0..nq * n)
                        .map(|x| {
                            let (i, j) = (x / n, x % n);
                            queries[i].iter().zip(&rows[j * dim..]).map(|(a, b)| *a as i32 * *b as i32).sum()
                        })
                        .collect();
                    let mut out = Vec::new();
                    dots_i8(&refs, &rows, dim, &mut out);
                    assert_eq!(out, want, "best path, {dim} {nq} {n}");
                    let mut portable = vec![0; nq * n];
                    dots_with::<Portable, i8, i32>(&refs, &rows, dim, &mut portable);
                    assert_eq!(portable, want, "portable, {dim} {nq} {n}");
                    #[cfg(target_arch = "x86_64")]
                    if std::is_x86_feature_detected!("avx2") {
                        let mut avx2 = vec![0; nq * n];
                        #[allow(unsafe_code)]
                        // SAFETY: checked just above.
                        unsafe {
                            super::avx2::dots_i8(&refs, &rows, dim, &mut avx2)
                        };
                        assert_eq!(avx2, want, "avx2 without vnni, {dim} {nq} {n}");
                    }
                }
            }
        }
    }

    #[test]
    fn quantized_products_stay_close_to_the_float_ones() {
        let dim = 384;
        let unit = |seed: usize| {
            let v: Vec<f32> = (0..dim).map(|k| (((seed * 131 + k) * 7919) % 1000) as f32 / 500.0 - 1.0).collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.into_iter().map(|x| x / norm).collect::<Vec<f32>>()
        };
        for seed in 0..20 {
            let (a, b) = (unit(seed), unit(seed + 100));
            let (mut qa, mut qb) = (Vec::new(), Vec::new());
            let (sa, sb) = (quantize(&a, &mut qa), quantize(&b, &mut qb));
            let mut raw = Vec::new();
            dots_i8(&[&qa], &qb, dim, &mut raw);
            let (got, want) = (raw[0] as f32 * sa * sb, naive(&a, &b));
            assert!((got - want).abs() < 5e-3, "{got} vs {want}");
        }
        let mut zero = Vec::new();
        assert_eq!(quantize(&[0.0; 4], &mut zero), 1.0);
        assert_eq!(zero, [0; 4]);
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
