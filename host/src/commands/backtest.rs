//! `palisade backtest`: a candidate rule plugin or classifier against the active
//! one, over labelled files or stream history, without touching production.

use super::{open_offline, side};
use crate::config::Config;
use anyhow::{Context, bail};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Labelled JSONL files ({"id","text","label"}); not with --stream.
    files: Vec<PathBuf>,
    /// The candidate plugin's .wasm (with --manifest); it stands in for the installed plugin of its name.
    #[arg(long, requires = "manifest")]
    plugin: Option<PathBuf>,
    #[arg(long, requires = "plugin")]
    manifest: Option<PathBuf>,
    /// A candidate classifier folder (from `palisade train`) in place of CLASSIFIER_DIR's.
    #[arg(long)]
    classifier: Option<PathBuf>,
    /// Backtest over this stream's history instead (e.g. events:raw: every shard of
    /// it when STREAM_SHARDS > 1 or on a cluster; REDIS_KEY_PREFIX applies).
    #[arg(long, conflicts_with = "files")]
    stream: Option<String>,
    /// With --stream: entries from this long ago (90s, 30m, 24h, 7d).
    #[arg(long, requires = "stream", conflicts_with = "from")]
    since: Option<String>,
    /// With --stream: the first entry id (default: the start).
    #[arg(long, requires = "stream")]
    from: Option<String>,
    /// With --stream: the last entry id (default: the end).
    #[arg(long, requires = "stream")]
    to: Option<String>,
    /// With --stream: at most this many entries (shared evenly over shards).
    #[arg(long, requires = "stream")]
    limit: Option<u64>,
    /// Changed rows or flipped events to list.
    #[arg(long, default_value_t = 20)]
    show: usize,
    /// The report as JSON.
    #[arg(long)]
    json: bool,
    /// Plugin directory (default: PLUGIN_DIR).
    #[arg(long)]
    dir: Option<PathBuf>,
}

pub fn run(config: &Config, a: Args) -> anyhow::Result<()> {
    use crate::screening::backtest;
    if a.plugin.is_none() && a.classifier.is_none() {
        bail!("name a candidate: --plugin FILE.wasm --manifest FILE.toml, or --classifier DIR");
    }
    let dir = a.dir.clone().unwrap_or_else(|| config.plugins.dir.clone());
    let active = side(config, open_offline(config, Some(dir.clone()))?, None)?;
    let (_tmp, plugins) = match (&a.plugin, &a.manifest) {
        (Some(wasm), Some(manifest)) => {
            let wasm = std::fs::read(wasm).with_context(|| format!("cannot read {}", wasm.display()))?;
            let text =
                std::fs::read_to_string(manifest).with_context(|| format!("cannot read {}", manifest.display()))?;
            let (tmp, host, version) = backtest::candidate_plugins(&dir, &wasm, &text)?;
            eprintln!("candidate: plugin {} {}", version.manifest.name, version.manifest.version);
            (Some(tmp), host)
        }
        _ => (None, active.plugins.clone()),
    };
    let candidate = side(config, plugins, a.classifier.as_deref())?;
    if let Some(c) = &candidate.classifier
        && a.classifier.is_some()
    {
        eprintln!(
            "candidate: classifier {} (active: {:?})",
            c.meta.version,
            active.classifier.as_ref().map(|c| &c.meta.version)
        );
    }
    let show = |json: String, text: String| println!("{}", if a.json { json } else { text });
    match &a.stream {
        None => {
            if a.files.is_empty() {
                bail!("name labelled JSONL files, or --stream events:raw");
            }
            let rows = palisade_detect::vectors::bank::read(&a.files)?;
            let bar = palisade_core::progress::bar("rows (both sides)", 0);
            let report = backtest::labelled(&active, &candidate, &rows, a.show, &bar);
            bar.finish_and_clear();
            show(serde_json::to_string_pretty(&report)?, report.render());
        }
        Some(stream) => {
            let range = backtest::StreamRange::new(
                config.redis.keys().streams_named(stream),
                a.since.as_deref(),
                a.from.as_deref(),
                a.to.as_deref(),
                a.limit,
                palisade_core::now_ms(),
            )
            .map_err(anyhow::Error::msg)?;
            let bar = palisade_core::progress::bar("entries", 0);
            let report = tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
                let mut conn =
                    palisade_streams::RedisConn::connect(&config.redis.target(), config.redis.timeout()).await?;
                backtest::stream(&mut conn, &range, &active, &candidate, a.show, &bar).await
            })?;
            bar.finish_and_clear();
            show(serde_json::to_string_pretty(&report)?, report.render(&range.title()));
        }
    }
    eprintln!(
        "rule faults: active: {}; candidate: {}",
        active.plugins.fault_summary(),
        candidate.plugins.fault_summary()
    );
    Ok(())
}
