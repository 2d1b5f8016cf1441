//! The `palisade` command: parse, load the configuration, and hand over to the
//! subcommand (`palisade::commands`, one file each).

use clap::Parser;
use palisade::commands::{Command, run};
use palisade::config::Config;

#[derive(Parser)]
#[command(name = "palisade", version, about = "Trust-and-safety event platform")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    run(cli.command, Config::load()?)
}
