//! The toxicity side model: tox-block 0.1.2 (MIT, PyPI; a bidirectional LSTM
//! over GloVe-initialised word vectors, trained on the Jigsaw toxic-comment
//! data), run natively. Its six scores (toxic, severe_toxic, obscene, threat,
//! insult, identity_hate) are dense features of the classifier when it is
//! trained with `TOXICITY_MODEL` (opt-in): learned from another source than
//! Palisade's `data/`, they give the n-gram model a say on toxic wording it
//! never saw.
//!
//! `scripts/setup` converts the wheel (pinned by sha256) into one file with
//! `scripts/lib/convert_tox_block.py`; `palisade train` copies that file into
//! the artifact (`toxicity.bin`, its sha256 in `classifier.json`), so a loaded
//! classifier carries the exact model it was trained with.
//!
//! The forward pass is Keras's: the tokenizer's word index (lower case, the
//! punctuation filters as spaces, the 19,999 most frequent words, others
//! dropped), the last `maxlen` tokens padded at the front with index 0, both
//! LSTM directions over all `maxlen` steps (gates i, f, c, o; `hard_sigmoid`
//! and `tanh`), a max over time, a ReLU layer and six sigmoids. Two exact
//! shortcuts: each word's input projection is computed once at load, and the
//! forward direction's state after n padding steps is the same for every text.
//! Owns the file format and the arithmetic; must not read configuration or
//! train anything.

use std::collections::HashMap;

/// The six scores, in the package's order.
pub const CLASSES: [&str; 6] = ["toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate"];
/// Its number of classifier features.
pub const FEATURES: usize = CLASSES.len();
/// The model's file name inside a classifier artifact.
pub const FILE: &str = "toxicity.bin";
/// What `classifier.json` calls it.
pub const NAME: &str = "tox-block 0.1.2";
const MAGIC: &[u8; 8] = b"PLSDTOX1";
/// The characters Keras's tokenizer turns into spaces.
const FILTERS: &str = "!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n";

/// Gate outputs computed together: an accumulator of this many lanes stays in
/// registers while the recurrent kernel streams past.
const LANES: usize = 16;

/// One LSTM direction: each word's input projection (`x·W + b`, computed at
/// load) and the recurrent kernel, both over the 4·units gate outputs padded to
/// `width` (a multiple of [`LANES`]).
struct Direction {
    width: usize,
    /// `[vocab][width]`.
    input: Vec<f32>,
    /// The recurrent kernel by blocks of [`LANES`] outputs: `[width / LANES][units][LANES]`.
    blocks: Vec<f32>,
}

/// One direction's running state: h, c, and the running max of h over the
/// steps so far (what the max-pool keeps).
#[derive(Debug, Clone, PartialEq)]
struct State {
    h: Vec<f32>,
    c: Vec<f32>,
    max: Vec<f32>,
}

impl State {
    fn new(units: usize) -> State {
        State { h: vec![0.0; units], c: vec![0.0; units], max: vec![f32::NEG_INFINITY; units] }
    }
}

/// A loaded side model.
pub struct Toxicity {
    units: usize,
    maxlen: usize,
    words: HashMap<String, u32>,
    forward: Direction,
    backward: Direction,
    /// The forward direction's state after n padding steps, n = 0..=maxlen.
    padded: Vec<State>,
    dense_w: Vec<f32>,
    dense_b: Vec<f32>,
    out_w: Vec<f32>,
    out_b: Vec<f32>,
    rescale: [(f32, f32); FEATURES],
    /// The file as read (the artifact keeps a copy) and its sha256.
    pub bytes: Vec<u8>,
    pub sha256: String,
}

impl std::fmt::Debug for Toxicity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Toxicity").field("sha256", &self.sha256).field("words", &self.words.len()).finish()
    }
}

#[inline(always)]
fn hard_sigmoid(x: f32) -> f32 {
    (0.2 * x + 0.5).clamp(0.0, 1.0)
}

