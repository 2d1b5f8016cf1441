//! Every guest `build.rs` builds (each folder with a `plugin.toml` under
//! `plugins/`) has a test here by construction (`foreach_guest!`, generated from
//! what was built): it loads as the kind its manifest declares and answers a
//! sample event. A new guest gets its test without anyone listing it.

macro_rules! answers {
    ($ident:ident, $family:literal, $folder:literal, $component:literal) => {
        #[test]
        fn $ident() {
            palisade_tests::guest_answers($family, $folder, $component);
        }
    };
}

palisade_tests::foreach_guest!(answers);

#[test]
fn every_plugin_folder_was_built() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("plugins");
    let dirs = |d: &std::path::Path| -> Vec<std::path::PathBuf> {
        std::fs::read_dir(d).unwrap().flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect()
    };
    let families = dirs(&src).into_iter().filter(|f| !f.ends_with("target"));
    let folders = families.flat_map(|f| dirs(&f)).filter(|f| f.join("plugin.toml").is_file()).count();
    assert_eq!(palisade_tests::GUESTS.len(), folders, "{:?}", palisade_tests::GUESTS);
}
