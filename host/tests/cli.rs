//! The `palisade` command line: checking a plugin file, listing a directory, and
//! `serve screen` refusing to start on a bad model folder. Uses the components and
//! the model `scripts/setup` put under plugins/target and var/.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn palisade(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_palisade")).args(args).current_dir(root()).output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn plugins_check_reports_world_exports_compile_time_and_a_verdict() {
    let wasm = root().join("plugins/target/wasm32-wasip2/release/threats.wasm");
    assert!(wasm.is_file(), "run scripts/setup first (it builds the plugins)");
    let (ok, out) = palisade(&[
        "plugins",
        "check",
        wasm.to_str().unwrap(),
        "--manifest",
        "plugins/heuristics/threats/plugin.toml",
        "--text",
        "I will kill you",
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("world:    heuristic"), "{out}");
    assert!(out.contains("exports:  score"), "{out}");
    assert!(out.contains("compile:"), "{out}");
    assert!(out.contains("Category::Violence"), "{out}");

    let (ok, out) =
        palisade(&["plugins", "check", wasm.to_str().unwrap(), "--manifest", "plugins/validators/policy/plugin.toml"]);
    assert!(!ok);
    assert!(out.contains("manifest declares kind `validator`"), "{out}");
}

#[test]
fn plugins_list_shows_each_plugin_and_a_missing_dir_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = root().join("plugins/target/wasm32-wasip2/release/caps_shouting.wasm");
    let (ok, out) = palisade(&[
        "plugins",
        "install",
        "--dir",
        dir.path().to_str().unwrap(),
        "--manifest",
        "plugins/heuristics/caps-shouting/plugin.toml",
        wasm.to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    let (ok, out) = palisade(&["plugins", "list", "--dir", dir.path().to_str().unwrap()]);
    assert!(ok, "{out}");
    assert!(
        out.lines().any(|l| l.starts_with("caps-shouting") && l.contains("heuristic") && l.contains("active")),
        "{out}"
    );
    let (ok, out) = palisade(&["plugins", "list", "--dir", "/nonexistent/plugins"]);
    assert!(!ok);
    assert!(out.contains("does not exist"), "{out}");
}

/// `palisade serve screen` with `SCREENING_MODEL=model`: it must exit (not serve)
/// within 30 s; its exit status and output.
fn serve_screen_with_model(model: &Path) -> (bool, String) {
    let plugins = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["serve", "screen"])
        .current_dir(root())
        .env("SCREENING_MODEL", model)
        .env("PLUGIN_DIR", plugins.path())
        .env("SCREENING_ADDR", "127.0.0.1:0")
        .env("PLUGIN_WATCH", "false")
        .env("RUST_BACKTRACE", "0")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > std::time::Duration::from_secs(30) {
            child.kill().unwrap();
            panic!("serve screen started with SCREENING_MODEL={}", model.display());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn a_missing_or_wrong_model_folder_stops_screening_start_up_with_a_clear_message() {
    let (ok, out) = serve_screen_with_model(Path::new("/nonexistent/model"));
    assert!(!ok);
    assert!(out.contains("model folder /nonexistent/model: model.onnx is missing"), "{out}");
    assert!(out.contains("SCREENING_MODEL=none"), "says how to run without a model: {out}");

    let wrong = tempfile::tempdir().unwrap();
    std::fs::write(wrong.path().join("model.onnx"), b"not an onnx model").unwrap();
    std::fs::copy(root().join("var/models/all-MiniLM-L6-v2/tokenizer.json"), wrong.path().join("tokenizer.json"))
        .expect("run scripts/setup first (it fetches the model)");
    let (ok, out) = serve_screen_with_model(wrong.path());
    assert!(!ok);
    assert!(out.contains(&format!("model folder {}: model.onnx", wrong.path().display())), "{out}");
}
