//! The `palisade` command: run the services, manage plugins, screen a sample.

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use palisade::app::{Core, Services, serve};
use palisade::config::Config;
use palisade_core::Event;
use palisade_core::telemetry::{TraceExport, init_logging};
use palisade_plugins::install;
use palisade_plugins::runtime::{CompileSource, sha256_hex};
use palisade_plugins::signing::{self, Trust};
use palisade_plugins::{Manifest, PluginHost, PluginKind, PluginMetrics, PluginVersion, Runtime, to_wit};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Parser)]
#[command(name = "palisade", version, about = "Trust-and-safety event platform")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct EvalArgs {
    /// Labelled files to evaluate.
    files: Vec<PathBuf>,
    /// Build the example bank from these files instead of k-fold over the evaluated ones.
    #[arg(long)]
    bank: Vec<PathBuf>,
    /// Folds (k-fold: each row is compared only with the other folds).
    #[arg(long, default_value_t = 5)]
    folds: usize,
    /// Evaluate only the first N rows (after a deterministic shuffle).
    #[arg(long)]
    limit: Option<usize>,
    /// Also score with this trained classifier (one not trained on FILES).
    #[arg(long, conflicts_with = "train")]
    classifier: Option<PathBuf>,
    /// Also train a classifier per fold on the other folds (palisade train's
    /// defaults) and score each row with the one that never saw it.
    #[arg(long)]
    train: bool,
    /// Skip the embedding stage (rules and classifier only; fast).
    #[arg(long)]
    no_embedding: bool,
}

