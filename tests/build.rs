//! Builds every plugin in `plugins/` for wasm32-wasip2 (through
//! `scripts/build-plugins`) so the tests load real components, and tells the
//! tests where they are.

use std::path::Path;
use std::process::Command;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("repository root").to_path_buf();
    for watched in [
        "plugins/heuristics",
        "plugins/validators",
        "plugins/testing",
        "plugins/examples",
        "sdk/python/palisade_plugin.py",
        "sdk/js/palisade-plugin.js",
        "plugins/Cargo.toml",
        "sdk/src",
        "sdk/Cargo.toml",
        "wit",
        "scripts/build-plugins",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    let out = Command::new("bash")
        .arg(root.join("scripts/build-plugins"))
        .output()
        .expect("cannot run scripts/build-plugins");
    if !out.status.success() {
        panic!(
            "building the plugins failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    println!(
        "cargo:rustc-env=PALISADE_PLUGIN_WASM_DIR={}",
        root.join("plugins/target/wasm32-wasip2/release").display()
    );
    println!("cargo:rustc-env=PALISADE_PLUGIN_SRC_DIR={}", root.join("plugins").display());
}
