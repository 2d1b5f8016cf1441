//! The Qdrant backend against a real Qdrant server. No server can be installed on
//! the project's machines, so this runs where one is reachable:
//! `QDRANT_URL=http://127.0.0.1:6334 cargo test --release -p palisade-tests --features qdrant --test qdrant_store`
//! (without `QDRANT_URL` it says so and checks nothing).
#![cfg(feature = "qdrant")]

use palisade_detect::vectors::qdrant::QdrantStore;
use palisade_detect::vectors::{Item, VectorError, VectorStore};

fn item(id: &str, label: &str, v: [f32; 2]) -> Item {
    Item { id: id.into(), label: label.into(), text: format!("text {id}"), vector: v.to_vec() }
}

#[test]
fn upserts_searches_replaces_and_counts_on_a_real_server() {
    let Ok(url) = std::env::var("QDRANT_URL") else {
        eprintln!("QDRANT_URL is not set: the Qdrant backend was not tested");
        return;
    };
    let collection = format!("palisade_test_{}", palisade_tests::unique_prefix().replace(':', "_"));
    let store = QdrantStore::connect(&url, std::env::var("QDRANT_API_KEY").ok(), collection).unwrap();
    assert_eq!(store.len(), 0);
    assert!(store.search(&[1.0, 0.0], 2).is_empty(), "an empty store finds nothing");
    store
        .upsert(vec![item("a", "SPAM", [1.0, 0.0]), item("b", "LOW_RISK", [0.0, 1.0]), item("c", "TOXIC", [0.6, 0.8])])
        .unwrap();
    assert_eq!(store.len(), 3);
    let hits = store.search(&[1.0, 0.0], 2);
    assert_eq!(hits.iter().map(|h| h.id.as_ref()).collect::<Vec<_>>(), ["a", "c"]);
    assert_eq!((hits[0].label.as_ref(), hits[0].text.as_ref()), ("SPAM", "text a"));
    assert!((hits[1].similarity - 0.6).abs() < 1e-4, "cosine similarity: {}", hits[1].similarity);
    let many = store.search_many(&[vec![1.0, 0.0], vec![0.0, 1.0]], 1);
    assert_eq!((many[0][0].id.as_ref(), many[1][0].id.as_ref()), ("a", "b"));
    store.upsert(vec![item("a", "SPAM", [0.0, 1.0])]).unwrap();
    assert_eq!(store.len(), 3, "an upsert with a known id replaces");
    assert_eq!(store.search(&[1.0, 0.0], 1)[0].id.as_ref(), "c");
    assert!(matches!(
        store.upsert(vec![item("d", "SPAM", [1.0, 0.0]), Item { vector: vec![1.0], ..item("e", "SPAM", [0.0, 0.0]) }]),
        Err(VectorError::Dimension { .. })
    ));
    store.delete_collection().unwrap();
}

#[test]
fn an_unreachable_server_is_a_clear_error_at_start() {
    let err = QdrantStore::connect("http://127.0.0.1:1", None, "palisade_unreachable".into()).err().expect("refused");
    let message = err.to_string();
    assert!(message.contains("qdrant collection palisade_unreachable"), "{message}");
}
