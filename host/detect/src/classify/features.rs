//! Text → sparse feature vector: light normalisation, hashed word 1–2-grams and
//! char 2–5-grams (within words, padded like scikit-learn's `char_wb`), sublinear
//! TF-IDF with each block L2-normalised. Pure functions; no model weights here.
//!
//! Normalisation (what helped on tweets and SMS): HTML
//! entities decoded twice (tweets are double-escaped), `@handle` → `@user`, a
//! leading `RT` dropped, whitespace collapsed, lower case. URLs are kept: they are
//! spam signal.

use serde::{Deserialize, Serialize};

/// Feature-space shape: how many hash buckets each block has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureParams {
    /// Word 1–2-grams hash into `2^word_bits` buckets.
    pub word_bits: u32,
    /// Char 2–5-grams hash into `2^char_bits` buckets.
    pub char_bits: u32,
}

impl Default for FeatureParams {
    fn default() -> Self {
        FeatureParams { word_bits: 18, char_bits: 19 }
    }
}

impl FeatureParams {
    /// Buckets in both hashed blocks (words first, then chars).
    pub fn buckets(&self) -> usize {
        (1usize << self.word_bits) + (1usize << self.char_bits)
    }
}

/// Raw hashed term counts of one text: (bucket, count), sorted by bucket, and
/// where the char block starts in that list.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    pub terms: Vec<(u32, f32)>,
    pub char_start: usize,
}

/// The normalised form of a text that features are computed from.
pub fn normalise(text: &str) -> String {
    let decoded = decode_entities(&decode_entities(text));
    let mut out = String::with_capacity(decoded.len());
    let mut words = decoded.split_whitespace().peekable();
    if words.peek().is_some_and(|w| w.eq_ignore_ascii_case("rt")) {
        words.next();
    }
    for word in words {
        if !out.is_empty() {
            out.push(' ');
        }
        push_handles_replaced(&mut out, word);
    }
    out.to_lowercase()
}

/// `@name` (letters, digits, `_`) → `@user`; the rest of the word unchanged.
fn push_handles_replaced(out: &mut String, word: &str) {
    let mut rest = word;
    while let Some(at) = rest.find('@') {
        out.push_str(&rest[..=at]);
        let after = &rest[at + 1..];
        let name_len = after.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(after.len());
        // An e-mail address (text before the @) is not a handle.
        let is_handle = name_len > 0 && (at == 0 || !rest[..at].chars().last().is_some_and(char::is_alphanumeric));
        if is_handle {
            out.push_str("user");
            rest = &after[name_len..];
        } else {
            rest = after;
        }
    }
    out.push_str(rest);
}

/// `&amp;`, `&lt;`, `&gt;`, `&quot;`, `&apos;`, `&#NN;`, `&#xNN;` decoded once; anything else kept.
fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let end = rest.as_bytes()[..rest.len().min(12)].iter().position(|b| *b == b';');
        let decoded = end.and_then(|e| {
            let name = &rest[1..e];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => name
                    .strip_prefix("#x")
                    .or_else(|| name.strip_prefix("#X"))
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, e + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn mix(mut h: u64) -> u64 {
    // splitmix64's finaliser: FNV's low bits alone collide too often.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58476d1ce4e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d049bb133111eb);
    h ^ (h >> 31)
}

const FNV: u64 = 0xcbf29ce484222325;

fn fnv(h: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(h, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100000001b3))
}

/// Word tokens: runs of letters/digits/`_`, and each other non-space character alone.
fn tokens(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    for (i, c) in text.char_indices() {
        let word = c.is_alphanumeric() || c == '_';
        if word {
            start.get_or_insert(i);
            continue;
        }
        if let Some(s) = start.take() {
            out.push(&text[s..i]);
        }
        if !c.is_whitespace() {
            out.push(&text[i..i + c.len_utf8()]);
        }
    }
    if let Some(s) = start {
        out.push(&text[s..]);
    }
    out
}

/// Calls `f(token, next token of a bigram, bucket)` for each word 1- and 2-gram.
fn each_word_gram<'a>(normalised: &'a str, p: FeatureParams, mut f: impl FnMut(&'a str, Option<&'a str>, u32)) {
    let mask = (1u64 << p.word_bits) - 1;
    let toks = tokens(normalised);
    for (i, t) in toks.iter().enumerate() {
        let h = fnv(FNV ^ 1, t.as_bytes());
        f(t, None, (mix(h) & mask) as u32);
        if let Some(next) = toks.get(i + 1) {
            let h = fnv(fnv(h, b" "), next.as_bytes());
            f(t, Some(next), (mix(h ^ 2) & mask) as u32);
        }
    }
}

/// Word 1–2-grams of a normalised text with their buckets (explanations).
pub fn word_grams(normalised: &str, p: FeatureParams) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    each_word_gram(normalised, p, |a, b, bucket| {
        out.push((b.map_or_else(|| a.to_string(), |b| format!("{a} {b}")), bucket));
    });
    out
}

