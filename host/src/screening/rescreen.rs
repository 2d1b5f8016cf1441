//! Events screened `degraded` — a heuristic plugin quarantined, failed to load, or
//! faulted on their batch, so their score lacks its part — are never left at that
//! verdict unseen (`DEGRADED_EVENTS`):
//! - `rescreen` (the default): the consumer routes the verdict as usual and, in the
//!   same transaction, queues the event in its shard's `events:rescreen` with the
//!   plugins it missed. Each claim round, one consumer of the shard at a time (a
//!   lock key) screens again the queued events none of whose missing plugins is
//!   still out, and routes the new verdict flagged `rescreened`: for the same
//!   `event_id`, it supersedes the first. An event that comes back degraded is
//!   queued again — alone when a plugin faulted on its batch, since the event may
//!   be what makes it fault — and after `MAX_DELIVERIES` screenings its last
//!   verdict is routed as under `review`. A plugin an operator disables is no
//!   longer missed. The queue is trimmed at `STREAM_RETENTION_SECONDS`.
//! - `review`: the verdict goes to `events:reasoning_queue` whatever its risk,
//!   flagged `review`.
//!
//! The synchronous screen routes answer their caller, `degraded` and all; this
//! is about the stream. Counted in `palisade_screening_degraded_events_total`.
//! Owns the queue's entries and the round; routing itself is the consumer's.

use super::consumer::{Consumer, route};
use crate::config::DegradedEvents;
use palisade_core::Event;
use palisade_detect::predict::Prediction;
use palisade_plugins::PluginKind;
use redis::streams::{StreamId, StreamRangeReply};
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// An event waiting in `events:rescreen`.
#[derive(Debug)]
pub(super) struct Waiting {
    /// Its raw entry's ID (`source_id` on every route of it).
    source: String,
    event: Event,
    /// The plugins its last verdict lacked.
    missing: Vec<String>,
    /// Times it has been screened.
    screenings: u64,
    /// Screen it alone: a plugin faulted on the batch it was in.
    alone: bool,
}

impl Waiting {
    /// `p`, screened `screenings` times, to be screened again.
    pub(super) fn of(p: &Prediction, source: &str, screenings: u64) -> Waiting {
        Waiting {
            source: source.to_string(),
            event: p.event.clone(),
            missing: p.degraded.clone(),
            screenings,
            alone: p.flags.iter().any(|f| f.starts_with("plugin_fault:")),
        }
    }

    fn from_entry(entry: &StreamId) -> Result<Waiting, String> {
        let field = |name: &str| entry.get::<String>(name).ok_or_else(|| format!("no `{name}` field"));
        let event = serde_json::from_str(&field("event")?).map_err(|e| format!("unparseable event: {e}"))?;
        Ok(Waiting {
            source: field("source_id")?,
            event,
            missing: field("missing")?.split(',').filter(|m| !m.is_empty()).map(String::from).collect(),
            screenings: field("screenings")?.parse().map_err(|e| format!("screenings: {e}"))?,
            alone: field("alone")? == "1",
        })
    }

    /// Add the entry that queues it to `pipe`.
    pub(super) fn enqueue(&self, pipe: &mut redis::Pipeline, queue: &str) {
        let event = serde_json::to_string(&self.event).expect("events serialise");
        pipe.xadd(
            queue,
            "*",
            &[
                ("source_id", self.source.as_str()),
                ("event", &event),
                ("missing", &self.missing.join(",")),
                ("screenings", &self.screenings.to_string()),
                ("alone", if self.alone { "1" } else { "0" }),
            ],
        )
        .ignore();
    }
}

/// Route `p` high whatever its risk, for a person to look at.
pub(super) fn for_review(p: &mut Prediction) {
    p.high_risk = true;
    p.flags.push("review".into());
}

/// Releases the round's lock only if this consumer still holds it (hashed once).
static RELEASE: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(r"if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0")
});

