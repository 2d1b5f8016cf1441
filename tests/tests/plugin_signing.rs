//! Signed components with real built plugins: a component signed by a trusted key
//! loads and names its signer; with signatures required, an unsigned component, an
//! unknown signer and a manifest changed after signing are each refused with a
//! message that says which — while the version before keeps serving.

use palisade_plugins::install::install_signed;
use palisade_plugins::signing::{self, Trust};
use palisade_plugins::{Manifest, PluginHost, PluginMetrics};
use palisade_tests::{PluginDir, manifest, set_key, wasm};
use std::sync::Arc;

fn host(dir: &PluginDir, trust: Trust) -> Arc<PluginHost> {
    let metrics = PluginMetrics::register(&prometheus::Registry::new()).unwrap();
    PluginHost::open_trusting(dir.runtime.clone(), dir.path(), metrics, trust)
}

fn signature(key: &ed25519_dalek::SigningKey, manifest_text: &str) -> Vec<u8> {
    let parsed = Manifest::parse(manifest_text).unwrap();
    serde_json::to_vec(&signing::sign(key, &parsed, &wasm("threats"))).unwrap()
}

fn serving(host: &PluginHost) -> (Option<String>, Option<String>, Option<String>) {
    let info = host.get("threats").unwrap().info();
    (info.version, info.signer, info.load_error)
}

#[test]
fn signed_components_load_and_unsigned_unknown_or_changed_ones_are_refused_with_the_old_serving() {
    let (team, stranger) = (signing::generate().unwrap(), signing::generate().unwrap());
    let trust = Trust { keys: vec![team.verifying_key()], require: true };
    let dir = PluginDir::new();
    let v1 = manifest("threats");
    install_signed(&dir.runtime, &dir.path(), &wasm("threats"), &v1, Some(&signature(&team, &v1))).unwrap();
    let host = host(&dir, trust);
    let team_id = signing::key_id(&team.verifying_key());
    assert_eq!(serving(&host), (Some("0.1.0".into()), Some(team_id.clone()), None));

    // 0.2.0 signed by a key nobody trusts.
    let v2 = set_key(&v1, "version", "\"0.2.0\"");
    install_signed(&dir.runtime, &dir.path(), &wasm("threats"), &v2, Some(&signature(&stranger, &v2))).unwrap();
    host.reload(false);
    let (version, signer, error) = serving(&host);
    assert_eq!((version.as_deref(), signer.as_deref()), (Some("0.1.0"), Some(team_id.as_str())), "the old one serves");
    let error = error.unwrap();
    assert!(
        error.contains(&signing::key_id(&stranger.verifying_key())) && error.contains("not in PLUGIN_TRUSTED_KEYS")
    );

    // 0.2.0 unsigned (installing without a signature removes the stale one).
    install_signed(&dir.runtime, &dir.path(), &wasm("threats"), &v2, None).unwrap();
    assert!(!dir.path().join("threats.sig").exists());
    host.reload(false);
    let (version, _, error) = serving(&host);
    assert_eq!(version.as_deref(), Some("0.1.0"));
    assert!(error.unwrap().contains("unsigned: no threats.sig"));

    // Signed as 0.2.0, then the manifest's version edited by hand to 0.3.0.
    install_signed(&dir.runtime, &dir.path(), &wasm("threats"), &v2, Some(&signature(&team, &v2))).unwrap();
    host.reload(false);
    assert_eq!(serving(&host), (Some("0.2.0".into()), Some(team_id.clone()), None), "a trusted signature loads");
    let toml = dir.path().join("threats.toml");
    let edited = set_key(&std::fs::read_to_string(&toml).unwrap(), "version", "\"0.3.0\"");
    std::fs::write(&toml, edited).unwrap();
    host.reload(false);
    let (version, _, error) = serving(&host);
    assert_eq!(version.as_deref(), Some("0.2.0"));
    assert!(error.unwrap().contains("changed after signing"));
    // The admin listing shows the signer; a host with optional signatures loads unsigned ones.
    let relaxed = PluginDir::new();
    relaxed.install("threats");
    let open = self::host(&relaxed, Trust::default());
    assert_eq!(serving(&open), (Some("0.1.0".into()), None, None));
}
