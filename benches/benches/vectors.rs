//! Past-event search at scale: exact search against the IVF index (the default
//! `ANN_PROBES`) on a collection of ~100,000 vectors, 100 queries per batch as the
//! consumer asks them. The vectors are the set-up script's real example bank
//! (3,513 all-MiniLM-L6-v2 vectors) and noisy copies of it (each row + Gaussian-ish
//! noise, re-normalised), so the collection keeps the real data's cluster shape.
//! Prints ms per batch and recall@10 of the index against exact search.
//!
//! Run: `cargo bench -p palisade-benches --bench vectors` (rows: `VECTOR_BENCH_ROWS`, default 100000)

use palisade_detect::vectors::flat::FlatStore;
use palisade_detect::vectors::ivf::Ann;
use palisade_detect::vectors::{Item, VectorStore};
use palisade_tests::repo_root;
use std::collections::HashSet;
use std::time::Instant;

/// A small deterministic generator (xorshift) for the noise.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        // Sum of uniforms: close enough to a Gaussian for spreading copies.
        let u = |x: u64| ((x >> 40) as f32 / (1u64 << 24) as f32) - 0.5;
        u(self.0) + u(self.0.rotate_left(21)) + u(self.0.rotate_left(42))
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rows: usize = std::env::var("VECTOR_BENCH_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let bank = FlatStore::open(&repo_root().join("var/vectors/exemplars.vec")).expect("run scripts/setup first");
    let base: Vec<Vec<f32>> = (0..bank.len()).map(|i| bank.vector(i)).collect();
    let mut noise = Noise(0x9e3779b97f4a7c15);
    let items: Vec<Item> = (0..rows)
        .map(|i| {
            let mut v: Vec<f32> = base[i % base.len()].iter().map(|x| x + 0.04 * noise.next()).collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.iter_mut().for_each(|x| *x /= norm);
            Item { id: format!("e{i}"), label: "LOW_RISK".into(), text: String::new(), vector: v }
        })
        .collect();
    let queries: Vec<Vec<f32>> = (0..100).map(|i| items[i * 997 % rows].vector.clone()).collect();
    let probes = palisade::config::Config::default().vectors.ann_probes;
    let exact = FlatStore::memory();
    exact.upsert(items.clone()).unwrap();
    let t = Instant::now();
    let indexed = FlatStore::memory().with_ann(Some(Ann { min_rows: 2000, probes }));
    indexed.upsert(items).unwrap();
    let build = t.elapsed();
    println!("{rows} vectors (real bank + noisy copies), dim {}, index built in {build:.1?}", base[0].len());
    let time = |store: &FlatStore| {
        let mut best = f64::MAX;
        let mut found = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            found = store.search_many(&queries, 10);
            best = best.min(t.elapsed().as_secs_f64() * 1e3);
        }
        (best, found)
    };
    let (exact_ms, truth) = time(&exact);
    let (ivf_ms, found) = time(&indexed);
    let mut hits = 0;
    for (t, f) in truth.iter().zip(&found) {
        let ids: HashSet<&str> = f.iter().map(|n| n.id.as_ref()).collect();
        hits += t.iter().filter(|n| ids.contains(n.id.as_ref())).count();
    }
    println!("exact search            {exact_ms:>8.1} ms per batch of 100 (best of 5)");
    println!(
        "IVF, {probes} probes          {ivf_ms:>8.1} ms per batch of 100 (best of 5), {:.1}x faster",
        exact_ms / ivf_ms
    );
    println!("IVF recall@10 against exact: {:.3}", hits as f64 / (truth.len() * 10) as f64);
}
