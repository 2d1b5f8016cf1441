//! The screening consumer of one stream shard (a process runs one per shard it
//! reads, `SCREENING_SHARDS`): reads the shard's `events:raw` in the `screening` group, screens
//! each batch, and writes every prediction to `events:reasoning_queue` (risk above
//! the threshold) or `events:low_risk`, with the XACK of the batch in the same
//! MULTI/EXEC — at-least-once, nothing acknowledged that was not routed. (The
//! shard's output streams share its hash tag, so the transaction is one slot.)
//!
//! - On start it re-reads its own pending entries (ID `0`), then new ones (`>`).
//! - Batches overlap: while one is screened (on a blocking thread) the one before
//!   it is routed and acknowledged and, in the same round trip, the next is read;
//!   one batch at most is in flight and one read ahead, and neither while
//!   re-reading its own pending entries or claiming idle ones.
//! - Every `CLAIM_INTERVAL_MS` it looks for entries other consumers left pending
//!   longer than `CLAIM_IDLE_MS` (a consumer that died mid-batch) and takes them
//!   over, `CLAIM_BATCH` at a time until none is left (screened in batches of
//!   `BATCH_SIZE`); an entry delivered `MAX_DELIVERIES` times goes to
//!   `events:dead_letter` with the reason instead. An entry that cannot be parsed
//!   goes there at once.
//! - A batch whose screening panics (counted in `palisade_panics_total`, and
//!   `/ready` turns `degraded`) is screened again one event at a time: the events
//!   that screen alone are routed, and an event that panics alone goes to the
//!   dead-letter stream with the panic's message — never retried forever.
//! - A degraded prediction (a rule plugin's part missing) is queued to be screened
//!   again once the plugin is back, or routed for review (`DEGRADED_EVENTS`;
//!   `rescreen`, whose round runs with each claim round).
//! - Each claim round also trims the shard's streams to `STREAM_RETENTION_SECONDS`
//!   (`streams::retention`: never an entry a group has not delivered or acknowledged).
//! - `NOGROUP` (Redis restarted without persistence) recreates the group.
//! - Shutdown finishes the batch in hand.
//! - Traces on: a span per batch (stages and routing as children) and a span per
//!   event, the child of the ingest request named by the entry's `traceparent`
//!   and linked to its batch, so one trace runs from the HTTP request to the route.

use super::Screener;
use palisade_core::Event;
use palisade_detect::predict::Prediction;
use palisade_streams::{RedisConn, SCREENING_GROUP, ShardKeys};
use redis::streams::{StreamId, StreamReadOptions, StreamReadReply};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

pub struct Consumer {
    pub conn: RedisConn,
    /// The shard it reads and routes to.
    pub keys: ShardKeys,
    pub name: String,
    pub screener: Arc<Screener>,
    pub batch_size: usize,
    pub max_deliveries: u64,
    pub claim_idle: Duration,
    /// How often idle entries are looked for.
    pub claim_interval: Duration,
    /// Most entries one XPENDING/XCLAIM round takes.
    pub claim_batch: usize,
    /// Age past which the shard's raw and output streams are trimmed (each claim
    /// round; never an entry a group still needs: `streams::retention`); `None`: kept.
    pub retention: Option<Duration>,
    /// What becomes of an event screened `degraded` (`rescreen`).
    pub degraded_events: crate::config::DegradedEvents,
}

/// A batch read from the stream: its entry ids, the events being screened (on a
/// blocking thread), and the entries that go to the dead-letter stream.
struct Batch {
    ids: Vec<String>,
    sources: Vec<String>,
    /// The screened entries' `event` fields (to screen again one by one after a panic).
    raws: Vec<String>,
    dead: Vec<Dead>,
    screening: tokio::task::JoinHandle<Vec<Prediction>>,
    /// The batch's span, and one per screened event (`Span::none()` with traces off).
    span: tracing::Span,
    event_spans: Vec<tracing::Span>,
}

/// What went into the dead-letter stream, and why.
struct Dead {
    id: String,
    reason: String,
    raw: String,
}

