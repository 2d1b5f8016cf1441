//! `palisade serve [ingest|screen|all]`: the services, with logs and traces.

use crate::app::{Process, Services, serve};
use crate::config::Config;
use anyhow::Context;
use palisade_core::telemetry::{TraceExport, init_logging};

#[derive(clap::Args)]
pub struct Args {
    #[arg(value_enum, default_value = "all")]
    pub services: Services,
}

pub fn run(config: Config, Args { services }: Args) -> anyhow::Result<()> {
    let service = config.tracing.service_name.clone().unwrap_or_else(|| {
        match services {
            Services::Ingest => "palisade-ingest",
            Services::Screen => "palisade-screening",
            Services::All => "palisade",
        }
        .to_string()
    });
    let traces = config.tracing.otlp_endpoint.as_deref().map(|endpoint| TraceExport { endpoint, service: &service });
    init_logging(config.server.log_format.as_str(), "info", traces).context("OTEL_EXPORTER_OTLP_ENDPOINT")?;
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if config.server.workers > 0 {
        runtime.worker_threads(config.server.workers);
    }
    let core = Process::start(config)?;
    let served = runtime.enable_all().build()?.block_on(serve(core, services));
    palisade_core::telemetry::traces::shutdown();
    served
}
