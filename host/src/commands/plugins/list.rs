//! `palisade plugins list`: every plugin of a directory, loaded, with its state.

use crate::commands::open;
use crate::config::Config;
use std::path::PathBuf;

pub fn run(config: &Config, dir: Option<PathBuf>) -> anyhow::Result<()> {
    let host = open(config, dir)?;
    println!(
        "{:<22} {:<17} {:<9} {:<10} {:<12} {:>8}  {:<20}  {:<26}  error",
        "NAME", "KIND", "VERSION", "LANGUAGE", "STATE", "LOAD ms", "SIGNER", "CAPABILITIES"
    );
    for p in host.list() {
        let caps: Vec<&str> = p.capabilities.iter().map(|c| c.as_str()).collect();
        println!(
            "{:<22} {:<17} {:<9} {:<10} {:<12} {:>8.1}  {:<20}  {:<26}  {}",
            p.name,
            p.kind.map_or("-", |k| k.as_str()),
            p.version.as_deref().unwrap_or("-"),
            p.language.map_or("-", |l| l.as_str()),
            p.state.to_string(),
            p.load_ms.unwrap_or(0.0),
            p.signer.as_deref().unwrap_or("-"),
            if caps.is_empty() { "-".to_string() } else { caps.join(",") },
            p.load_error.as_deref().unwrap_or("")
        );
    }
    Ok(())
}