impl Consumer {
    /// Create the group if absent (from the start of the stream, so events ingested
    /// before screening first ran are screened too).
    pub async fn ensure_group(&mut self) -> redis::RedisResult<()> {
        let created: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.keys.raw)
            .arg(SCREENING_GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut self.conn)
            .await;
        match created {
            Err(e) if e.to_string().contains("BUSYGROUP") => Ok(()),
            other => other,
        }
    }

    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut cursor = "0"; // own pending first
        let mut last_claim = Instant::now();
        // The batch being screened while the one before it is routed and the next read.
        let mut in_flight: Option<Batch> = None;
        // New entries read while the batch before was routed: the next batch to start.
        let mut read_ahead: Option<Vec<StreamId>> = None;
        // Whether the group is known to exist: checked at start and after any error
        // (a Redis restarted without persistence has lost it: `NOGROUP`).
        let mut group_ready = false;
        tracing::info!(consumer = %self.name, stream = %self.keys.raw, "screening consumer started");
        while !*shutdown.borrow() {
            if !group_ready {
                if let Err(e) = self.ensure_group().await {
                    tracing::warn!(error = %e, "cannot reach Redis to create the consumer group");
                    tokio::select! { _ = tokio::time::sleep(Duration::from_millis(500)) => {}, _ = shutdown.changed() => {} }
                    continue;
                }
                group_ready = true;
            }
            let claim_due = last_claim.elapsed() >= self.claim_interval;
            // Re-reading our own pending entries (`0`), or looking for idle ones, would find
            // the batch in flight and the entries read ahead (they are pending too): route them first.
            if (cursor != ">" || claim_due)
                && let Err(e) = self.drain(in_flight.take(), read_ahead.take()).await
            {
                tracing::warn!(error = %e, "routing a batch failed; will retry it");
                (cursor, group_ready) = ("0", false);
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            if claim_due {
                last_claim = Instant::now();
                if let Err(e) = self.claim().await {
                    tracing::warn!(error = %e, "claiming idle entries failed");
                    group_ready = false;
                }
                if let Err(e) = self.rescreen().await {
                    tracing::warn!(error = %e, "screening queued degraded events again failed; retrying next round");
                }
                if let Some(keep) = self.retention {
                    let k = &self.keys;
                    let streams = [k.raw.as_str(), k.reasoning.as_str(), k.low_risk.as_str(), k.rescreen.as_str()];
                    if let Err(e) = palisade_streams::retention::trim(&mut self.conn, &streams, keep).await {
                        tracing::warn!(error = %e, "trimming the streams failed; retrying next round");
                    }
                }
            }
            let entries = match read_ahead.take() {
                Some(entries) => entries,
                // Wait for new entries only when no batch is in flight.
                None => match self.read(cursor, cursor == ">" && in_flight.is_none()).await {
                    Ok(entries) => entries,
                    Err(e) => {
                        group_ready = false;
                        if !e.to_string().contains("NOGROUP") {
                            tracing::warn!(error = %e, "XREADGROUP failed; retrying");
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                        continue;
                    }
                },
            };
            let next = if entries.is_empty() {
                cursor = ">";
                None
            } else {
                Some(self.start(entries))
            };
            if let Some(batch) = in_flight.take() {
                // Route the previous batch while this one is screened, and read the next
                // entries meanwhile (new ones: the read waits on Redis, not on the CPU).
                let (routed, ahead) = if cursor == ">" && next.is_some() {
                    let read = self.read(">", false);
                    let (routed, ahead) = tokio::join!(self.finish(batch), read);
                    (routed, ahead.ok())
                } else {
                    (self.finish(batch).await, None)
                };
                if let Err(e) = routed {
                    // Left pending, with the batch just started and any read ahead: re-read
                    // our own pending entries next.
                    tracing::warn!(error = %e, "routing a batch failed; will retry it");
                    if let Some(next) = next {
                        let _ = next.screening.await;
                    }
                    (cursor, group_ready) = ("0", false);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
                read_ahead = ahead;
            }
            in_flight = next;
        }
        if let Err(e) = self.drain(in_flight, read_ahead).await {
            tracing::warn!(error = %e, "routing the last batch failed; it stays pending for the next start");
        }
        tracing::info!(consumer = %self.name, "screening consumer stopped");
    }

    /// Up to `batch_size` entries from `cursor` (`0`: our own pending ones, `>`: new
    /// ones), waiting up to 500 ms for new ones when `block` (under the 1 s response
    /// timeout). Owns what it needs, so it can run beside `finish`.
    fn read(&self, cursor: &str, block: bool) -> impl Future<Output = redis::RedisResult<Vec<StreamId>>> + 'static {
        let mut conn = self.conn.clone();
        let (stream, cursor) = (self.keys.raw.clone(), cursor.to_string());
        let mut opts = StreamReadOptions::default().group(SCREENING_GROUP, &self.name).count(self.batch_size);
        if block {
            opts = opts.block(500);
        }
        async move {
            let reply: StreamReadReply =
                redis::AsyncCommands::xread_options(&mut conn, &[&stream], &[&cursor], &opts).await?;
            Ok(reply.keys.into_iter().flat_map(|k| k.ids).collect())
        }
    }

    /// Route the batch in flight, then screen and route the entries read ahead.
    async fn drain(&mut self, in_flight: Option<Batch>, read_ahead: Option<Vec<StreamId>>) -> redis::RedisResult<()> {
        if let Some(batch) = in_flight {
            self.finish(batch).await?;
        }
        match read_ahead {
            Some(entries) if !entries.is_empty() => self.process(entries).await,
            _ => Ok(()),
        }
    }

    /// Screen entries and route them, acknowledging in the same transaction.
    async fn process(&mut self, entries: Vec<StreamId>) -> redis::RedisResult<()> {
        let batch = self.start(entries);
        self.finish(batch).await
    }

    /// Parse entries and start screening them on a blocking thread.
    fn start(&self, entries: Vec<StreamId>) -> Batch {
        let mut ids = Vec::with_capacity(entries.len());
        let mut events = Vec::with_capacity(entries.len());
        let mut sources = Vec::with_capacity(entries.len());
        let mut raws = Vec::with_capacity(entries.len());
        let mut dead = Vec::new();
        let span = palisade_core::span!("screen.batch", events = entries.len(), consumer = %self.name);
        let mut event_spans = Vec::new();
        for entry in entries {
            let raw: Option<String> = entry.get("event");
            match raw.as_deref().map(serde_json::from_str::<Event>) {
                Some(Ok(event)) => {
                    if palisade_core::telemetry::traces::on() {
                        event_spans.push(event_span(&entry, &event, &span));
                    }
                    sources.push(entry.id.clone());
                    raws.push(raw.unwrap_or_default());
                    events.push(event);
                }
                Some(Err(e)) => dead.push(Dead {
                    id: entry.id.clone(),
                    reason: format!("unparseable event: {e}"),
                    raw: raw.unwrap_or_default(),
                }),
                None => dead.push(Dead {
                    id: entry.id.clone(),
                    reason: "entry has no `event` field".into(),
                    raw: String::new(),
                }),
            }
            ids.push(entry.id);
        }
        let screener = self.screener.clone();
        let in_batch = span.clone();
        let screening = tokio::task::spawn_blocking(move || in_batch.in_scope(|| screener.screen(events)));
        Batch { ids, sources, raws, dead, screening, span, event_spans }
    }

    /// After a batch's screening panicked: screen each event alone; an event that
    /// panics alone (or gets no prediction) becomes a dead letter with the reason.
    /// Every event ends routed or dead-lettered; if even this task fails, the batch
    /// stays pending (an error: retried).
    async fn screen_one_by_one(
        &self,
        sources: Vec<String>,
        raws: Vec<String>,
    ) -> redis::RedisResult<(Vec<Prediction>, Vec<String>, Vec<Dead>)> {
        let screener = self.screener.clone();
        let singles = tokio::task::spawn_blocking(move || {
            let mut screened = (Vec::new(), Vec::new(), Vec::new());
            for (source, raw) in sources.into_iter().zip(raws) {
                let one = serde_json::from_str::<Event>(&raw).map_err(|e| format!("unparseable event: {e}")).and_then(
                    |event| {
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| screener.screen(vec![event]))).map_err(
                            |payload| {
                                let message = screener.metrics.faults.panicked("consumer", payload.as_ref());
                                format!("screening panicked on this event: {message}")
                            },
                        )
                    },
                );
                match one.map(|mut p| p.pop()) {
                    Ok(Some(p)) => {
                        screened.0.push(p);
                        screened.1.push(source);
                    }
                    Ok(None) => {
                        screened.2.push(Dead { id: source, reason: "screening gave no prediction".into(), raw })
                    }
                    Err(reason) => screened.2.push(Dead { id: source, reason, raw }),
                }
            }
            screened
        });
        singles
            .await
            .map_err(|e| redis::RedisError::from((redis::ErrorKind::Client, "screening task failed", e.to_string())))
    }

    /// Wait for a batch's predictions and route them, acknowledging in the same transaction.
    async fn finish(&mut self, batch: Batch) -> redis::RedisResult<()> {
        let Batch { ids, sources, raws, mut dead, screening, span, event_spans } = batch;
        let (mut predictions, sources) = match screening.await {
            Ok(predictions) => (predictions, sources),
            Err(e) => {
                let message = self.screener.metrics.faults.join_failed("consumer", e);
                tracing::error!(panic = %message, events = sources.len(), "screening a batch panicked; screening its events one by one");
                let (predictions, screened, poisoned) = self.screen_one_by_one(sources, raws).await?;
                dead.extend(poisoned);
                (predictions, screened)
            }
        };
        let mut pipe = redis::pipe();
        pipe.atomic();
        self.on_degraded(&mut pipe, &mut predictions, &sources);
        for (p, source) in predictions.iter().zip(&sources) {
            route(&mut pipe, &self.keys, p, source);
        }
        for d in &dead {
            pipe.xadd(
                &self.keys.dead_letter,
                "*",
                &[("source_id", d.id.as_str()), ("reason", &d.reason), ("event", &d.raw)],
            )
            .ignore();
        }
        pipe.xack(&self.keys.raw, SCREENING_GROUP, &ids).ignore();
        let route = palisade_core::span!(parent: &span, "route", otel.kind = "client", events = ids.len());
        tracing::Instrument::instrument(pipe.query_async::<()>(&mut self.conn), route).await?;
        self.screener.metrics.routed(&predictions, dead.len());
        self.count_degraded(&predictions);
        for (event_span, p) in event_spans.iter().zip(&predictions) {
            event_span.record("category", p.category.as_str());
            event_span.record("destination", if p.high_risk { "reasoning_queue" } else { "low_risk" });
        }
        Ok(())
    }

    /// Take over entries other consumers left pending too long, round after round
    /// until none is left; dead-letter the ones delivered `max_deliveries` times.
    async fn claim(&mut self) -> redis::RedisResult<()> {
        while self.claim_round().await? == self.claim_batch {}
        Ok(())
    }

    /// One round of [`Consumer::claim`]: how many idle entries it found.
    async fn claim_round(&mut self) -> redis::RedisResult<usize> {
        let idle_ms = self.claim_idle.as_millis() as u64;
        // XPENDING key group IDLE ms - + count → [[id, consumer, idle, deliveries], …]
        let pending: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
            .arg(&self.keys.raw)
            .arg(SCREENING_GROUP)
            .arg("IDLE")
            .arg(idle_ms)
            .arg("-")
            .arg("+")
            .arg(self.claim_batch)
            .query_async(&mut self.conn)
            .await?;
        let found = pending.len();
        if pending.is_empty() {
            return Ok(0);
        }
        let (exhausted, retry): (Vec<_>, Vec<_>) = pending.into_iter().partition(|p| p.3 >= self.max_deliveries);
        if !exhausted.is_empty() {
            // Claim them first so no other consumer races us, then dead-letter + ack atomically.
            let claimed = self.xclaim(&exhausted, idle_ms).await?;
            let mut pipe = redis::pipe();
            pipe.atomic();
            for entry in &claimed.0 {
                let deliveries = exhausted.iter().find(|p| p.0 == entry.id).map_or(0, |p| p.3);
                let raw: String = entry.get("event").unwrap_or_default();
                let reason = format!("not screened after {deliveries} deliveries");
                pipe.xadd(
                    &self.keys.dead_letter,
                    "*",
                    &[("source_id", entry.id.as_str()), ("reason", &reason), ("event", &raw)],
                )
                .ignore();
                tracing::error!(id = %entry.id, deliveries, "entry moved to the dead-letter stream");
            }
            let claimed_ids: Vec<&str> = claimed.0.iter().map(|e| e.id.as_str()).collect();
            if !claimed_ids.is_empty() {
                pipe.xack(&self.keys.raw, SCREENING_GROUP, &claimed_ids).ignore();
                pipe.query_async::<()>(&mut self.conn).await?;
                self.screener.metrics.dead_lettered(claimed_ids.len());
            }
        }
        if !retry.is_empty() {
            let mut claimed = self.xclaim(&retry, idle_ms).await?.0;
            if !claimed.is_empty() {
                tracing::warn!(count = claimed.len(), "took over entries left pending by another consumer");
            }
            while !claimed.is_empty() {
                let rest = claimed.split_off(claimed.len().min(self.batch_size));
                self.process(std::mem::replace(&mut claimed, rest)).await?;
            }
        }
        Ok(found)
    }
}

