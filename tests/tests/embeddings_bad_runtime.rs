//! A wrong ONNX Runtime library is an error that names the file, not a panic.
//! (Its own test binary: the runtime loads once per process.)

use palisade_detect::embed::{Device, Embedder};
use palisade_tests::model_files;

#[test]
fn a_wrong_runtime_library_is_a_clear_error() {
    let (model, _) = model_files();
    let not_a_library = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(not_a_library.path(), b"not a shared library").unwrap();
    let err = Embedder::load(&model, not_a_library.path(), Device::Cpu, 32, "").err().unwrap().to_string();
    assert!(err.contains("ONNX Runtime library"), "{err}");
    assert!(err.contains(&not_a_library.path().display().to_string()), "{err}");
}
