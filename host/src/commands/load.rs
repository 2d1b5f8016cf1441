//! `palisade load`: drive load against the ingestion service (`crate::loadgen`).

use crate::config::Config;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub load: crate::loadgen::LoadArgs,
    /// Skip the check that accepted events equal the stream's growth (REDIS_URL, REDIS_KEY_PREFIX).
    #[arg(long)]
    pub no_stream_check: bool,
}

pub fn run(config: &Config, Args { load, no_stream_check }: Args) -> anyhow::Result<()> {
    let key = load.api_key.clone().or_else(|| config.server.api_keys.first().cloned()).unwrap_or_default();
    let stream = (!no_stream_check)
        .then(|| (config.redis.target(), config.redis.keys().shards.into_iter().map(|s| s.raw).collect()));
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(crate::loadgen::run(load, key, stream))
}
