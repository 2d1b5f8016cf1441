//! The real ONNX model through `palisade::embed`: vectors match an independent
//! Python onnxruntime reference (tests/fixtures) to 1e-4, batching and padding do
//! not change a text's vector, and a bad model folder says what is wrong.

use palisade_detect::embed::{Device, Embedder, cosine};
use palisade_tests::{model_files, repo_root};
use serde_json::Value;

#[test]
fn vectors_match_the_python_reference_in_one_padded_batch() {
    let (model, lib) = model_files();
    let e = Embedder::load(&model, &lib, Device::Cpu, 32, "").unwrap();
    assert_eq!(e.dim, 384);
    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("tests/fixtures/minilm_reference.json")).unwrap(),
    )
    .unwrap();
    let cases = reference["embeddings"].as_array().unwrap();
    let texts: Vec<&str> = cases.iter().map(|c| c["text"].as_str().unwrap()).collect();
    let got = e.embed(&texts).unwrap();
    for (case, v) in cases.iter().zip(&got) {
        let want: Vec<f32> = case["vector"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
        let worst = want.iter().zip(v).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst < 1e-4, "{}: max |Δ| = {worst}", case["text"]);
        assert!((cosine(v, v) - 1.0).abs() < 1e-5, "normalised");
    }
    // Related meaning is closer than unrelated.
    let threat = e.embed(&["I am going to hurt you badly"]).unwrap().remove(0);
    assert!(cosine(&threat, &got[0]) > cosine(&threat, &got[2]));
}

#[test]
fn a_model_folder_without_its_files_is_a_clear_error() {
    let (_, lib) = model_files();
    let empty = tempfile::tempdir().unwrap();
    let err = Embedder::load(empty.path(), &lib, Device::Cpu, 32, "").err().unwrap().to_string();
    assert!(err.contains("model.onnx is missing"), "{err}");
    assert!(err.contains(&empty.path().display().to_string()), "{err}");
}

#[test]
fn asking_for_cuda_without_it_is_an_error_not_a_cpu_fallback() {
    let (model, lib) = model_files();
    let err = Embedder::load(&model, &lib, Device::Cuda, 32, "").err().unwrap().to_string();
    assert!(err.contains("cuda"), "{err}");
}
