//! `palisade bank`: the labelled example bank embedding similarity compares with.

use super::embedder;
use crate::config::Config;
use anyhow::bail;
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum Args {
    /// Embed labelled JSONL rows into the bank (VECTOR_DIR/exemplars.vec); rows with a known id are replaced.
    Import {
        files: Vec<PathBuf>,
        /// At most this many rows per label (the first ones in file order).
        #[arg(long)]
        per_label: Option<usize>,
    },
    /// How many examples the bank holds, by label.
    Stats,
}

pub fn run(config: &Config, command: Args) -> anyhow::Result<()> {
    let (store, path) = palisade_detect::vectors::open(&config.vectors.store(), "exemplars")?;
    match command {
        Args::Import { files, per_label } => {
            if files.is_empty() {
                bail!("name one or more labelled JSONL files");
            }
            let mut rows = palisade_detect::vectors::bank::read(&files)?;
            if let Some(max) = per_label {
                let mut seen = std::collections::HashMap::<String, usize>::new();
                rows.retain(|r| {
                    let n = seen.entry(r.label.clone()).or_default();
                    *n += 1;
                    *n <= max
                });
            }
            let n = palisade_detect::vectors::bank::import(&embedder(config)?, store.as_ref(), rows)?;
            println!("imported {n} examples into {path} ({} in the bank)", store.len());
        }
        Args::Stats => println!("{path}: {} examples", store.len()),
    }
    Ok(())
}