#[derive(clap::Args)]
struct BacktestArgs {
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

#[derive(Subcommand)]
enum Command {
    /// Run the ingestion (:8001) and/or screening (:8002) service.
    Serve {
        #[arg(value_enum, default_value = "all")]
        services: Services,
    },
    /// Inspect, check and install plugins.
    Plugins {
        #[command(subcommand)]
        command: PluginsCommand,
    },
    /// Screen one message with the plugins in PLUGIN_DIR (validators + heuristic rules) and the classifier in CLASSIFIER_DIR; print JSON.
    Screen {
        /// The message text.
        text: String,
    },
    /// List the configuration keys, their defaults and meaning.
    Config,
    /// Score a candidate rule plugin or classifier against the active one without
    /// touching production: over labelled JSONL files (P/R/F1 of both, the rows that
    /// changed) or over a range of stream history (flips, risk deltas; read only).
    Backtest(BacktestArgs),
    /// Exit 0 when a service of this machine answers /health on INGEST_ADDR or
    /// SCREENING_ADDR (a container's HEALTHCHECK: the image has no curl).
    Health,
    /// The labelled example bank used for embedding similarity.
    Bank {
        #[command(subcommand)]
        command: BankCommand,
    },
    /// Evaluate screening on labelled JSONL ({"id","text","label"}): per-category P/R/F1, confusion matrix.
    Eval(EvalArgs),
    /// Train the classifier on labelled JSONL ({"id","text","label"}) and write its artifact folder.
    Train {
        /// Labelled files to train on.
        files: Vec<PathBuf>,
        /// The artifact folder (replaced whole when it exists).
        #[arg(long)]
        out: PathBuf,
        /// A team's own labelled files, added to FILES.
        #[arg(long)]
        add: Vec<PathBuf>,
        /// Also the reviewer labels in the `events:labels` stream (REDIS_URL, REDIS_KEY_PREFIX),
        /// saved beside the artifact as OUT.labels.jsonl (the file the model records).
        #[arg(long)]
        from_stream: bool,
        /// Cross-validation folds (choosing C and class weights, calibrating thresholds).
        #[arg(long, default_value_t = 3)]
        folds: usize,
        /// Values of the inverse regularisation strength C to try.
        #[arg(long, value_delimiter = ',', default_value = "3,10")]
        c: Vec<f64>,
        /// Class weightings to try: none, balanced, sqrt.
        #[arg(long, value_delimiter = ',', default_value = "balanced,sqrt")]
        class_weight: Vec<String>,
        /// Per-category thresholds: the lowest reaching this out-of-fold precision (default: F1-optimal).
        #[arg(long)]
        target_precision: Option<f64>,
        /// Train without the heuristic plugins' verdicts as features.
        #[arg(long)]
        no_rules: bool,
        /// Weigh every source's rows as they come (default: small sources are scaled up, sqrt-balanced).
        #[arg(long)]
        no_source_balance: bool,
        /// Train the n-gram model only: no embedding head, even when SCREENING_MODEL names a model.
        #[arg(long)]
        no_embedding: bool,
    },
    /// Inspect a trained classifier.
    Classifier {
        #[command(subcommand)]
        command: ClassifierCommand,
    },
    /// Drive load against the ingestion service and report throughput and latency.
    Load {
        #[command(flatten)]
        args: palisade::loadgen::LoadArgs,
        /// Skip the check that accepted events equal the stream's growth (REDIS_URL, REDIS_KEY_PREFIX).
        #[arg(long)]
        no_stream_check: bool,
    },
}

#[derive(Subcommand)]
enum ClassifierCommand {
    /// Check an artifact folder (digest, format) and print what it was trained on and its CV figures.
    Show {
        /// The artifact folder (default: CLASSIFIER_DIR).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum BankCommand {
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

#[derive(Subcommand)]
enum PluginsCommand {
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
        /// Refuse the plugin if, on these labelled rows, it lowers any category's F1
        /// by more than --max-f1-drop against the installed version (as `palisade backtest`).
        #[arg(long)]
        gate: Option<PathBuf>,
        #[arg(long, default_value_t = 0.01, requires = "gate")]
        max_f1_drop: f64,
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
        /// As for `install`: refuse it if it lowers any category's F1 on these rows by more than --max-f1-drop.
        #[arg(long)]
        gate: Option<PathBuf>,
        #[arg(long, default_value_t = 0.01, requires = "gate")]
        max_f1_drop: f64,
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

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::load()?;
    match cli.command {
        Command::Serve { services } => {
            let service = config.tracing.service_name.clone().unwrap_or_else(|| {
                match services {
                    Services::Ingest => "palisade-ingest",
                    Services::Screen => "palisade-screening",
                    Services::All => "palisade",
                }
                .to_string()
            });
            let traces =
                config.tracing.otlp_endpoint.as_deref().map(|endpoint| TraceExport { endpoint, service: &service });
            init_logging(config.server.log_format.as_str(), "info", traces).context("OTEL_EXPORTER_OTLP_ENDPOINT")?;
        }
        _ => init_logging("text", "warn", None)?,
    }
    match cli.command {
        Command::Serve { services } => {
            let mut runtime = tokio::runtime::Builder::new_multi_thread();
            if config.server.workers > 0 {
                runtime.worker_threads(config.server.workers);
            }
            let core = Core::start(config)?;
            let served = runtime.enable_all().build()?.block_on(serve(core, services));
            palisade_core::telemetry::traces::shutdown();
            served
        }
        Command::Plugins { command } => match command {
            PluginsCommand::List { dir } => list(&config, dir),
            PluginsCommand::Check { file, manifest, text } => check(&file, manifest.as_deref(), &text),
            PluginsCommand::Install { file, manifest, dir, gate, max_f1_drop, shadow } => {
                install(&config, &file, &manifest, dir, gate.map(|g| (g, max_f1_drop)), shadow)
            }
            PluginsCommand::Promote { name, dir, gate, max_f1_drop } => {
                promote(&config, &name, dir, gate.map(|g| (g, max_f1_drop)))
            }
            PluginsCommand::Keygen { out } => keygen(&out),
            PluginsCommand::Sign { file, manifest, key } => sign(&file, &manifest, &key),
        },
        Command::Screen { text } => screen(config, &text),
        Command::Load { args, no_stream_check } => {
            let key = args.api_key.clone().or_else(|| config.server.api_keys.first().cloned()).unwrap_or_default();
            let stream = (!no_stream_check)
                .then(|| (config.redis.target(), config.redis.keys().shards.into_iter().map(|s| s.raw).collect()));
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
                .block_on(palisade::loadgen::run(args, key, stream))
        }
        Command::Bank { command } => bank(&config, command),
        Command::Classifier { command: ClassifierCommand::Show { dir } } => {
            let Some(dir) = dir.or(config.classifier.dir.clone()) else { bail!("CLASSIFIER_DIR is none: pass --dir") };
            let artifact = palisade_detect::classify::Artifact::load(&dir, None)?;
            print!("{}", palisade_detect::classify::train::report(&artifact.meta));
            Ok(())
        }
        Command::Train {
            files,
            out,
            add,
            from_stream,
            folds,
            c,
            class_weight,
            target_precision,
            no_rules,
            no_source_balance,
            no_embedding,
        } => {
            let class_weights = class_weight
                .iter()
                .map(|w| {
                    palisade_detect::classify::train::ClassWeight::parse(w)
                        .with_context(|| format!("--class-weight {w}: one of none, balanced, sqrt"))
                })
                .collect::<anyhow::Result<_>>()?;
            let settings = palisade_detect::classify::train::TrainSettings {
                folds,
                c_grid: c,
                class_weights,
                target_precision,
                balance_sources: !no_source_balance,
                ..Default::default()
            };
            let mut files: Vec<PathBuf> = files.into_iter().chain(add).collect();
            if from_stream {
                files.push(export_labels(&config, &out)?);
            }
            train(&config, files, &out, settings, !no_rules, !no_embedding)
        }
        Command::Eval(args) => eval(&config, args),
        Command::Health => health(&config),
        Command::Backtest(args) => backtest(&config, args),
        Command::Config => {
            for (section, keys) in palisade::config::SECTIONS {
                println!("# {section}");
                for k in *keys {
                    println!("{:<26} {:<24} {}", k.name, if k.default.is_empty() { "-" } else { k.default }, k.help);
                }
            }
            Ok(())
        }
    }
}

fn health(config: &Config) -> anyhow::Result<()> {
    let mut said = Vec::new();
    for mut addr in [config.server.ingest_addr, config.server.screening_addr] {
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        let url = format!("http://{addr}/health");
        let answer = tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
            let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(2)).build()?;
            client.get(&url).send().await?.error_for_status()?.text().await
        });
        match answer {
            Ok(body) => {
                println!("{url}: {body}");
                return Ok(());
            }
            Err(e) => said.push(format!("{url}: {e}")),
        }
    }
    bail!("no service answers: {}", said.join("; "))
}

