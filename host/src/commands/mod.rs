//! The `palisade` command's subcommands, one file each (an `Args` and a `run`),
//! and what several of them share: opening a plugin directory, the embedder, the
//! gate, the active verdict path, an audit entry from the command line.
//! `main.rs` only parses and dispatches.

mod backtest;
mod bank;
mod classifier;
mod config;
mod eval;
mod health;
mod load;
mod plugins;
mod screen;
mod serve;
mod train;

use crate::config::Config;
use anyhow::{Context, bail};
use clap::Subcommand;
use palisade_plugins::install;
use palisade_plugins::signing::Trust;
use palisade_plugins::{PluginHost, PluginMetrics, Runtime};
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum Command {
    /// Run the ingestion (:8001) and/or screening (:8002) service.
    Serve(serve::Args),
    /// Inspect, check and install plugins.
    Plugins {
        #[command(subcommand)]
        command: plugins::Command,
    },
    /// Screen one message with the plugins in PLUGIN_DIR (validators + heuristic rules) and the classifier in CLASSIFIER_DIR; print JSON.
    Screen(screen::Args),
    /// List the configuration keys, their defaults and meaning.
    Config,
    /// Score a candidate rule plugin or classifier against the active one without
    /// touching production: over labelled JSONL files (P/R/F1 of both, the rows that
    /// changed) or over a range of stream history (flips, risk deltas; read only).
    Backtest(backtest::Args),
    /// Exit 0 when a service of this machine answers /health on INGEST_ADDR or
    /// SCREENING_ADDR (a container's HEALTHCHECK: the image has no curl).
    Health,
    /// The labelled example bank used for embedding similarity.
    Bank {
        #[command(subcommand)]
        command: bank::Args,
    },
    /// Evaluate screening on labelled JSONL ({"id","text","label"}): per-category P/R/F1, confusion matrix.
    Eval(eval::Args),
    /// Train the classifier on labelled JSONL ({"id","text","label"}) and write its artifact folder.
    Train(train::Args),
    /// Inspect a trained classifier.
    Classifier {
        #[command(subcommand)]
        command: classifier::Command,
    },
    /// Drive load against the ingestion service and report throughput and latency.
    Load(load::Args),
}

/// Run one command (logging set up for it first).
pub fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => serve::run(config, args),
        other => {
            palisade_core::telemetry::init_logging("text", "warn", None)?;
            match other {
                Command::Serve(_) => unreachable!("matched above"),
                Command::Plugins { command } => plugins::run(&config, command),
                Command::Screen(args) => screen::run(&config, &args.text),
                Command::Config => config::run(),
                Command::Backtest(args) => backtest::run(&config, args),
                Command::Health => health::run(&config),
                Command::Bank { command } => bank::run(&config, command),
                Command::Eval(args) => eval::run(&config, args),
                Command::Train(args) => train::run(&config, args),
                Command::Classifier { command } => classifier::run(&config, command),
                Command::Load(args) => load::run(&config, args),
            }
        }
    }
}

/// The plugin directory `dir` (default `PLUGIN_DIR`) loaded as a service would.
pub(crate) fn open(config: &Config, dir: Option<PathBuf>) -> anyhow::Result<std::sync::Arc<PluginHost>> {
    open_with(config, dir, false)
}

/// The toxicity side model `palisade train` (and `eval --train`) adds as
/// features: TOXICITY_MODEL, or none when it is `none`.
pub(crate) fn toxicity_model(
    config: &Config,
) -> anyhow::Result<Option<std::sync::Arc<palisade_detect::toxicity::Toxicity>>> {
    let Some(path) = &config.model.toxicity else { return Ok(None) };
    let model = palisade_detect::toxicity::Toxicity::load(path).with_context(|| {
        format!(
            "the toxicity side model TOXICITY_MODEL={} (scripts/setup converts it; TOXICITY_MODEL=none trains without it)",
            path.display()
        )
    })?;
    Ok(Some(std::sync::Arc::new(model)))
}

/// [`open`] for an offline run (train, eval, backtest): no plugin is quarantined,
/// so its verdicts do not depend on when it faulted (`fault_summary` reports faults).
pub(crate) fn open_offline(config: &Config, dir: Option<PathBuf>) -> anyhow::Result<std::sync::Arc<PluginHost>> {
    open_with(config, dir, true)
}

