//! Shadow candidates: rule plugin versions that score the same live batches as
//! the active ones and never affect routing. Two kinds: a candidate version of an
//! installed plugin in `PLUGIN_DIR/shadow/` (`palisade plugins install --shadow`),
//! and a plugin whose manifest says `mode = "shadow"` (compared as if it
//! enforced). Per candidate: events compared, agreement, flips by category pair,
//! risk deltas, a bounded sample of the events that flipped, and what comparing
//! cost. A candidate changes an event's verdict only where it changes the rule
//! stage's score or category, so only those events are decided again.
//! `GET /v1/admin/shadow` reports, `…/promote` moves a candidate into the plugin
//! directory (the old version stays for rollback), `…/discard` drops it.
//! Counts are this process's (each screening replica keeps its own).

use super::compare::{Comparison, Verdict};
use crate::core::Event;
use crate::core::audit::VersionRef;
use crate::plugins::rules::{self, PluginVerdict, RuleResult};
use crate::plugins::{Mode, PluginHost, PluginKind, install};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Flipped events kept per candidate.
const SAMPLE: usize = 50;

/// A candidate on one batch: plugin name, version, source, its verdict per event,
/// and the time its own plugin call took.
type Candidate = (String, VersionRef, &'static str, Vec<Option<PluginVerdict>>, Duration);

pub struct Shadows {
    /// The candidates of `PLUGIN_DIR/shadow/`.
    pub host: Arc<PluginHost>,
    /// The active plugins (for `mode = "shadow"` ones, and promotion).
    active: Arc<PluginHost>,
    tallies: Mutex<BTreeMap<String, Tally>>,
}

/// One candidate's figures since it was installed (or this process started).
#[derive(Debug, Clone, Serialize)]
pub struct Tally {
    pub plugin: String,
    pub candidate: VersionRef,
    /// `shadow_dir` (a candidate version in PLUGIN_DIR/shadow) or `manifest` (`mode = "shadow"`).
    pub source: &'static str,
    #[serde(flatten)]
    pub comparison: Comparison,
    pub agreement: f64,
    /// Time spent on this candidate (its plugin calls and the re-decisions), per event.
    pub cost_us_per_event: f64,
    #[serde(skip)]
    spent: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ShadowError {
    #[error("no shadow candidate `{0}` in the shadow directory")]
    NotFound(String),
    #[error("{0}")]
    Files(String),
}

impl Shadows {
    pub fn new(host: Arc<PluginHost>, active: Arc<PluginHost>) -> Self {
        Shadows { host, active, tallies: Mutex::default() }
    }

    /// Whether any candidate is loaded (else screening skips the comparison).
    pub fn any(&self) -> bool {
        !self.host.active(PluginKind::Heuristic).is_empty()
            || self.active.active(PluginKind::Heuristic).iter().any(|(_, v)| v.manifest.mode == Mode::Shadow)
    }

    /// Compare every candidate with what screening decided for this batch.
    /// `active[i]` is event `i`'s verdict; `decide(i, rules)` decides it again
    /// under other rule results (the same classifier and kNN evidence).
    pub fn observe(
        &self,
        events: &[Event],
        rule_results: &[RuleResult],
        active: &[Verdict],
        decide: impl Fn(usize, &RuleResult) -> Verdict + Sync,
    ) {
        let started = Instant::now();
        let mut candidates: Vec<Candidate> = Vec::new();
        for (plugin, version, verdicts) in rules::candidates(&self.host, events) {
            match verdicts {
                Ok(v) => candidates.push((plugin.name.clone(), version.reference(), "shadow_dir", v, Duration::ZERO)),
                Err(error) => tracing::warn!(plugin = %plugin.name, %error, "shadow candidate could not score a batch"),
            }
        }
        // The candidates' own plugin calls, shared out between them.
        let calls = started.elapsed() / candidates.len().max(1) as u32;
        candidates.iter_mut().for_each(|c| c.4 = calls);
        for (plugin, version) in self.active.active(PluginKind::Heuristic) {
            if version.manifest.mode == Mode::Shadow {
                let verdicts =
                    rule_results.iter().map(|r| r.verdicts.iter().find(|v| v.plugin == plugin.name).cloned()).collect();
                candidates.push((plugin.name.clone(), version.reference(), "manifest", verdicts, Duration::ZERO));
            }
        }
        if candidates.is_empty() {
            return;
        }
        let mut tallies = self.tallies.lock().expect("shadow lock");
        tallies.retain(|name, _| candidates.iter().any(|c| &c.0 == name));
        for (name, candidate, source, verdicts, calls) in candidates {
            let t0 = Instant::now();
            let decided: Vec<Verdict> = (0..events.len())
                .into_par_iter()
                .map(|i| {
                    let r = rules::substitute(&rule_results[i], &name, verdicts[i].as_ref());
                    let same = r.score == rule_results[i].score && r.category == rule_results[i].category;
                    if same { active[i] } else { decide(i, &r) }
                })
                .collect();
            let tally = tallies.entry(name.clone()).or_insert_with(|| Tally {
                plugin: name.clone(),
                candidate: candidate.clone(),
                source,
                comparison: Comparison::default(),
                agreement: 1.0,
                cost_us_per_event: 0.0,
                spent: Duration::ZERO,
            });
            if tally.candidate != candidate {
                // A new candidate under this name: its figures start again.
                *tally = Tally { candidate, comparison: Comparison::default(), spent: Duration::ZERO, ..tally.clone() };
            }
            for ((event, a), c) in events.iter().zip(active).zip(decided) {
                tally.comparison.add(&event.event_id, &event.event_id, *a, c, SAMPLE);
            }
            tally.spent += calls + t0.elapsed();
            tally.agreement = tally.comparison.agreement();
            tally.cost_us_per_event = tally.spent.as_secs_f64() * 1e6 / tally.comparison.compared.max(1) as f64;
        }
    }

    /// Every candidate's figures.
    pub fn report(&self) -> Vec<Tally> {
        self.tallies.lock().expect("shadow lock").values().cloned().collect()
    }

    /// One candidate's figures (`None` before it has seen a batch).
    pub fn tally(&self, name: &str) -> Option<Tally> {
        self.tallies.lock().expect("shadow lock").get(name).cloned()
    }

    fn files(&self, name: &str) -> Result<(PathBuf, PathBuf), ShadowError> {
        let (wasm, toml) = (self.host.dir().join(format!("{name}.wasm")), self.host.dir().join(format!("{name}.toml")));
        if !toml.is_file() || !wasm.is_file() {
            return Err(ShadowError::NotFound(name.into()));
        }
        Ok((wasm, toml))
    }

    /// Move the candidate into the active plugin directory (by rename, as an
    /// install does) and load it; the version it replaces stays for rollback.
    /// Returns its figures at the moment of promotion.
    pub fn promote(
        &self,
        name: &str,
        actor: &str,
    ) -> Result<(Option<Tally>, Vec<crate::plugins::ReloadOutcome>), ShadowError> {
        let (wasm, toml) = self.files(name)?;
        let io = |e: std::io::Error| ShadowError::Files(e.to_string());
        let (wasm_bytes, toml_bytes) = (std::fs::read(&wasm).map_err(io)?, std::fs::read(&toml).map_err(io)?);
        let dir = self.active.dir();
        let installed = install::write_atomically(&dir.join(format!("{name}.wasm")), &wasm_bytes)
            .and_then(|_| install::write_atomically(&dir.join(format!("{name}.toml")), &toml_bytes));
        installed.map_err(|e| ShadowError::Files(e.to_string()))?;
        let figures = self.forget(name, &wasm, &toml)?;
        let outcomes = self.active.reload_by(false, actor);
        Ok((figures, outcomes))
    }

    /// Remove the candidate's files and figures.
    pub fn discard(&self, name: &str) -> Result<Option<Tally>, ShadowError> {
        let (wasm, toml) = self.files(name)?;
        self.forget(name, &wasm, &toml)
    }

    fn forget(&self, name: &str, wasm: &PathBuf, toml: &PathBuf) -> Result<Option<Tally>, ShadowError> {
        for f in [toml, wasm] {
            std::fs::remove_file(f).map_err(|e| ShadowError::Files(format!("{}: {e}", f.display())))?;
        }
        self.host.reload(false);
        Ok(self.tallies.lock().expect("shadow lock").remove(name))
    }
}