/// tanh as a rational function (Eigen's float approximation; |error| < 4e-7
/// over the reals), several times faster than the libm call, which would be
/// most of the model's cost (two per unit per step).
#[inline(always)]
fn tanh(x: f32) -> f32 {
    const A: [f32; 7] = [
        4.893_524_6e-3,
        6.372_619_5e-4,
        1.485_722_35e-5,
        5.122_297_3e-8,
        -8.604_672e-11,
        2.000_188e-13,
        -2.760_768_4e-16,
    ];
    const B: [f32; 4] = [4.893_525e-3, 2.268_434_7e-3, 1.185_347_1e-4, 1.198_258_4e-6];
    let x = x.clamp(-7.905_311, 7.905_311);
    let x2 = x * x;
    let p = x * A.iter().rev().fold(0.0, |acc, a| acc * x2 + a);
    let q = B.iter().rev().fold(0.0, |acc, b| acc * x2 + b);
    p / q
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// A byte reader over the file that fails with what it was reading.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize, what: &str) -> Result<&[u8], String> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.bytes.len());
        let end = end.ok_or_else(|| format!("the file ends inside {what}"))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u32(&mut self, what: &str) -> Result<usize, String> {
        Ok(u32::from_le_bytes(self.take(4, what)?.try_into().expect("4 bytes")) as usize)
    }

    fn floats(&mut self, n: usize, what: &str) -> Result<Vec<f32>, String> {
        let b = self.take(n.checked_mul(4).ok_or("a size overflows")?, what)?;
        Ok(b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect())
    }
}

/// One LSTM step from `z` (the input projection plus `h·R`, gates i, f, c, o):
/// updates `c` and `h` in place.
#[inline(always)]
fn lstm_step(z: &[f32], h: &mut [f32], c: &mut [f32]) {
    let u = h.len();
    for j in 0..u {
        let (i, f, g, o) = (hard_sigmoid(z[j]), hard_sigmoid(z[u + j]), tanh(z[2 * u + j]), hard_sigmoid(z[3 * u + j]));
        c[j] = f * c[j] + i * g;
        h[j] = o * tanh(c[j]);
    }
}

impl Direction {
    fn new(embedding: &[f32], dim: usize, kernel: &[f32], recurrent: &[f32], bias: &[f32]) -> Direction {
        let (gates, units) = (bias.len(), recurrent.len() / bias.len());
        let width = gates.div_ceil(LANES) * LANES;
        let mut input = Vec::with_capacity(embedding.len() / dim * width);
        for x in embedding.chunks_exact(dim) {
            let mut z = bias.to_vec();
            for (xv, row) in x.iter().zip(kernel.chunks_exact(gates)) {
                z.iter_mut().zip(row).for_each(|(zv, k)| *zv += xv * k);
            }
            z.resize(width, 0.0);
            input.extend_from_slice(&z);
        }
        let mut blocks = Vec::with_capacity(width * units);
        for block in 0..width / LANES {
            for j in 0..units {
                let col = |k: usize| block * LANES + k;
                blocks.extend((0..LANES).map(|k| if col(k) < gates { recurrent[j * gates + col(k)] } else { 0.0 }));
            }
        }
        Direction { width, input, blocks }
    }

    /// `z = input[token] + h·R` (in the order Keras sums: input, then unit by unit).
    #[inline(always)]
    fn project(&self, token: usize, h: &[f32], z: &mut [f32]) {
        let input = &self.input[token * self.width..(token + 1) * self.width];
        let per_block = h.len() * LANES;
        for ((out, start), kernel) in
            z.chunks_exact_mut(LANES).zip(input.chunks_exact(LANES)).zip(self.blocks.chunks_exact(per_block))
        {
            let mut acc = [0f32; LANES];
            acc.copy_from_slice(start);
            for (hj, r) in h.iter().zip(kernel.chunks_exact(LANES)) {
                acc.iter_mut().zip(r).for_each(|(a, w)| *a += hj * w);
            }
            out.copy_from_slice(&acc);
        }
    }

    /// Run over `tokens` from `state`. With AVX2 the same arithmetic in the
    /// same order runs twice as wide (Rust does not fuse multiply-adds): the
    /// same scores bit for bit, on either path.
    fn run(&self, tokens: impl Iterator<Item = usize>, state: &mut State) {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            #[allow(unsafe_code)]
            // SAFETY: the CPU has AVX2 (checked just above).
            unsafe {
                self.run_avx2(tokens, state)
            };
            return;
        }
        self.run_portable(tokens, state)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn run_avx2(&self, tokens: impl Iterator<Item = usize>, state: &mut State) {
        self.run_portable(tokens, state)
    }