impl Consumer {
    /// Screen again the queued events whose missing plugins are back, a batch at a
    /// time, for up to half a claim interval. One consumer of the shard at a time.
    pub(super) async fn rescreen(&mut self) -> redis::RedisResult<()> {
        let queue = self.keys.rescreen.clone();
        if redis::AsyncCommands::xlen::<_, u64>(&mut self.conn, &queue).await? == 0 {
            return Ok(());
        }
        let lock = format!("{queue}:lock");
        let held: Option<String> = redis::cmd("SET")
            .arg(&lock)
            .arg(&self.name)
            .arg("NX")
            .arg("PX")
            .arg(self.claim_idle.as_millis() as u64)
            .query_async(&mut self.conn)
            .await?;
        if held.is_none() {
            return Ok(());
        }
        let until = Instant::now() + (self.claim_interval / 2).max(Duration::from_millis(200));
        let rounds = async {
            while self.rescreen_batch(&queue).await? && Instant::now() < until {}
            Ok(())
        }
        .await;
        let released = RELEASE.key(&lock).arg(&self.name).invoke_async::<u64>(&mut self.conn).await;
        rounds.and(released.map(drop))
    }

    /// One batch of the queue; whether there was one.
    async fn rescreen_batch(&mut self, queue: &str) -> redis::RedisResult<bool> {
        let reply: StreamRangeReply =
            redis::AsyncCommands::xrange_count(&mut self.conn, queue, "-", "+", self.claim_batch).await?;
        let plugins = self.screener.plugins.clone();
        // The heuristic plugins out now (quarantined, failed to load).
        let out_now = move || -> HashSet<String> { plugins.degraded(PluginKind::Heuristic).into_iter().collect() };
        let back = |w: &Waiting, out: &HashSet<String>| w.missing.iter().all(|m| !out.contains(m));
        let out = out_now();
        let (mut taken, mut ready) = (Vec::new(), Vec::new());
        for entry in &reply.ids {
            match Waiting::from_entry(entry) {
                Ok(w) if !back(&w, &out) => continue,
                Ok(w) => ready.push((entry.id.clone(), w)),
                // Its verdict was routed when it was queued: nothing is lost by dropping it.
                Err(e) => {
                    tracing::warn!(id = %entry.id, error = %e, "dropping an unreadable entry of the rescreen queue");
                    taken.push(entry.id.clone());
                }
            }
            if ready.len() == self.batch_size {
                break;
            }
        }
        if taken.is_empty() && ready.is_empty() {
            return Ok(false);
        }
        let screener = self.screener.clone();
        let screened = tokio::task::spawn_blocking(move || {
            // Together first; then one at a time those that must be screened alone,
            // each only while its plugins are still back (one of them may have just
            // faulted again): the others wait for the next round.
            let (alone, together): (Vec<_>, Vec<_>) = ready.into_iter().partition(|(_, w)| w.alone);
            let mut done = screen_caught(&screener, together);
            for one in alone.into_iter().filter(|(_, w)| back(w, &out_now())) {
                done.extend(screen_caught(&screener, vec![one]));
            }
            done
        })
        .await
        .map_err(|e| redis::RedisError::from((redis::ErrorKind::Client, "rescreening task failed", e.to_string())))?;

        let mut pipe = redis::pipe();
        pipe.atomic();
        let mut routed = Vec::new();
        let mut outcomes = std::collections::BTreeMap::<&str, u64>::new();
        for (id, mut w, prediction) in screened {
            taken.push(id);
            w.screenings += 1;
            let again = w.screenings < self.max_deliveries;
            let outcome = match prediction {
                Some(p) if !p.degraded.is_empty() && again => {
                    Waiting::of(&p, &w.source, w.screenings).enqueue(&mut pipe, queue);
                    "requeued"
                }
                Some(mut p) => {
                    p.flags.push("rescreened".into());
                    let outcome = if p.degraded.is_empty() {
                        "rescreened"
                    } else {
                        for_review(&mut p);
                        "review"
                    };
                    route(&mut pipe, &self.keys, &p, &w.source);
                    routed.push(p);
                    outcome
                }
                None if again => {
                    w.alone = true;
                    w.enqueue(&mut pipe, queue);
                    "requeued"
                }
                None => {
                    let event = serde_json::to_string(&w.event).expect("events serialise");
                    let reason = format!("screening panicked on this event {} times", w.screenings);
                    pipe.xadd(
                        &self.keys.dead_letter,
                        "*",
                        &[("source_id", w.source.as_str()), ("reason", &reason), ("event", &event)],
                    )
                    .ignore();
                    "dead_letter"
                }
            };
            *outcomes.entry(outcome).or_default() += 1;
        }
        if taken.is_empty() {
            return Ok(false); // every one of them waits for its plugins again
        }
        pipe.xdel(queue, &taken).ignore();
        pipe.query_async::<()>(&mut self.conn).await?;
        self.screener.metrics.routed(&routed, outcomes.get("dead_letter").copied().unwrap_or(0) as usize);
        for (outcome, n) in outcomes {
            self.screener.metrics.degraded.with_label_values(&[outcome]).inc_by(n);
        }
        Ok(true)
    }