fn open_with(config: &Config, dir: Option<PathBuf>, offline: bool) -> anyhow::Result<std::sync::Arc<PluginHost>> {
    let dir = dir.unwrap_or_else(|| config.plugins.dir.clone());
    if !dir.is_dir() {
        bail!("plugin directory {} does not exist (run scripts/setup, or pass --dir)", dir.display());
    }
    let runtime = Runtime::new(Some(install::cache_dir(&dir)))?;
    let trust = Trust::from_entries(&config.plugins.trusted_keys, config.plugins.require_signature)
        .map_err(anyhow::Error::msg)?;
    let metrics = PluginMetrics::register(&prometheus::Registry::new())?;
    Ok(match offline {
        true => PluginHost::open_offline(runtime, dir, metrics, trust),
        false => PluginHost::open_trusting(runtime, dir, metrics, trust),
    })
}

/// Append to the audit trail from the command line (a running service records its
/// own reload too); a Redis that does not answer only costs a note.
pub(crate) fn audit_now(config: &Config, entry: &palisade_core::audit::AuditEntry) {
    let key = palisade_streams::Keys::new(&config.redis.key_prefix).audit;
    if let Err(e) =
        palisade_streams::audit::append_now(&config.redis.target(), &key, config.redis.audit_max_entries, entry)
    {
        eprintln!("note: not recorded in {key} ({e}); the service's reload will be");
    }
}

/// The gate: the candidate (`wasm` + `manifest`) against the installed version in
/// `dir` on a labelled file; an error saying which category loses how much F1,
/// or the figures it passed on (for the audit trail).
pub(crate) fn gate_check(
    config: &Config,
    dir: &Path,
    wasm: &[u8],
    text: &str,
    gate_file: &Path,
    max_drop: f64,
) -> anyhow::Result<serde_json::Value> {
    let rows = palisade_detect::vectors::bank::read(&[gate_file.to_path_buf()])?;
    let active = side(config, open_offline(config, Some(dir.to_path_buf()))?, None)?;
    let (_tmp, host, _) = crate::screening::backtest::candidate_plugins(dir, wasm, text)?;
    let candidate = side(config, host, None)?;
    let source = gate_file.display().to_string();
    let outcome = crate::screening::backtest::GateOutcome::check(&active, &candidate, &rows, &source, max_drop);
    if !outcome.passed() {
        bail!("{}", outcome.summary());
    }
    println!("{}", outcome.summary());
    Ok(serde_json::json!({ "gate": outcome }))
}

/// The active verdict path from config (plugins given, CLASSIFIER_DIR unless
/// SCORING=weighted), with `classifier` in place of CLASSIFIER_DIR's when given.
pub(crate) fn side(
    config: &Config,
    plugins: std::sync::Arc<PluginHost>,
    classifier: Option<&Path>,
) -> anyhow::Result<crate::screening::backtest::Side> {
    let dir = match (classifier, &config.classifier.dir, config.classifier.scoring) {
        (Some(dir), _, _) => Some(dir.to_path_buf()),
        (None, Some(dir), crate::config::Scoring::Classifier) => Some(dir.clone()),
        _ => None,
    };
    let classifier = dir
        .map(|d| {
            let artifact = palisade_detect::classify::Artifact::load(&d, None)
                .with_context(|| format!("classifier {}", d.display()))?;
            anyhow::Ok(std::sync::Arc::new(palisade_detect::classify::Classifier::new(artifact)))
        })
        .transpose()?;
    Ok(crate::screening::backtest::Side { plugins, classifier, policy: config.decision_policy() })
}

pub(crate) fn embedder(config: &Config) -> anyhow::Result<palisade_detect::embed::Embedder> {
    let Some(model) = &config.model.dir else { bail!("SCREENING_MODEL is none: no model to embed with") };
    Ok(palisade_detect::embed::Embedder::load(
        model,
        &config.model.ort_dylib_path,
        config.model.device,
        config.model.batch_size,
        &config.model.query_prefix,
    )?)
}
