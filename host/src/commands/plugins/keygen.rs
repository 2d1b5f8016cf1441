//! `palisade plugins keygen`: an Ed25519 key pair for signing plugins.

use anyhow::{Context, bail};
use palisade_plugins::signing;
use std::path::Path;

pub fn run(out: &Path) -> anyhow::Result<()> {
    let (secret, public) = (out.with_extension("key"), out.with_extension("pub"));
    if secret.exists() {
        bail!("{} exists: not overwriting a key", secret.display());
    }
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let key = signing::generate().context("no random bytes from /dev/urandom")?;
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&secret)?;
        writeln!(f, "{}", hex::encode(key.to_bytes()))?;
    }
    std::fs::write(&public, format!("{}\n", hex::encode(key.verifying_key().as_bytes())))?;
    println!(
        "key {}: secret {} (keep it private), public {} (add it to PLUGIN_TRUSTED_KEYS)",
        signing::key_id(&key.verifying_key()),
        secret.display(),
        public.display()
    );
    Ok(())
}