    /// What the routing transaction of a screened batch adds for its degraded
    /// predictions (`DEGRADED_EVENTS`), before they are routed.
    pub(super) fn on_degraded(&self, pipe: &mut redis::Pipeline, predictions: &mut [Prediction], sources: &[String]) {
        for (p, source) in predictions.iter_mut().zip(sources).filter(|(p, _)| !p.degraded.is_empty()) {
            match self.degraded_events {
                DegradedEvents::Rescreen => Waiting::of(p, source, 1).enqueue(pipe, &self.keys.rescreen),
                DegradedEvents::Review => for_review(p),
            }
        }
    }

    /// Count what `on_degraded` did, once its transaction went through.
    pub(super) fn count_degraded(&self, predictions: &[Prediction]) {
        let n = predictions.iter().filter(|p| !p.degraded.is_empty()).count() as u64;
        let outcome = match self.degraded_events {
            DegradedEvents::Rescreen => "queued",
            DegradedEvents::Review => "review",
        };
        self.screener.metrics.degraded.with_label_values(&[outcome]).inc_by(n);
    }
}

/// Screen `waiting` (queue entry IDs beside them) as one batch; `None` for each
/// if screening panicked (counted).
fn screen_caught(
    screener: &super::Screener,
    waiting: Vec<(String, Waiting)>,
) -> Vec<(String, Waiting, Option<Prediction>)> {
    if waiting.is_empty() {
        return Vec::new();
    }
    let events = waiting.iter().map(|(_, w)| w.event.clone()).collect();
    let predictions = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| screener.screen(events))) {
        Ok(predictions) if predictions.len() == waiting.len() => predictions.into_iter().map(Some).collect(),
        Ok(_) => vec![None; waiting.len()],
        Err(payload) => {
            let message = screener.metrics.faults.panicked("rescreen", payload.as_ref());
            tracing::error!(panic = %message, events = waiting.len(), "screening queued degraded events panicked");
            vec![None; waiting.len()]
        }
    };
    waiting.into_iter().zip(predictions).map(|((id, w), p)| (id, w, p)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(fields: &[(&str, &str)]) -> StreamId {
        let map =
            fields.iter().map(|(k, v)| (k.to_string(), redis::Value::BulkString(v.as_bytes().to_vec()))).collect();
        StreamId { id: "9-0".into(), map, ..Default::default() }
    }

    #[test]
    fn a_queue_entry_is_read_back_or_refused_with_the_field_it_lacks() {
        let event = serde_json::to_string(&Event::sample("hello there")).unwrap();
        let fields = [("source_id", "1-0"), ("event", &event), ("missing", "threats,spam-links"), ("screenings", "2")];
        let w = Waiting::from_entry(&entry(&[fields.as_slice(), &[("alone", "1")]].concat())).unwrap();
        assert_eq!(
            (w.source.as_str(), w.missing, w.screenings, w.alone),
            ("1-0", vec!["threats".into(), "spam-links".into()], 2, true)
        );
        assert_eq!(Waiting::from_entry(&entry(&fields)).err().as_deref(), Some("no `alone` field"));
        let garbled = [("event", "{"), ("source_id", "1-0")];
        assert!(Waiting::from_entry(&entry(&garbled)).unwrap_err().starts_with("unparseable event"));
    }
}
