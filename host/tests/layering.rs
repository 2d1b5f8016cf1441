//! The layering of `host/src` (drawn in `lib.rs` and ARCHITECTURE.md), checked on
//! the source: no service imports another, `core` imports nothing else of the
//! host, and the embedder and vector stores do not read the whole `Config`.

use std::path::{Path, PathBuf};

fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// Every `crate::<module>` a folder's code names, with where.
fn uses(folder: &str) -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(folder);
    let mut found = Vec::new();
    for file in sources(&root) {
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let mut rest = line;
            while let Some(at) = rest.find("crate::") {
                let after = &rest[at + "crate::".len()..];
                let module: String = after.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                found.push((module, format!("{}:{}", file.display(), n + 1)));
                rest = after;
            }
        }
    }
    found
}

fn forbid(folder: &str, forbidden: &[&str]) -> Vec<String> {
    uses(folder)
        .into_iter()
        .filter(|(module, _)| forbidden.contains(&module.as_str()))
        .map(|(module, at)| format!("{at}: `{folder}` uses crate::{module}"))
        .collect()
}

#[test]
fn no_service_imports_another_and_core_stands_alone() {
    let services = ["ingest", "screening", "platforms"];
    let mut problems = Vec::new();
    for s in services {
        let others: Vec<&str> = services.iter().copied().filter(|o| *o != s).chain(["app"]).collect();
        problems.extend(forbid(s, &others));
    }
    let everything = [
        "api",
        "app",
        "backtest",
        "classify",
        "config",
        "embed",
        "entity_labels",
        "eval",
        "ingest",
        "loadgen",
        "platforms",
        "plugins",
        "progress",
        "screening",
        "streams",
        "telemetry",
        "vectors",
    ];
    problems.extend(forbid("core", &everything));
    // The storage, model and plugin layers serve the services, never the reverse.
    for lower in ["plugins", "streams", "embed", "vectors", "api", "classify", "telemetry", "entity_labels"] {
        problems.extend(forbid(lower, &["ingest", "screening", "platforms", "app", "eval", "loadgen", "backtest"]));
    }
    for own_config in ["embed", "vectors", "classify"] {
        problems.extend(forbid(own_config, &["config"]));
    }
    assert!(problems.is_empty(), "layering broken:\n{}", problems.join("\n"));
}

#[test]
fn the_check_sees_a_forbidden_import() {
    // The scan itself: `screening` does use `crate::plugins` (allowed), so a scan
    // that found nothing would pass the test above for the wrong reason.
    assert!(uses("screening").iter().any(|(m, _)| m == "plugins"));
}
