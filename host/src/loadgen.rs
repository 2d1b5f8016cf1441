//! `palisade load`: the load generator used for published ingestion figures.
//! Drives single or batch ingest against a URL with a set concurrency, bounded by
//! a count or a duration (and optionally a rate), shows live progress, and prints
//! events/s, request latency percentiles, status counts, and whether the number
//! of accepted events equals the growth of the stream in Redis.

use anyhow::{Context, bail};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// Ingestion base URL.
    #[arg(long, default_value = "http://127.0.0.1:8001")]
    pub url: String,
    /// `single` (POST /v1/events/ingest) or `batch` (POST /v1/events/ingest-batch).
    #[arg(long, value_enum, default_value = "batch")]
    pub mode: Mode,
    /// Events per batch request.
    #[arg(long, default_value_t = 500)]
    pub batch_size: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Stop after this many events (default 100000 unless --duration is given).
    #[arg(long)]
    pub count: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long)]
    pub duration: Option<f64>,
    /// Target events per second (default: as fast as possible).
    #[arg(long)]
    pub rate: Option<f64>,
    /// API key (default: the first of API_KEYS).
    #[arg(long)]
    pub api_key: Option<String>,
    /// Bytes of content per event (approximate).
    #[arg(long, default_value_t = 200)]
    pub content_bytes: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    Single,
    Batch,
}

#[derive(Default)]
struct Counters {
    sent_events: AtomicU64,
    accepted: AtomicU64,
    duplicates: AtomicU64,
    rejected: AtomicU64,
    /// Events whose outcome the service could not know (503 `outcome_unknown`, or
    /// no answer at all): each may or may not be in the stream.
    unknown: AtomicU64,
    requests: AtomicU64,
}

#[derive(serde::Deserialize)]
struct BatchAnswer {
    accepted: u64,
    duplicates: u64,
    rejected: u64,
}

