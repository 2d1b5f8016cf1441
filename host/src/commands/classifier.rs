//! `palisade classifier show`: a trained classifier's artifact, checked, and what
//! it was trained on.

use crate::config::Config;
use anyhow::bail;
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum Command {
    /// Check an artifact folder (digest, format) and print what it was trained on and its CV figures.
    Show {
        /// The artifact folder (default: CLASSIFIER_DIR).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

pub fn run(config: &Config, command: Command) -> anyhow::Result<()> {
    let Command::Show { dir } = command;
    let Some(dir) = dir.or(config.classifier.dir.clone()) else { bail!("CLASSIFIER_DIR is none: pass --dir") };
    let artifact = palisade_detect::classify::Artifact::load(&dir, None)?;
    print!("{}", palisade_detect::classify::train::report(&artifact.meta));
    Ok(())
}