/// Hashed term counts of an already-normalised text.
pub fn count(normalised: &str, p: FeatureParams) -> Counts {
    let char_mask = (1u64 << p.char_bits) - 1;
    let char_base = 1u32 << p.word_bits;
    let mut words: Vec<u32> = Vec::with_capacity(64);
    each_word_gram(normalised, p, |_, _, bucket| words.push(bucket));
    let mut chars: Vec<u32> = Vec::with_capacity(normalised.len() * 4);
    let mut padded: Vec<u8> = Vec::with_capacity(64);
    let mut bounds: Vec<usize> = Vec::with_capacity(64);
    for word in normalised.split(' ').filter(|w| !w.is_empty()) {
        padded.clear();
        bounds.clear();
        padded.push(b' ');
        padded.extend_from_slice(word.as_bytes());
        padded.push(b' ');
        let padded_str = std::str::from_utf8(&padded).expect("utf-8 stays utf-8");
        bounds.extend(padded_str.char_indices().map(|(i, _)| i));
        bounds.push(padded.len());
        let n_chars = bounds.len() - 1;
        for start in 0..n_chars {
            let mut h = FNV ^ 3;
            for n in 1..=5.min(n_chars - start) {
                h = fnv(h, &padded[bounds[start + n - 1]..bounds[start + n]]);
                if n >= 2 {
                    chars.push(char_base + (mix(h) & char_mask) as u32);
                }
            }
        }
    }
    let mut terms = Vec::with_capacity(words.len() + chars.len());
    tally(&mut words, &mut terms);
    let char_start = terms.len();
    tally(&mut chars, &mut terms);
    Counts { terms, char_start }
}

/// Append (bucket, count) pairs of `buckets` to `out`, sorted.
fn tally(buckets: &mut [u32], out: &mut Vec<(u32, f32)>) {
    let at = out.len();
    buckets.sort_unstable();
    for b in buckets.iter() {
        let in_block = out.len() > at;
        match out.last_mut() {
            Some((last, n)) if in_block && *last == *b => *n += 1.0,
            _ => out.push((*b, 1.0)),
        }
    }
}

/// Sublinear TF × IDF, each block scaled to unit length; buckets with idf 0
/// (seen in fewer than `min_df` training texts) dropped. `idf` is indexed by bucket.
pub fn tf_idf(counts: &Counts, idf: impl Fn(u32) -> f32) -> Vec<(u32, f32)> {
    let mut out = Vec::with_capacity(counts.terms.len());
    for block in [&counts.terms[..counts.char_start], &counts.terms[counts.char_start..]] {
        let from = out.len();
        for (b, n) in block {
            let w = idf(*b);
            if w > 0.0 {
                out.push((*b, (1.0 + n.ln()) * w));
            }
        }
        let norm = out[from..].iter().map(|(_, v)| v * v).sum::<f32>().sqrt();
        if norm > 0.0 {
            out[from..].iter_mut().for_each(|(_, v)| *v /= norm);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_keeps_urls_and_replaces_handles() {
        assert_eq!(normalise("RT @Bob_1: you &amp;amp; me   http://x.co/A"), "@user: you & me http://x.co/a");
        assert_eq!(normalise("mail me at a@b.com &#128512; &bogus;"), "mail me at a@b.com 😀 &bogus;");
        assert_eq!(normalise("  "), "");
    }

    proptest::proptest! {
        #[test]
        fn any_text_gets_features(text in "\\PC{0,80}") {
            let c = count(&normalise(&text), FeatureParams::default());
            proptest::prop_assert!(c.terms.windows(2).all(|w| w[0].0 < w[1].0 || w[1].0 >= 1 << 18));
        }
    }

    #[test]
    fn tokens_split_words_and_single_marks() {
        assert_eq!(tokens("hi!! you_2, ok"), ["hi", "!", "!", "you_2", ",", "ok"]);
    }

    #[test]
    fn counts_cover_every_gram_and_tf_idf_has_unit_blocks() {
        let p = FeatureParams::default();
        let c = count("ab ab", p);
        // words: ab, ab, "ab ab"; chars of " ab ": " a","ab","b "," ab","ab "," ab " per word, twice.
        let words: f32 = c.terms[..c.char_start].iter().map(|(_, n)| n).sum();
        let chars: f32 = c.terms[c.char_start..].iter().map(|(_, n)| n).sum();
        assert_eq!((words, chars), (3.0, 12.0));
        assert!(c.terms[c.char_start..].iter().all(|(b, _)| *b >= 1 << p.word_bits));
        let v = tf_idf(&c, |_| 1.0);
        let norm = |r: &[(u32, f32)]| r.iter().map(|(_, v)| v * v).sum::<f32>();
        let split = v.iter().position(|(b, _)| *b >= 1 << p.word_bits).unwrap();
        assert!((norm(&v[..split]) - 1.0).abs() < 1e-5 && (norm(&v[split..]) - 1.0).abs() < 1e-5);
        assert_eq!(count("ab ab", p).terms, c.terms, "deterministic");
    }
}
