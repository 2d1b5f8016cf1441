//! `palisade plugins …`: inspect, check, install, promote and sign plugins; one
//! file per subcommand.

mod check;
mod install;
mod keygen;
mod list;
mod promote;
mod sign;

use crate::config::Config;
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum Command {
    /// Load every plugin in a directory and show its state.
    List {
        /// Plugin directory (default: PLUGIN_DIR).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Check a plugin file: its world, imports and exports, compile time, and its verdict on a sample event.
    Check {
        file: PathBuf,
        /// The plugin's manifest, for its settings and limits.
        #[arg(long)]
        manifest: Option<PathBuf>,
        /// Content of the sample event.
        #[arg(long, default_value = "You are a pathetic idiot!!! Claim your FREE prize at bit.ly/win")]
        text: String,
    },
    /// Install a plugin into a directory: verify it, precompile it into the cache,
    /// then write the .wasm and its manifest (with sha256) by rename, so a running
    /// service hot-reloads it whole.
    Install {
        file: PathBuf,
        #[arg(long)]
        manifest: PathBuf,
        /// Plugin directory (default: PLUGIN_DIR).
        #[arg(long)]
        dir: Option<PathBuf>,
        #[command(flatten)]
        gate: Gate,
        /// Install as a shadow candidate (into DIR/shadow): it scores live batches beside
        /// the active version without affecting routing (GET /v1/admin/shadow).
        #[arg(long)]
        shadow: bool,
    },
    /// Make a shadow candidate (DIR/shadow/NAME) the active version, by rename as
    /// `POST /v1/admin/shadow/{name}/promote` does; with --gate only if it passes.
    /// A running service's watcher loads it; the version it replaces stays for rollback.
    Promote {
        name: String,
        /// Plugin directory (default: PLUGIN_DIR).
        #[arg(long)]
        dir: Option<PathBuf>,
        #[command(flatten)]
        gate: Gate,
    },
    /// Make an Ed25519 key pair for signing plugins: OUT.key (secret, mode 0600) and
    /// OUT.pub (for PLUGIN_TRUSTED_KEYS).
    Keygen {
        /// Path without extension, e.g. var/keys/trust-and-safety.
        #[arg(long)]
        out: PathBuf,
    },
    /// Sign a component and its manifest (name, version, kind, the component's
    /// sha256): writes FILE.sig beside FILE.wasm, which `plugins install` takes along.
    Sign {
        file: PathBuf,
        #[arg(long)]
        manifest: PathBuf,
        /// The secret key file from `plugins keygen`.
        #[arg(long)]
        key: PathBuf,
    },
}

/// `--gate FILE [--max-f1-drop D]` of `install` and `promote`.
#[derive(clap::Args)]
pub struct Gate {
    /// Refuse the plugin if, on these labelled rows, it lowers any category's F1
    /// by more than --max-f1-drop against the installed version (as `palisade backtest`).
    #[arg(long)]
    gate: Option<PathBuf>,
    #[arg(long, default_value_t = 0.01, requires = "gate")]
    max_f1_drop: f64,
}

impl Gate {
    fn file_and_drop(self) -> Option<(PathBuf, f64)> {
        self.gate.map(|g| (g, self.max_f1_drop))
    }
}

pub fn run(config: &Config, command: Command) -> anyhow::Result<()> {
    match command {
        Command::List { dir } => list::run(config, dir),
        Command::Check { file, manifest, text } => check::run(&file, manifest.as_deref(), &text),
        Command::Install { file, manifest, dir, gate, shadow } => {
            install::run(config, &file, &manifest, dir, gate.file_and_drop(), shadow)
        }
        Command::Promote { name, dir, gate } => promote::run(config, &name, dir, gate.file_and_drop()),
        Command::Keygen { out } => keygen::run(&out),
        Command::Sign { file, manifest, key } => sign::run(&file, &manifest, &key),
    }
}
