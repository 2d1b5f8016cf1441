//! Builds every guest in `plugins/` for wasm32-wasip2 (through
//! `scripts/build-plugins`, which also builds the Python and JavaScript ones) so
//! the tests load real components, the way wasmtime's test-programs artifacts
//! are built:
//! - what to rerun on comes from cargo's own dep-info (`NAME.d` beside each
//!   component lists every source it was built from: the plugin, the SDK,
//!   `palisade-vocab`, the WIT), plus every plugin folder under `plugins/` as a
//!   whole (manifests, Python and JavaScript sources, new guests), found, not listed;
//! - `OUT_DIR/guests.rs` names every guest built: `GUESTS` and the
//!   `foreach_guest!` macro, which `tests/guests.rs` expands to one test per
//!   guest, so a new guest has a test before it has a name anywhere else.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("repository root").to_path_buf();
    let plugins = root.join("plugins");
    let wasm_dir = plugins.join("target/wasm32-wasip2/release");
    for always in
        ["plugins/Cargo.toml", "sdk/python/palisade_plugin.py", "sdk/js/palisade-plugin.js", "scripts/build-plugins"]
    {
        println!("cargo:rerun-if-changed={}", root.join(always).display());
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
    // Every source a Rust guest was built from, as cargo recorded it.
    for entry in std::fs::read_dir(&wasm_dir).expect("the guests' output folder").flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "d") {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let deps = text.split_once(": ").map_or("", |(_, deps)| deps);
            for dep in deps.split_whitespace() {
                println!("cargo:rerun-if-changed={dep}");
            }
        }
    }
    // Every guest folder (a family under plugins/, a folder with plugin.toml).
    let mut guests: Vec<(String, String, String, PathBuf)> = Vec::new();
    for family in sorted_dirs(&plugins).into_iter().filter(|f| !f.ends_with("target")) {
        println!("cargo:rerun-if-changed={}", family.display());
        for folder in sorted_dirs(&family).into_iter().filter(|f| f.join("plugin.toml").is_file()) {
            let name = folder.file_name().unwrap().to_string_lossy().into_owned();
            let ident = name.replace('-', "_");
            let wasm = wasm_dir.join(format!("{ident}.wasm"));
            if wasm.is_file() {
                let family = family.file_name().unwrap().to_string_lossy().into_owned();
                guests.push((ident, family, name, wasm));
            } else {
                println!(
                    "cargo:warning={name}: not built (a Python or JavaScript guest needs scripts/setup's toolchains)"
                );
            }
        }
    }
    let mut code = String::from("/// Every guest built for the tests: (family, folder, component path).\n");
    code += "pub const GUESTS: &[(&str, &str, &str)] = &[\n";
    for (_, family, name, wasm) in &guests {
        writeln!(code, "    ({family:?}, {name:?}, {:?}),", wasm.display().to_string()).unwrap();
    }
    code += "];\n\n/// `$mac!(ident, family, folder, component path)` for every guest built.\n#[macro_export]\nmacro_rules! foreach_guest {\n    ($mac:ident) => {\n";
    for (ident, family, name, wasm) in &guests {
        writeln!(code, "        $mac!({ident}, {family:?}, {name:?}, {:?});", wasm.display().to_string()).unwrap();
    }
    code += "    };\n}\n";
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    std::fs::write(out_dir.join("guests.rs"), code).expect("write guests.rs");
    println!("cargo:rustc-env=PALISADE_PLUGIN_WASM_DIR={}", wasm_dir.display());
    println!("cargo:rustc-env=PALISADE_PLUGIN_SRC_DIR={}", plugins.display());
}

/// The folders in `dir`, sorted (the generated list is stable).
fn sorted_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect())
        .unwrap_or_default();
    out.sort();
    out
}
