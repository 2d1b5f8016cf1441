//! Copy-paste campaigns: one message posted by many accounts. Dedup keys on
//! content + author + platform, so each account's copy is an event of its own and
//! is screened; this counts, per platform and normalised text (lower case, words
//! only; texts of fewer than [`MIN_CHARS`] characters are not counted), the
//! distinct accounts that posted it within `CAMPAIGN_WINDOW_SECONDS` of the first
//! copy (a HyperLogLog in Redis, `[prefix]campaign:<sha256>`, expiring with the
//! window). A prediction gets `campaign_accounts` (from 2) and, from
//! `CAMPAIGN_MIN_ACCOUNTS`, the flag `campaign`: a signal for reviewers, not a
//! change to the risk. One pipelined round trip per batch (synchronous: it runs on
//! the screening thread). A Redis error leaves the counts out and never fails
//! screening (logged at most every 10 s).

use palisade_core::Event;
use palisade_detect::predict::Prediction;
use palisade_streams::Target;
use palisade_streams::conn::LazySync;
use sha2::{Digest, Sha256};
use std::time::Duration;

/// Shortest normalised text that is counted ("ok", "lol" and "thanks!" from many
/// accounts are not a campaign).
pub const MIN_CHARS: usize = 20;

pub struct Campaigns {
    conn: LazySync,
    /// `[prefix]campaign:`
    key_prefix: String,
    window_ms: u64,
    min_accounts: u64,
}

impl Campaigns {
    pub fn new(target: Target, prefix: &str, window: Duration, min_accounts: u64) -> Self {
        Campaigns {
            conn: LazySync::new(target, Duration::from_millis(500)),
            key_prefix: format!("{prefix}campaign:"),
            window_ms: window.as_millis() as u64,
            min_accounts,
        }
    }

    /// Count each event's account against its text and mark the predictions.
    pub fn mark(&self, predictions: &mut [Prediction]) {
        let keyed: Vec<(usize, String)> =
            predictions.iter().enumerate().filter_map(|(i, p)| Some((i, self.key(&p.event)?))).collect();
        if keyed.is_empty() {
            return;
        }
        let cmds = || {
            let mut cmds = Vec::with_capacity(keyed.len() * 3);
            for (i, key) in &keyed {
                let event = &predictions[*i].event;
                let account = event.author_id.as_deref().unwrap_or(&event.user_id);
                cmds.push(redis::cmd("PFADD").arg(key).arg(account).to_owned());
                cmds.push(redis::cmd("PEXPIRE").arg(key).arg(self.window_ms).arg("NX").to_owned());
                cmds.push(redis::cmd("PFCOUNT").arg(key).to_owned());
            }
            cmds
        };
        let counts = match self.conn.with_conn(|c| c.pipeline::<Vec<redis::Value>>(cmds())) {
            Ok(values) => values,
            Err(e) => {
                static FAILURES: std::sync::LazyLock<palisade_core::telemetry::Sampled> =
                    std::sync::LazyLock::new(|| palisade_core::telemetry::Sampled::new(Duration::from_secs(10)));
                FAILURES.log(
                    |skipped| tracing::warn!(error = %e, failures_not_logged = skipped, "campaign counts unavailable"),
                );
                return;
            }
        };
        for ((i, _), replies) in keyed.iter().zip(counts.chunks(3)) {
            let accounts: u64 = replies.get(2).and_then(|v| redis::from_redis_value(v.clone()).ok()).unwrap_or(0);
            let p = &mut predictions[*i];
            if accounts >= 2 {
                p.campaign_accounts = Some(accounts);
            }
            if accounts >= self.min_accounts {
                p.flags.push("campaign".into());
            }
        }
    }

    fn key(&self, event: &Event) -> Option<String> {
        let text = normalised(&event.content);
        (text.chars().count() >= MIN_CHARS).then(|| {
            let digest = Sha256::new().chain_update(&event.platform).chain_update([0]).chain_update(&text).finalize();
            format!("{}{}", self.key_prefix, hex::encode(digest))
        })
    }
}

/// Lower case, words only, one space between them: copies that differ in case,
/// punctuation or spacing are one text.
fn normalised(text: &str) -> String {
    let words: Vec<String> =
        text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect();
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_that_differ_in_case_punctuation_or_spacing_are_one_text() {
        assert_eq!(normalised("  Buy CHEAP followers -- at example.com!! "), "buy cheap followers at example com");
        let c = Campaigns::new(Target::Single("redis://127.0.0.1:1".into()), "p:", Duration::from_secs(60), 3);
        let event = |content: &str, platform: &str| Event { platform: platform.into(), ..Event::sample(content) };
        let one = c.key(&event("Buy cheap followers at example.com", "web"));
        assert!(one.as_deref().is_some_and(|k| k.starts_with("p:campaign:")));
        assert_eq!(one, c.key(&event("buy CHEAP followers -- at example.com!!", "web")));
        assert_ne!(one, c.key(&event("Buy cheap followers at example.com", "discord")), "per platform");
        assert_eq!(c.key(&event("lol, ok!", "web")), None, "too short to count");
    }
}
