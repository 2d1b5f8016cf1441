//! The `palisade` command line: checking a plugin file and listing a directory.
//! Uses the components `scripts/setup` built under plugins/target.

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