    #[inline(always)]
    fn run_portable(&self, tokens: impl Iterator<Item = usize>, state: &mut State) {
        let mut z = vec![0.0; self.width];
        let State { h, c, max } = state;
        for t in tokens {
            self.project(t, h, &mut z);
            lstm_step(&z, h, c);
            max.iter_mut().zip(h.iter()).for_each(|(m, v)| *m = m.max(*v));
        }
    }
}

impl Toxicity {
    pub fn load(path: &std::path::Path) -> anyhow::Result<Toxicity> {
        let bytes = std::fs::read(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Toxicity::from_bytes(bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Result<Toxicity, String> {
        use sha2::Digest;
        let mut r = Reader { bytes: &bytes, at: 0 };
        if r.take(8, "the header")? != MAGIC {
            return Err("not a Palisade toxicity model (convert one with scripts/lib/convert_tox_block.py)".into());
        }
        let mut shape = [0usize; 6];
        for s in &mut shape {
            *s = r.u32("the header")?;
        }
        let [vocab, dim, units, dense, outputs, maxlen] = shape;
        if outputs != FEATURES
            || [vocab, dim, units, dense, maxlen].contains(&0)
            || vocab > 1 << 22
            || dim * units > 1 << 20
        {
            return Err(format!("an unexpected shape {shape:?}"));
        }
        let gates = 4 * units;
        let embedding = r.floats(vocab * dim, "the embedding")?;
        let mut direction = |name: &str| -> Result<Direction, String> {
            let kernel = r.floats(dim * gates, name)?;
            let recurrent = r.floats(units * gates, name)?;
            let bias = r.floats(gates, name)?;
            Ok(Direction::new(&embedding, dim, &kernel, &recurrent, &bias))
        };
        let forward = direction("the forward LSTM")?;
        let backward = direction("the backward LSTM")?;
        let dense_w = r.floats(2 * units * dense, "the dense layer")?;
        let dense_b = r.floats(dense, "the dense layer")?;
        let out_w = r.floats(dense * outputs, "the output layer")?;
        let out_b = r.floats(outputs, "the output layer")?;
        let (lo, hi) = (r.floats(outputs, "the rescaling")?, r.floats(outputs, "the rescaling")?);
        let rescale = std::array::from_fn(|k| (lo[k], hi[k]));
        let mut words = HashMap::with_capacity(vocab);
        for i in 1..vocab {
            let n = r.u32("the word list")?;
            let w = std::str::from_utf8(r.take(n, "the word list")?).map_err(|_| format!("word {i} is not UTF-8"))?;
            words.insert(w.to_string(), i as u32);
        }
        if r.at != bytes.len() {
            return Err(format!("{} bytes after the word list", bytes.len() - r.at));
        }
        let sha256 = hex::encode(sha2::Sha256::digest(&bytes));
        let mut t = Toxicity {
            units,
            maxlen,
            words,
            forward,
            backward,
            padded: Vec::new(),
            dense_w,
            dense_b,
            out_w,
            out_b,
            rescale,
            bytes,
            sha256,
        };
        t.precompute_padding();
        Ok(t)
    }

    /// The forward direction's state after 0..=maxlen padding steps.
    fn precompute_padding(&mut self) {
        let mut state = State::new(self.units);
        self.padded.push(state.clone());
        for _ in 0..self.maxlen {
            self.forward.run(std::iter::once(0), &mut state);
            self.padded.push(state.clone());
        }
    }

    /// The token indices Keras's tokenizer gives `text`, the last `maxlen` of them.
    fn tokens(&self, text: &str) -> Vec<usize> {
        let lower = text.to_lowercase();
        let spaced: String = lower.chars().map(|ch| if FILTERS.contains(ch) { ' ' } else { ch }).collect();
        let mut out: Vec<usize> = spaced
            .split(' ')
            .filter(|w| !w.is_empty())
            .filter_map(|w| self.words.get(w))
            .map(|i| *i as usize)
            .collect();
        let skip = out.len().saturating_sub(self.maxlen);
        out.drain(..skip);
        out
    }

    /// The six probabilities for `text` (the package's raw output, `rescale=False`).
    pub fn scores(&self, text: &str) -> [f32; FEATURES] {
        let tokens = self.tokens(text);
        let pads = self.maxlen - tokens.len();
        // Forward: from the state after the padding, over the words.
        let mut forward = self.padded[pads].clone();
        self.forward.run(tokens.iter().copied(), &mut forward);
        // Backward: the words last to first, then the padding.
        let mut backward = State::new(self.units);
        self.backward.run(tokens.iter().rev().copied().chain(std::iter::repeat_n(0, pads)), &mut backward);
        let pooled = forward.max.iter().chain(&backward.max);
        let dense = self.dense_b.len();
        let mut hidden = self.dense_b.clone();
        for (x, row) in pooled.zip(self.dense_w.chunks_exact(dense)) {
            hidden.iter_mut().zip(row).for_each(|(hv, w)| *hv += x * w);
        }
        let mut out: [f32; FEATURES] = std::array::from_fn(|k| self.out_b[k]);
        for (x, row) in hidden.iter().map(|v| v.max(0.0)).zip(self.out_w.chunks_exact(FEATURES)) {
            out.iter_mut().zip(row).for_each(|(o, w)| *o += x * w);
        }
        out.map(sigmoid)
    }

    /// [`Self::scores`] min-max scaled as the package's `rescale=True` does
    /// (the figures its README documents).
    pub fn rescaled(&self, text: &str) -> [f32; FEATURES] {
        let p = self.scores(text);
        std::array::from_fn(|k| ((p[k] - self.rescale[k].0) / (self.rescale[k].1 - self.rescale[k].0)).abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic weights in [-1, 1).
    fn weights(n: usize, seed: u32) -> Vec<f32> {
        let mut x = seed.wrapping_mul(2_654_435_761).max(1);
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x as f32 / u32::MAX as f32) * 2.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn the_blocked_and_wide_step_matches_the_plain_lstm_step_by_step() {
        // Three units: 12 gate outputs, padded to one block of 16.
        let (vocab, dim, units) = (4, 2, 3);
        let gates = 4 * units;
        let (embedding, kernel, recurrent, bias) =
            (weights(vocab * dim, 1), weights(dim * gates, 2), weights(units * gates, 3), weights(gates, 4));
        let d = Direction::new(&embedding, dim, &kernel, &recurrent, &bias);
        assert_eq!(d.width, LANES);
        let tokens = [1usize, 3, 0, 2, 2];
        // Keras's step, written out plainly.
        let (mut h, mut c, mut max) = (vec![0f32; units], vec![0f32; units], vec![f32::NEG_INFINITY; units]);
        for t in tokens {
            let mut z = bias.clone();
            for (k, zv) in z.iter_mut().enumerate() {
                *zv += (0..dim).map(|i| embedding[t * dim + i] * kernel[i * gates + k]).sum::<f32>();
            }
            let z: Vec<f32> =
                (0..gates).map(|k| z[k] + (0..units).map(|j| h[j] * recurrent[j * gates + k]).sum::<f32>()).collect();
            for j in 0..units {
                let (i, f, o) = (hard_sigmoid(z[j]), hard_sigmoid(z[units + j]), hard_sigmoid(z[3 * units + j]));
                c[j] = f * c[j] + i * z[2 * units + j].tanh();
                h[j] = o * c[j].tanh();
                max[j] = max[j].max(h[j]);
            }
        }
        let state = |wide: bool| {
            let mut s = State::new(units);
            match wide {
                true => d.run(tokens.into_iter(), &mut s),
                false => d.run_portable(tokens.into_iter(), &mut s),
            }
            s
        };
        let (fast, portable) = (state(true), state(false));
        assert_eq!(fast, portable, "the dispatched (AVX2 where present) and portable paths agree bit for bit");
        for (got, want) in [(&fast.h, &h), (&fast.c, &c), (&fast.max, &max)] {
            let worst = got.iter().zip(want.iter()).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(worst < 1e-5, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn the_rational_tanh_is_within_its_stated_error() {
        let worst = (-1200..=1200).map(|i| i as f32 / 100.0).map(|x| (tanh(x) - x.tanh()).abs()).fold(0f32, f32::max);
        assert!(worst < 1e-6, "{worst}");
    }
}