impl Consumer {
    /// Take these pending entries (still idle for `idle_ms`) over to this consumer.
    async fn xclaim(
        &mut self,
        pending: &[(String, String, u64, u64)],
        idle_ms: u64,
    ) -> redis::RedisResult<StreamClaim> {
        let ids: Vec<&str> = pending.iter().map(|p| p.0.as_str()).collect();
        redis::cmd("XCLAIM")
            .arg(&self.keys.raw)
            .arg(SCREENING_GROUP)
            .arg(&self.name)
            .arg(idle_ms)
            .arg(&ids)
            .query_async(&mut self.conn)
            .await
    }
}

/// Add `p`'s route to `pipe`: `events:reasoning_queue` when high risk, else `events:low_risk`.
pub(super) fn route(pipe: &mut redis::Pipeline, keys: &ShardKeys, p: &Prediction, source: &str) {
    let stream = if p.high_risk { &keys.reasoning } else { &keys.low_risk };
    let json = serde_json::to_string(p).expect("predictions serialise");
    pipe.xadd(stream, "*", &[("event_id", p.event.event_id.as_str()), ("source_id", source), ("prediction", &json)])
        .ignore();
}

/// An event's screening span: the child of its ingest request (the entry's
/// `traceparent`), linked to the batch it is screened in; ends when dropped
/// (after routing).
fn event_span(entry: &StreamId, event: &Event, batch: &tracing::Span) -> tracing::Span {
    use tracing::field::Empty;
    let span = tracing::info_span!(parent: None, "screen.event", otel.kind = "consumer", event_id = %event.event_id,
        stream_id = %entry.id, category = Empty, destination = Empty);
    if let Some(parent) = entry.get::<String>("traceparent") {
        palisade_core::telemetry::traces::set_parent(&span, &parent);
    }
    palisade_core::telemetry::traces::link(&span, batch);
    span
}

/// The entries XCLAIM returns.
struct StreamClaim(Vec<StreamId>);

impl redis::FromRedisValue for StreamClaim {
    fn from_redis_value(v: redis::Value) -> Result<Self, redis::ParsingError> {
        let reply: StreamReadReply = redis::from_redis_value(redis::Value::Array(vec![redis::Value::Array(vec![
            redis::Value::BulkString(b"claimed".to_vec()),
            v,
        ])]))?;
        Ok(StreamClaim(reply.keys.into_iter().flat_map(|k| k.ids).collect()))
    }
}
