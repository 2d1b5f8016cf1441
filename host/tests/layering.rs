//! The layering (drawn in ARCHITECTURE.md). Between crates Cargo enforces it: a
//! crate can only use what its `Cargo.toml` names, so the graph below is the
//! layering, and this test pins it (a new edge is a design change, made here on
//! purpose). Inside this crate (`palisade`: the API layer, the services, the
//! CLI) a scan checks that no service imports another.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The `palisade-*` crates a manifest depends on (normal dependencies only).
fn palisade_deps(manifest: &str) -> Vec<String> {
    let text = std::fs::read_to_string(repo().join(manifest)).unwrap_or_else(|e| panic!("{manifest}: {e}"));
    let table: toml::Table = text.parse().unwrap();
    let deps = table.get("dependencies").and_then(|d| d.as_table()).cloned().unwrap_or_default();
    deps.keys().filter(|k| k.starts_with("palisade")).cloned().collect()
}

#[test]
fn the_crate_graph_is_the_layering() {
    let crates = [
        ("palisade-vocab", "vocab/Cargo.toml", vec![]),
        ("palisade-core", "host/core/Cargo.toml", vec!["palisade-vocab"]),
        ("palisade-plugins", "host/plugins/Cargo.toml", vec!["palisade-core", "palisade-vocab"]),
        ("palisade-streams", "host/streams/Cargo.toml", vec!["palisade-core"]),
        (
            "palisade-detect",
            "host/detect/Cargo.toml",
            vec!["palisade-core", "palisade-plugins", "palisade-streams", "palisade-vocab"],
        ),
        (
            "palisade",
            "host/Cargo.toml",
            vec!["palisade-core", "palisade-detect", "palisade-plugins", "palisade-streams", "palisade-vocab"],
        ),
        // The guest SDK shares the vocabulary and nothing of the host.
        ("palisade-sdk", "sdk/Cargo.toml", vec!["palisade-vocab"]),
    ];
    let mut graph: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (name, manifest, want) in &crates {
        let mut got = palisade_deps(manifest);
        got.sort();
        assert_eq!(got, *want, "{name} ({manifest}) depends on other host crates than the layering allows");
        graph.insert(name, got);
    }
    // Each crate only after everything it uses: the graph is a DAG (Cargo would
    // refuse a cycle; this says so in words if one is ever attempted).
    let mut placed: Vec<&str> = Vec::new();
    while placed.len() < graph.len() {
        let next = graph
            .iter()
            .find(|(n, deps)| !placed.contains(n) && deps.iter().all(|d| placed.contains(&d.as_str())))
            .map(|(n, _)| *n);
        placed.push(next.unwrap_or_else(|| panic!("a cycle among {:?}", graph.keys())));
    }
}

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

/// Every `crate::<module>` a module of this crate names, with where.
fn uses(module: &str) -> Vec<(String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files =
        if src.join(module).is_dir() { sources(&src.join(module)) } else { vec![src.join(format!("{module}.rs"))] };
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let mut rest = line;
            while let Some(at) = rest.find("crate::") {
                let after = &rest[at + "crate::".len()..];
                let used: String = after.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                found.push((used, format!("{}:{}", file.display(), n + 1)));
                rest = after;
            }
        }
    }
    found
}

fn forbid(module: &str, forbidden: &[&str]) -> Vec<String> {
    uses(module)
        .into_iter()
        .filter(|(used, _)| forbidden.contains(&used.as_str()))
        .map(|(used, at)| format!("{at}: `{module}` uses crate::{used}"))
        .collect()
}

#[test]
fn no_service_imports_another() {
    let services = ["ingest", "screening", "platforms"];
    let mut problems = Vec::new();
    for s in services {
        let others: Vec<&str> =
            services.iter().copied().filter(|o| *o != s).chain(["app", "eval", "loadgen"]).collect();
        problems.extend(forbid(s, &others));
    }
    // The API layer and the stores the services share serve them, never the reverse;
    // eval runs detection's cascade, not the screening service.
    for lower in ["api", "entity_labels", "config", "eval"] {
        problems.extend(forbid(lower, &["ingest", "screening", "platforms", "app", "loadgen"]));
    }
    assert!(problems.is_empty(), "layering broken:\n{}", problems.join("\n"));
}

#[test]
fn the_scan_sees_an_import() {
    // `screening` does use `crate::api` (allowed): a scan that found nothing would
    // pass the test above for the wrong reason.
    assert!(uses("screening").iter().any(|(m, _)| m == "api"));
}