/// Run the load and print the report. `stream` is (where Redis is, the raw
/// stream's shards) for the growth check.
pub async fn run(
    args: LoadArgs,
    api_key: String,
    stream: Option<(palisade_streams::Target, Vec<String>)>,
) -> anyhow::Result<()> {
    let per_request = if args.mode == Mode::Batch { args.batch_size.max(1) } else { 1 } as u64;
    let limit = match (args.count, args.duration) {
        (Some(c), _) => Some(c),
        (None, None) => Some(100_000),
        (None, Some(_)) => None,
    };
    let deadline = args.duration.map(|d| Instant::now() + Duration::from_secs_f64(d));
    let before = match &stream {
        Some((target, keys)) => Some(xlen(target, keys).await.context("reading the stream length before the run")?),
        None => None,
    };
    let http = reqwest::Client::builder().pool_max_idle_per_host(args.concurrency).build()?;
    let path = if args.mode == Mode::Batch { "/v1/events/ingest-batch" } else { "/v1/events/ingest" };
    let url = format!("{}{path}", args.url.trim_end_matches('/'));
    let run_id = format!("{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis());
    let counters = Arc::new(Counters::default());
    let statuses = Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::<u16, u64>::new()));
    let next = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let filler = "lorem ipsum dolor sit amet ".repeat(args.content_bytes / 27 + 1);
    let filler: Arc<str> = filler[..args.content_bytes.min(filler.len())].into();

    // Count-limited runs count events; timed runs count seconds.
    let progress = palisade_core::progress::bar("events", limit.unwrap_or(0));
    if let (None, Some(d)) = (limit, deadline) {
        progress.set_length((d - started).as_secs());
        progress.set_message("seconds");
    }
    let ticker = {
        let (counters, stop, progress) = (counters.clone(), stop.clone(), progress.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let n = counters.sent_events.load(Ordering::Relaxed);
                progress.set_position(if limit.is_some() { n } else { started.elapsed().as_secs() });
            }
        })
    };

    let mut workers = Vec::new();
    for _ in 0..args.concurrency.max(1) {
        let (http, url, key, counters, statuses, next, stop, run_id, filler) = (
            http.clone(),
            url.clone(),
            api_key.clone(),
            counters.clone(),
            statuses.clone(),
            next.clone(),
            stop.clone(),
            run_id.clone(),
            filler.clone(),
        );
        let (mode, rate) = (args.mode, args.rate);
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let first = next.fetch_add(per_request, Ordering::Relaxed);
                if stop.load(Ordering::Relaxed)
                    || limit.is_some_and(|l| first >= l)
                    || deadline.is_some_and(|d| Instant::now() >= d)
                {
                    break;
                }
                let n = limit.map_or(per_request, |l| per_request.min(l - first));
                if let Some(rate) = rate {
                    let due = started + Duration::from_secs_f64(first as f64 / rate);
                    tokio::time::sleep_until(due.into()).await;
                }
                let event = |i: u64| {
                    format!(
                        r#"{{"event_id":"load-{run_id}-{i}","event_type":"message","platform":"web","user_id":"user-{u}","author_id":"author-{u}","channel_id":"load","content":"load {run_id} {i} {filler}"}}"#,
                        u = i % 1000
                    )
                };
                let body = if mode == Mode::Batch {
                    format!(r#"{{"events":[{}]}}"#, (first..first + n).map(event).collect::<Vec<_>>().join(","))
                } else {
                    event(first)
                };
                let sent = Instant::now();
                let result = http.post(&url).header("api-key", &key).header("content-type", "application/json").body(body).send().await;
                let status = match result {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let bytes = r.bytes().await.unwrap_or_default();
                        latencies.push(sent.elapsed().as_micros() as u32);
                        match (mode, status) {
                            (Mode::Batch, 200 | 202) => {
                                if let Ok(a) = serde_json::from_slice::<BatchAnswer>(&bytes) {
                                    counters.accepted.fetch_add(a.accepted, Ordering::Relaxed);
                                    counters.duplicates.fetch_add(a.duplicates, Ordering::Relaxed);
                                    counters.rejected.fetch_add(a.rejected, Ordering::Relaxed);
                                }
                            }
                            (Mode::Single, 202) => drop(counters.accepted.fetch_add(1, Ordering::Relaxed)),
                            (Mode::Single, 200) => drop(counters.duplicates.fetch_add(1, Ordering::Relaxed)),
                            (Mode::Single, 422) => drop(counters.rejected.fetch_add(1, Ordering::Relaxed)),
                            (_, 503) if bytes.windows(15).any(|w| w == b"outcome_unknown") => {
                                counters.unknown.fetch_add(n, Ordering::Relaxed);
                            }
                            _ => {}
                        }
                        status
                    }
                    Err(_) => {
                        counters.unknown.fetch_add(n, Ordering::Relaxed);
                        0
                    }
                };
                counters.sent_events.fetch_add(n, Ordering::Relaxed);
                counters.requests.fetch_add(1, Ordering::Relaxed);
                *statuses.lock().expect("statuses").entry(status).or_default() += 1;
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for w in workers {
        latencies.extend(w.await?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let _ = ticker.await;
    progress.finish_and_clear();
    latencies.sort_unstable();
    let pct = |q: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        latencies[((latencies.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0
    };
    let c = &counters;
    let (sent, accepted) = (c.sent_events.load(Ordering::Relaxed), c.accepted.load(Ordering::Relaxed));
    println!("mode:        {:?}, {} event(s)/request, concurrency {}", args.mode, per_request, args.concurrency);
    println!(
        "events:      {sent} sent in {elapsed:.2} s = {:.0} events/s ({:.0} requests/s)",
        sent as f64 / elapsed,
        c.requests.load(Ordering::Relaxed) as f64 / elapsed
    );
    println!(
        "outcomes:    {accepted} accepted, {} duplicate, {} rejected",
        c.duplicates.load(Ordering::Relaxed),
        c.rejected.load(Ordering::Relaxed)
    );
    println!(
        "latency ms:  p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}  (per request)",
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(1.0)
    );
    let statuses = statuses.lock().expect("statuses").clone();
    println!(
        "statuses:    {}",
        statuses
            .iter()
            .map(|(s, n)| if *s == 0 { format!("connection error: {n}") } else { format!("{s}: {n}") })
            .collect::<Vec<_>>()
            .join(", ")
    );
    // Every accepted event is in the stream; an event whose outcome was unknown may
    // be too (a client retries it unchanged, and dedup answers `duplicate`).
    let unknown = c.unknown.load(Ordering::Relaxed);
    if let (Some((target, keys)), Some(before)) = (&stream, before) {
        let after = xlen(target, keys).await?;
        let grown = after - before;
        let fits = (accepted..=accepted + unknown).contains(&grown);
        println!(
            "stream:      {} grew by {grown}; accepted {accepted}, outcome unknown {unknown}: {}",
            keys.join(" + "),
            if !fits {
                "MISMATCH".to_string()
            } else if unknown == 0 {
                "match".to_string()
            } else {
                format!("match ({} of the unknown were stored: a retry answers `duplicate`)", grown - accepted)
            }
        );
        if !fits {
            bail!(
                "the stream grew by {grown}, outside accepted {accepted} .. accepted + unknown {}",
                accepted + unknown
            );
        }
    }
    Ok(())
}

/// The length of the raw stream, summed over its shards.
async fn xlen(target: &palisade_streams::Target, keys: &[String]) -> anyhow::Result<u64> {
    let mut conn = palisade_streams::RedisConn::connect(target, std::time::Duration::from_secs(2)).await?;
    let mut sum = 0;
    for key in keys {
        sum += redis::cmd("XLEN").arg(key).query_async::<u64>(&mut conn).await?;
    }
    Ok(sum)
}
