//! The approximate (IVF) index against exact search on the set-up script's real
//! example bank (all-MiniLM-L6-v2 vectors of the shared data): the neighbours it
//! finds are nearly the exact ones, with their exact similarities, nearest first.

use palisade_detect::vectors::VectorStore;
use palisade_detect::vectors::flat::FlatStore;
use palisade_detect::vectors::ivf::Ann;
use palisade_tests::repo_root;

#[test]
fn ivf_finds_nearly_the_exact_neighbours_on_the_real_bank() {
    let path = repo_root().join("var/vectors/exemplars.vec");
    let exact = FlatStore::open(&path).expect("run scripts/setup: it builds the example bank");
    let n = exact.len();
    assert!(n >= 2000, "the bank has {n} rows");
    // The default index settings (ANN_PROBES), on a bank above ANN_MIN_ROWS.
    let probes = palisade::config::Config::default().vectors.ann_probes;
    let ann = FlatStore::open(&path).unwrap().with_ann(Some(Ann { min_rows: 1000, probes }));
    assert!(ann.is_indexed() && !exact.is_indexed());
    // Queries: every 10th bank vector, looked up by its own text's neighbours.
    let queries: Vec<Vec<f32>> = (0..n).step_by(10).map(|i| exact.vector(i)).collect();
    let t = std::time::Instant::now();
    let truth = exact.search_many(&queries, 10);
    let exact_time = t.elapsed();
    let t = std::time::Instant::now();
    let found = ann.search_many(&queries, 10);
    let ann_time = t.elapsed();
    let (mut hit, mut total, mut same_top) = (0, 0, 0);
    for (t, f) in truth.iter().zip(&found) {
        let ids: std::collections::HashSet<&str> = f.iter().map(|x| x.id.as_ref()).collect();
        hit += t.iter().filter(|x| ids.contains(x.id.as_ref())).count();
        // The index scores int8 copies to pick candidates; what it returns is re-scored exactly.
        for x in f {
            if let Some(same) = t.iter().find(|y| y.id == x.id) {
                assert!(
                    (same.similarity - x.similarity).abs() < 1e-5,
                    "{}: {} vs exact {}",
                    x.id,
                    x.similarity,
                    same.similarity
                );
            }
        }
        assert!(f.windows(2).all(|w| w[0].similarity >= w[1].similarity), "nearest first");
        total += t.len();
        same_top += usize::from(t[0].id == f[0].id);
    }
    let recall = hit as f64 / total as f64;
    println!(
        "rows {n}, probes {probes}: recall@10 {recall:.3}, top-1 {same_top}/{}, exact {exact_time:?}, ivf {ann_time:?}",
        queries.len()
    );
    assert!(recall >= 0.9, "recall@10 {recall:.3}");
    assert_eq!(same_top, queries.len(), "the nearest neighbour (the query itself) is always found");
}