fn open(config: &Config, dir: Option<PathBuf>) -> anyhow::Result<std::sync::Arc<PluginHost>> {
    open_with(config, dir, false)
}

/// [`open`] for an offline run (train, eval, backtest): no plugin is quarantined,
/// so its verdicts do not depend on when it faulted (`fault_summary` reports faults).
fn open_offline(config: &Config, dir: Option<PathBuf>) -> anyhow::Result<std::sync::Arc<PluginHost>> {
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

fn keygen(out: &Path) -> anyhow::Result<()> {
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

fn sign(file: &Path, manifest: &Path, key: &Path) -> anyhow::Result<()> {
    let wasm = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let text = std::fs::read_to_string(manifest).with_context(|| format!("cannot read {}", manifest.display()))?;
    let parsed = Manifest::parse(&text)?;
    let key = signing::read_signing_key(key).map_err(anyhow::Error::msg)?;
    let signature = signing::sign(&key, &parsed, &wasm);
    let out = file.with_extension("sig");
    std::fs::write(&out, serde_json::to_string_pretty(&signature)? + "\n")?;
    println!(
        "signed {} {} ({}) with {} -> {}",
        parsed.name,
        parsed.version,
        parsed.kind.as_str(),
        signing::key_id(&key.verifying_key()),
        out.display()
    );
    Ok(())
}

fn list(config: &Config, dir: Option<PathBuf>) -> anyhow::Result<()> {
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

fn check(file: &Path, manifest: Option<&Path>, text: &str) -> anyhow::Result<()> {
    let wasm = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let runtime = Runtime::new(None)?;
    let (component, compile) = runtime.time_compile(&wasm)?;
    println!("file:     {} ({} bytes, sha256 {})", file.display(), wasm.len(), sha256_hex(&wasm));
    println!("compile:  {:.1} ms", compile.as_secs_f64() * 1e3);
    let ty = component.component_type();
    let imports: Vec<String> = ty.imports(runtime.engine()).map(|(n, _)| n.to_string()).collect();
    let exports: Vec<String> = ty.exports(runtime.engine()).map(|(n, _)| n.to_string()).collect();
    println!("imports:  {}", imports.join(", "));
    println!("          (only palisade:plugin/host is provided; any other import traps if called)");
    let mut needs: Vec<&str> = palisade_plugins::capabilities::imported(runtime.engine(), &component)
        .into_iter()
        .filter_map(|(_, c)| c.map(|c| c.as_str()))
        .collect();
    needs.sort();
    needs.dedup();
    println!("needs:    capabilities = {needs:?} (its manifest must grant these)");
    println!("exports:  {}", exports.join(", "));
    let detected = runtime.detect_kind(&component);
    println!("world:    {}", detected.map_or("none of heuristic, validator, platform-adapter", |k| k.as_str()));
    let manifest = match manifest {
        Some(path) => {
            let m = Manifest::parse(&std::fs::read_to_string(path)?).with_context(|| format!("{}", path.display()))?;
            if Some(m.kind) != detected {
                bail!(
                    "manifest declares kind `{}` but the component implements {:?}",
                    m.kind.as_str(),
                    detected.map(|k| k.as_str())
                );
            }
            m
        }
        None => {
            let Some(kind) = detected else { bail!("not a Palisade plugin: it implements none of the worlds") };
            let all = palisade_plugins::capabilities::ALL.map(|c| format!("{:?}", c.as_str())).join(", ");
            Manifest::parse(&format!(
                "name = \"check\"\nversion = \"0\"\nkind = \"{}\"\ncapabilities = [{all}]\n",
                kind.as_str()
            ))?
        }
    };
    let version = PluginVersion::load(&runtime, manifest, &wasm, false)?;
    let events = to_wit(&[Event::sample(text)]);
    let started = Instant::now();
    let result = match version.kind() {
        PluginKind::Heuristic => version.score(&events).map(|s| format!("{:?}", s.verdicts)),
        PluginKind::Validator => version.validate(&events).map(|v| format!("{v:?}")),
        PluginKind::PlatformAdapter => version.platform().map(|p| format!("platform = {p:?}")),
    };
    println!("sample:   {text:?}");
    match result {
        Ok(out) => println!("result:   {out}\ncall:     {:.1} µs", started.elapsed().as_secs_f64() * 1e6),
        Err(fault) => bail!("the plugin failed on the sample event: {fault}"),
    }
    Ok(())
}

fn install(
    config: &Config,
    file: &Path,
    manifest: &Path,
    dir: Option<PathBuf>,
    gate: Option<(PathBuf, f64)>,
    shadow: bool,
) -> anyhow::Result<()> {
    let dir = dir.unwrap_or_else(|| config.plugins.dir.clone());
    let target = if shadow { dir.join("shadow") } else { dir.clone() };
    let wasm = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let text = std::fs::read_to_string(manifest).with_context(|| format!("cannot read {}", manifest.display()))?;
    let detail = match gate {
        Some((gate_file, max_drop)) => gate_check(config, &dir, &wasm, &text, &gate_file, max_drop)?,
        None => serde_json::Value::Null,
    };
    let runtime = Runtime::new(Some(install::cache_dir(&dir)))?;
    let before = open(config, Some(target.clone()))
        .ok()
        .and_then(|h| h.get(&palisade_plugins::Manifest::parse(&text).ok()?.name)?.current().map(|v| v.reference()));
    // A signature beside the component (`plugins sign`) goes with it.
    let signature = std::fs::read(file.with_extension("sig")).ok();
    let version = install::install_signed(&runtime, &target, &wasm, &text, signature.as_deref())
        .with_context(|| format!("installing {}", file.display()))?;
    println!(
        "installed {} {} ({}) into {} [{}, {:.1} ms]",
        version.manifest.name,
        version.manifest.version,
        version.kind().as_str(),
        target.display(),
        if version.compile == CompileSource::Cached { "already compiled" } else { "compiled" },
        version.load_time.as_secs_f64() * 1e3
    );
    // The trail: what was installed on what evidence (a running service then records its reload).
    let action = if shadow { "shadow_install" } else { "install" };
    let entry = palisade_core::audit::AuditEntry::new(action, "cli", &version.manifest.name)
        .versions(before, Some(version.reference()))
        .detail(detail);
    audit_now(config, &entry);
    Ok(())
}

fn promote(config: &Config, name: &str, dir: Option<PathBuf>, gate: Option<(PathBuf, f64)>) -> anyhow::Result<()> {
    let dir = dir.unwrap_or_else(|| config.plugins.dir.clone());
    let shadow = dir.join("shadow");
    let (wasm_path, toml_path) = (shadow.join(format!("{name}.wasm")), shadow.join(format!("{name}.toml")));
    if !wasm_path.is_file() || !toml_path.is_file() {
        bail!("no shadow candidate `{name}` in {} (install one with `plugins install --shadow`)", shadow.display());
    }
    let wasm = std::fs::read(&wasm_path)?;
    let text = std::fs::read_to_string(&toml_path)?;
    let detail = match gate {
        Some((gate_file, max_drop)) => gate_check(config, &dir, &wasm, &text, &gate_file, max_drop)?,
        None => serde_json::Value::Null,
    };
    let before = open(config, Some(dir.clone())).ok().and_then(|h| h.get(name)?.current().map(|v| v.reference()));
    let signature = std::fs::read(wasm_path.with_extension("sig")).ok();
    install::replace(&dir, name, &wasm, text.as_bytes(), signature.as_deref())?;
    std::fs::remove_file(&toml_path)?;
    std::fs::remove_file(&wasm_path)?;
    let _ = std::fs::remove_file(wasm_path.with_extension("sig"));
    let version = Manifest::parse(&text)?.version;
    println!("promoted {name} {version} into {} (the version it replaces stays for rollback)", dir.display());
    let new = palisade_core::audit::VersionRef { version, sha256: sha256_hex(&wasm) };
    let entry =
        palisade_core::audit::AuditEntry::new("promote", "cli", name).versions(before, Some(new)).detail(detail);
    audit_now(config, &entry);
    Ok(())
}

/// Append to the audit trail from the command line (a running service records its
/// own reload too); a Redis that does not answer only costs a note.
fn audit_now(config: &Config, entry: &palisade_core::audit::AuditEntry) {
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
fn gate_check(
    config: &Config,
    dir: &Path,
    wasm: &[u8],
    text: &str,
    gate_file: &Path,
    max_drop: f64,
) -> anyhow::Result<serde_json::Value> {
    let rows = palisade_detect::vectors::bank::read(&[gate_file.to_path_buf()])?;
    let active = side(config, open_offline(config, Some(dir.to_path_buf()))?, None)?;
    let (_tmp, host, _) = palisade::screening::backtest::candidate_plugins(dir, wasm, text)?;
    let candidate = side(config, host, None)?;
    let source = gate_file.display().to_string();
    let outcome = palisade::screening::backtest::GateOutcome::check(&active, &candidate, &rows, &source, max_drop);
    if !outcome.passed() {
        bail!("{}", outcome.summary());
    }
    println!("{}", outcome.summary());
    Ok(serde_json::json!({ "gate": outcome }))
}

/// The active verdict path from config (plugins given, CLASSIFIER_DIR unless
/// SCORING=weighted), with `classifier` in place of CLASSIFIER_DIR's when given.
fn side(
    config: &Config,
    plugins: std::sync::Arc<PluginHost>,
    classifier: Option<&Path>,
) -> anyhow::Result<palisade::screening::backtest::Side> {
    let dir = match (classifier, &config.classifier.dir, config.classifier.scoring) {
        (Some(dir), _, _) => Some(dir.to_path_buf()),
        (None, Some(dir), palisade::config::Scoring::Classifier) => Some(dir.clone()),
        _ => None,
    };
    let classifier = dir
        .map(|d| {
            let artifact = palisade_detect::classify::Artifact::load(&d, None)
                .with_context(|| format!("classifier {}", d.display()))?;
            anyhow::Ok(std::sync::Arc::new(palisade_detect::classify::Classifier::new(artifact)))
        })
        .transpose()?;
    Ok(palisade::screening::backtest::Side { plugins, classifier, policy: config.decision_policy() })
}

fn backtest(config: &Config, a: BacktestArgs) -> anyhow::Result<()> {
    use palisade::screening::backtest;
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

fn screen(config: Config, text: &str) -> anyhow::Result<()> {
    let host = open(&config, None)?;
    let event = Event::sample(text);
    let events = to_wit(std::slice::from_ref(&event));
    let mut violations = Vec::new();
    for (plugin, _) in host.active(PluginKind::Validator) {
        match plugin.validate(&events) {
            Ok(mut v) => violations.extend(v.remove(0).into_iter().map(
                |v| serde_json::json!({"plugin": plugin.name, "field": v.field, "code": v.code, "message": v.message}),
            )),
            Err(e) => eprintln!("validator {}: {e}", plugin.name),
        }
    }
    let started = Instant::now();
    let result = palisade_plugins::rules::score(&host, std::slice::from_ref(&event)).remove(0);
    let classifier = match &config.classifier.dir {
        Some(dir) if dir.exists() => {
            Some(palisade_detect::classify::Classifier::new(palisade_detect::classify::Artifact::load(dir, None)?))
        }
        _ => None,
    };
    let classified = classifier.as_ref().map(|c| {
        let s = c.score(text, &result);
        serde_json::json!({
            "version": c.meta.version,
            "category": s.category,
            "risk_score": s.risk(),
            "category_scores": palisade_detect::classify::CATEGORIES.iter().zip(s.scores).collect::<std::collections::BTreeMap<_, _>>(),
            "top_ngrams": c.contributions(text, s.category, 5),
        })
    });
    let out = serde_json::json!({
        "event": event,
        "violations": violations,
        "classifier": classified,
        "rule_score": result.score,
        "category": result.category,
        "verdicts": result.verdicts,
        "failed_plugins": result.failed,
        "latency_us": started.elapsed().as_secs_f64() * 1e6,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

/// The reviewer labels stream as labelled JSONL beside `out` (`OUT.labels.jsonl`).
fn export_labels(config: &Config, out: &Path) -> anyhow::Result<PathBuf> {
    let key = palisade_streams::Keys::new(&config.redis.key_prefix).labels;
    let target = config.redis.target();
    let rows = palisade_streams::labels::read_all(&target, &key)
        .with_context(|| format!("reading {key} from {target} (REDIS_URL, REDIS_CLUSTER_NODES)"))?;
    if rows.is_empty() {
        bail!("{key} holds no labels (POST /v1/admin/labels adds them)");
    }
    let path = PathBuf::from(format!("{}.labels.jsonl", out.display()));
    let mut text = String::new();
    for r in &rows {
        let source = if r.reviewer.is_empty() { "reviewers".to_string() } else { format!("reviewer:{}", r.reviewer) };
        text += &serde_json::json!({"id": r.id, "text": r.text, "label": r.label, "source": source}).to_string();
        text.push('\n');
    }
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    println!("{} reviewer labels from {key} -> {}", rows.len(), path.display());
    Ok(path)
}

fn train(
    config: &Config,
    files: Vec<PathBuf>,
    out: &Path,
    settings: palisade_detect::classify::train::TrainSettings,
    rules: bool,
    embedding: bool,
) -> anyhow::Result<()> {
    use palisade_detect::classify::train;
    if files.is_empty() {
        bail!("name one or more labelled JSONL files");
    }
    let host = if rules { Some(open_offline(config, None)?) } else { None };
    let started = Instant::now();
    let (examples, records) = train::read_examples(&files, host.as_deref())?;
    // The embedding head, when a model is configured: every row embedded once.
    let embedder = match (embedding, &config.model.dir) {
        (true, Some(_)) => {
            Some(embedder(config).context("the embedding head needs the model (or train with --no-embedding)")?)
        }
        _ => None,
    };
    let vectors = match &embedder {
        Some(e) => {
            let texts: Vec<&str> = examples.iter().map(|x| x.text.as_str()).collect();
            palisade_detect::vectors::bank::embed_texts(e, &texts, "embedding rows")?
        }
        None => Vec::new(),
    };
    let embeddings = embedder
        .as_ref()
        .map(|e| train::Embeddings { model: e.model_id.clone(), vectors: vectors.iter().map(Vec::as_slice).collect() });
    let mut trained = train::train(&examples, &settings, records, rules, embeddings.as_ref())?;
    trained.artifact.save(out).with_context(|| format!("writing {}", out.display()))?;
    print!("{}", train::report(&trained.artifact.meta));
    // Out-of-fold figures per source: how each data set fares when its rows are held out by fold.
    let thresholds = palisade_detect::classify::Classifier::new(trained.artifact.clone()).thresholds().to_owned();
    let mut sources: Vec<&str> = examples.iter().map(|e| e.source.as_str()).collect();
    sources.sort();
    sources.dedup();
    for source in sources {
        let (truth, predicted): (Vec<String>, Vec<String>) = examples
            .iter()
            .zip(&trained.out_of_fold)
            .filter(|(e, _)| e.source == source)
            .map(|(e, p)| {
                let decided = palisade_detect::classify::decide(p, &thresholds);
                (palisade_detect::classify::CATEGORIES[e.label as usize].to_string(), decided.to_string())
            })
            .unzip();
        let predicted = palisade_detect::scores::to_data_labels(&truth, predicted);
        println!("{}", palisade_detect::scores::report(&format!("out of fold: {source}"), &truth, &predicted));
    }
    let size: u64 = std::fs::read_dir(out)?.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum();
    println!("wrote {} ({:.1} MB) in {:.0} s", out.display(), size as f64 / 1e6, started.elapsed().as_secs_f64());
    if let Some(host) = &host {
        println!("rule faults while reading the rows: {}", host.fault_summary());
    }
    Ok(())
}

fn embedder(config: &Config) -> anyhow::Result<palisade_detect::embed::Embedder> {
    let Some(model) = &config.model.dir else { bail!("SCREENING_MODEL is none: no model to embed with") };
    Ok(palisade_detect::embed::Embedder::load(
        model,
        &config.model.ort_dylib_path,
        config.model.device,
        config.model.batch_size,
        &config.model.query_prefix,
    )?)
}

fn bank(config: &Config, command: BankCommand) -> anyhow::Result<()> {
    let (store, path) = palisade_detect::vectors::open(&config.vectors.store(), "exemplars")?;
    match command {
        BankCommand::Import { files, per_label } => {
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
        BankCommand::Stats => println!("{path}: {} examples", store.len()),
    }
    Ok(())
}

fn eval(config: &Config, args: EvalArgs) -> anyhow::Result<()> {
    let EvalArgs { files, bank, folds, limit, classifier, train, no_embedding } = args;
    if files.is_empty() {
        bail!("name one or more labelled JSONL files");
    }
    let mut rows = palisade_detect::vectors::bank::read(&files)?;
    if let Some(n) = limit {
        // Deterministic shuffle by id hash, so a limit samples every label.
        rows.sort_by_key(|r| palisade_detect::classify::row_hash(&r.id));
        rows.truncate(n);
    }
    let bank_rows = if bank.is_empty() { None } else { Some(palisade_detect::vectors::bank::read(&bank)?) };
    let host = open_offline(config, None)?;
    let embedder = if no_embedding { None } else { Some(embedder(config)?) };
    let classifier = classifier
        .map(|dir| {
            anyhow::Ok(palisade_detect::classify::Classifier::new(palisade_detect::classify::Artifact::load(
                &dir, None,
            )?))
        })
        .transpose()?;
    if let Some(c) = &classifier {
        println!(
            "classifier {} (trained on {:?})",
            c.meta.version,
            c.meta.training.iter().map(|f| &f.path).collect::<Vec<_>>()
        );
    }
    let policy = config.decision_policy();
    if classifier.is_some() || train {
        let c = &config.classifier;
        println!(
            "CASCADE_BAND {},{} · CASCADE_KNN_WEIGHT {} · RULE_OVERRIDE_MIN_RISK {} · SCREENING_THRESHOLD {}",
            c.band.low, c.band.high, c.knn_weight, c.rule_override_min_risk, config.screening.threshold
        );
    }
    let out = palisade::eval::run(palisade::eval::EvalInput {
        rows,
        bank: bank_rows,
        folds,
        k: config.screening.similar_k,
        policy,
        plugins: &host,
        embedder: embedder.as_ref(),
        classifier: classifier.as_ref(),
        train_per_fold: train.then(palisade_detect::classify::train::TrainSettings::default),
        cascade_band: config.classifier.band,
        knn_weight: config.classifier.knn_weight,
        ann: config.vectors.ann(),
    })?;
    for (name, predicted) in &out.variants {
        println!("{}", palisade_detect::scores::report(name, &out.truth, predicted));
    }
    if !out.categories.is_empty() {
        println!("the classifier's ranking per category (PR-AUC of its probability; the threshold it decides with)");
        for c in &out.categories {
            let t: Vec<String> = c.thresholds.iter().map(|t| format!("{t:.3}")).collect();
            println!("  {:<20} PR-AUC {:.3}   threshold {}", c.category, c.pr_auc, t.join(" / "));
        }
    }
    println!("rule faults (their verdicts are missing from the figures above): {}", host.fault_summary());
    Ok(())
}
