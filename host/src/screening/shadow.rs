//! Shadow candidates: versions that score the same live batches as the active
//! ones and never affect routing. Three kinds: a candidate version of an
//! installed rule plugin in `PLUGIN_DIR/shadow/` (`palisade plugins install
//! --shadow`), a plugin whose manifest says `mode = "shadow"` (compared as if it
//! enforced), and a candidate classifier in `CLASSIFIER_DIR.shadow` (`palisade
//! train … --out var/classifier.shadow`). Per candidate: events compared,
//! agreement, flips by category pair, risk deltas, a bounded sample of the events
//! that flipped (also appended to the capped stream `events:shadow`), and what
//! comparing cost. A plugin candidate changes an event's verdict only where it
//! changes the rule stage's score or category, so only those events are decided
//! again; a classifier candidate decides every event again.
//! `GET /v1/admin/shadow` reports, `…/promote` makes a candidate active (the old
//! version stays for rollback), `…/discard` drops it. Counts are this process's
//! (each screening replica keeps its own; `events:shadow` holds all replicas').

use super::compare::{Comparison, Verdict};
use palisade_core::audit::VersionRef;
use palisade_core::{Event, now_ms};
use palisade_detect::classify::slot::{Slot, Swap, sibling};
use palisade_detect::classify::{Artifact, ArtifactError, Classifier};
use palisade_plugins::rules::{self, PluginVerdict, RuleResult};
use palisade_plugins::{Mode, PluginHost, PluginKind, install};
use palisade_streams::capped::{CappedStream, Fields};
use rayon::prelude::*;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

/// Flipped events kept per candidate in its figures.
const SAMPLE: usize = 50;
/// Flipped events appended to `events:shadow` per candidate and batch.
const STREAM_PER_BATCH: usize = 32;
/// Entries kept in `events:shadow` (approximately).
pub const STREAM_KEEP: usize = 10_000;
/// The tally key of the classifier candidate (no plugin name holds a `.`).
const CLASSIFIER_KEY: &str = ".classifier";

/// What a candidate says about a batch.
enum Says {
    /// A rule plugin's verdict per event.
    Rules(Vec<Option<PluginVerdict>>),
    /// A classifier that decides every event again.
    Classifier(Arc<Classifier>),
}

struct Candidate {
    key: String,
    name: String,
    kind: &'static str,
    source: &'static str,
    version: VersionRef,
    says: Says,
    /// Its own plugin calls on this batch.
    calls: Duration,
}

pub struct Shadows {
    /// The candidates of `PLUGIN_DIR/shadow/`.
    pub host: Arc<PluginHost>,
    /// The active plugins (for `mode = "shadow"` ones, and promotion).
    active: Arc<PluginHost>,
    /// The candidate classifier's folder, once screening uses a classifier.
    classifier: OnceLock<ClassifierCandidate>,
    tallies: Mutex<BTreeMap<String, Tally>>,
    /// `events:shadow`, once the service has Redis.
    stream: OnceLock<CappedStream>,
}

/// One candidate's figures since it was installed (or this process started).
#[derive(Debug, Clone, Serialize)]
pub struct Tally {
    /// The plugin's name, or `classifier`.
    pub plugin: String,
    /// `plugin` or `classifier`.
    pub kind: &'static str,
    pub candidate: VersionRef,
    /// `shadow_dir` (PLUGIN_DIR/shadow), `manifest` (`mode = "shadow"`) or
    /// `classifier_dir` (CLASSIFIER_DIR.shadow).
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
    #[error("no shadow candidate `{0}`")]
    NotFound(String),
    #[error("{0}")]
    Files(String),
}

impl Shadows {
    pub fn new(host: Arc<PluginHost>, active: Arc<PluginHost>) -> Self {
        Shadows { host, active, classifier: OnceLock::new(), tallies: Mutex::default(), stream: OnceLock::new() }
    }

    /// Compare a candidate classifier too (once per process: screening's classifier).
    pub fn with_classifier(&self, candidate: ClassifierCandidate) {
        let _ = self.classifier.set(candidate);
    }

    /// The candidate classifier's folder, when screening uses a classifier.
    pub fn classifier(&self) -> Option<&ClassifierCandidate> {
        self.classifier.get()
    }

    /// Append flipped events to `stream` (`events:shadow`) from now on.
    pub fn sample_into(&self, stream: CappedStream) {
        let _ = self.stream.set(stream);
    }

    /// Whether any candidate is loaded (else screening skips the comparison).
    pub fn any(&self) -> bool {
        !self.host.active(PluginKind::Heuristic).is_empty()
            || self.active.active(PluginKind::Heuristic).iter().any(|(_, v)| v.manifest.mode == Mode::Shadow)
            || self.classifier().is_some_and(|c| c.get().is_some())
    }

    /// This batch's candidates.
    fn candidates(&self, events: &[Event], rule_results: &[RuleResult]) -> Vec<Candidate> {
        let started = Instant::now();
        let mut out: Vec<Candidate> = Vec::new();
        for (plugin, version, verdicts) in rules::candidates(&self.host, events) {
            match verdicts {
                Ok(v) => out.push(Candidate {
                    key: plugin.name.clone(),
                    name: plugin.name.clone(),
                    kind: "plugin",
                    source: "shadow_dir",
                    version: version.reference(),
                    says: Says::Rules(v),
                    calls: Duration::ZERO,
                }),
                Err(error) => tracing::warn!(plugin = %plugin.name, %error, "shadow candidate could not score a batch"),
            }
        }
        // The candidates' own plugin calls, shared out between them.
        let calls = started.elapsed() / out.len().max(1) as u32;
        out.iter_mut().for_each(|c| c.calls = calls);
        for (plugin, version) in self.active.active(PluginKind::Heuristic) {
            if version.manifest.mode == Mode::Shadow {
                let verdicts =
                    rule_results.iter().map(|r| r.verdicts.iter().find(|v| v.plugin == plugin.name).cloned()).collect();
                out.push(Candidate {
                    key: plugin.name.clone(),
                    name: plugin.name.clone(),
                    kind: "plugin",
                    source: "manifest",
                    version: version.reference(),
                    says: Says::Rules(verdicts),
                    calls: Duration::ZERO,
                });
            }
        }
        if let Some(c) = self.classifier().and_then(|c| c.get()) {
            out.push(Candidate {
                key: CLASSIFIER_KEY.into(),
                name: "classifier".into(),
                kind: "classifier",
                source: "classifier_dir",
                version: version_of(&c),
                says: Says::Classifier(c),
                calls: Duration::ZERO,
            });
        }
        out
    }

    /// Compare every candidate with what screening decided for this batch.
    /// `active[i]` is event `i`'s verdict; `decide(i, rules, classifier)` decides
    /// it again under other rule results or another classifier (the same kNN
    /// evidence); `classifier` is the active one.
    pub fn observe(
        &self,
        events: &[Event],
        rule_results: &[RuleResult],
        active: &[Verdict],
        classifier: &Classifier,
        decide: impl Fn(usize, &RuleResult, &Classifier) -> Verdict + Sync,
    ) {
        let candidates = self.candidates(events, rule_results);
        if candidates.is_empty() {
            return;
        }
        let mut tallies = self.tallies.lock().expect("shadow lock");
        tallies.retain(|key, _| candidates.iter().any(|c| &c.key == key));
        for candidate in candidates {
            let t0 = Instant::now();
            let decided: Vec<Verdict> = match &candidate.says {
                Says::Rules(verdicts) => (0..events.len())
                    .into_par_iter()
                    .map(|i| {
                        let r = rules::substitute(&rule_results[i], &candidate.name, verdicts[i].as_ref());
                        let same = r.score == rule_results[i].score && r.category == rule_results[i].category;
                        if same { active[i] } else { decide(i, &r, classifier) }
                    })
                    .collect(),
                Says::Classifier(c) => {
                    (0..events.len()).into_par_iter().map(|i| decide(i, &rule_results[i], c)).collect()
                }
            };
            let tally = tallies.entry(candidate.key.clone()).or_insert_with(|| Tally {
                plugin: candidate.name.clone(),
                kind: candidate.kind,
                candidate: candidate.version.clone(),
                source: candidate.source,
                comparison: Comparison::default(),
                agreement: 1.0,
                cost_us_per_event: 0.0,
                spent: Duration::ZERO,
            });
            if tally.candidate != candidate.version {
                // A new candidate under this name: its figures start again.
                *tally = Tally {
                    candidate: candidate.version.clone(),
                    comparison: Comparison::default(),
                    spent: Duration::ZERO,
                    ..tally.clone()
                };
            }
            let mut streamed = 0;
            for ((event, a), c) in events.iter().zip(active).zip(decided) {
                tally.comparison.add(&event.event_id, &event.event_id, *a, c, SAMPLE);
                if a.category != c.category && streamed < STREAM_PER_BATCH {
                    streamed += 1;
                    self.append(&candidate, &event.event_id, *a, c);
                }
            }
            tally.spent += candidate.calls + t0.elapsed();
            tally.agreement = tally.comparison.agreement();
            tally.cost_us_per_event = tally.spent.as_secs_f64() * 1e6 / tally.comparison.compared.max(1) as f64;
        }
    }

    /// One flipped event into `events:shadow` (dropped when its queue is full).
    fn append(&self, candidate: &Candidate, event_id: &str, active: Verdict, decided: Verdict) {
        let Some(stream) = self.stream.get() else { return };
        let entry = json!({
            "shadow": candidate.name, "kind": candidate.kind, "source": candidate.source,
            "candidate_version": candidate.version, "event_id": event_id,
            "active": active, "candidate": decided, "at_ms": now_ms(),
        });
        let fields: Fields =
            vec![("shadow", candidate.name.clone()), ("event_id", event_id.to_string()), ("entry", entry.to_string())];
        stream.push(fields);
    }

    /// Every loaded candidate's figures. A batch in flight while a candidate
    /// was promoted or discarded may have put its figures back after `forget`:
    /// those of candidates no longer loaded are dropped here.
    pub fn report(&self) -> Vec<Tally> {
        let loaded = self.loaded();
        let mut tallies = self.tallies.lock().expect("shadow lock");
        tallies.retain(|key, _| loaded.contains(key));
        tallies.values().cloned().collect()
    }

    /// The keys of the candidates loaded now (the shadow directory's plugins,
    /// shadow-mode manifests, the candidate classifier).
    fn loaded(&self) -> Vec<String> {
        let mut keys: Vec<String> =
            self.host.active(PluginKind::Heuristic).iter().map(|(plugin, _)| plugin.name.clone()).collect();
        let shadow_mode = self.active.active(PluginKind::Heuristic);
        keys.extend(shadow_mode.iter().filter(|(_, v)| v.manifest.mode == Mode::Shadow).map(|(p, _)| p.name.clone()));
        if self.classifier().is_some_and(|c| c.get().is_some()) {
            keys.push(CLASSIFIER_KEY.into());
        }
        keys
    }

    /// Make the candidate the active version (`install::Candidate::promote`, as
    /// `palisade plugins promote` does) and load it; the version it replaces
    /// stays for rollback. Returns its figures at the moment of promotion.
    pub fn promote(
        &self,
        name: &str,
        actor: &str,
    ) -> Result<(Option<Tally>, Vec<palisade_plugins::ReloadOutcome>), ShadowError> {
        let candidate = self.candidate(name)?;
        candidate.promote(self.active.dir()).map_err(|e| ShadowError::Files(e.to_string()))?;
        let figures = self.forget(name);
        let outcomes = self.active.reload_by(false, actor);
        Ok((figures, outcomes))
    }

    /// Remove the candidate's files and figures.
    pub fn discard(&self, name: &str) -> Result<Option<Tally>, ShadowError> {
        self.candidate(name)?.remove().map_err(|e| ShadowError::Files(e.to_string()))?;
        Ok(self.forget(name))
    }

    /// The candidate plugin's files, read (`NotFound` when there is none).
    pub fn candidate(&self, name: &str) -> Result<install::Candidate, ShadowError> {
        match install::Candidate::read(self.active.dir(), name) {
            Ok(Some(c)) => Ok(c),
            Ok(None) => Err(ShadowError::NotFound(name.into())),
            Err(e) => Err(ShadowError::Files(e.to_string())),
        }
    }

    /// Its files gone: reload the shadow host, drop its figures (returned).
    fn forget(&self, name: &str) -> Option<Tally> {
        self.host.reload(false);
        self.tallies.lock().expect("shadow lock").remove(name)
    }

    /// The candidate classifier, loaded (`NotFound` when there is none).
    pub fn classifier_candidate(&self) -> Result<(&ClassifierCandidate, Arc<Classifier>), ShadowError> {
        let not_found = || ShadowError::NotFound("classifier".into());
        let holder = self.classifier().ok_or_else(not_found)?;
        Ok((holder, holder.get().ok_or_else(not_found)?))
    }

    /// The candidate classifier's folder becomes `slot`'s (`CLASSIFIER_DIR`), the
    /// one it replaces moves to `CLASSIFIER_DIR.previous` (and stays loaded for
    /// `POST /v1/admin/classifier/rollback`). Returns its figures and the swap.
    pub fn promote_classifier(&self, slot: &Slot) -> Result<(Option<Tally>, Swap), ShadowError> {
        let (holder, _) = self.classifier_candidate()?;
        let (active, previous) = (slot.dir().to_path_buf(), sibling(slot.dir(), "previous"));
        let files = |what: &str, e: std::io::Error| ShadowError::Files(format!("{what}: {e}"));
        if previous.exists() {
            std::fs::remove_dir_all(&previous).map_err(|e| files(&previous.display().to_string(), e))?;
        }
        std::fs::rename(&active, &previous).map_err(|e| files("moving the active classifier aside", e))?;
        if let Err(e) = std::fs::rename(&holder.dir, &active) {
            let _ = std::fs::rename(&previous, &active);
            return Err(files("moving the candidate in", e));
        }
        let swap = match slot.reload() {
            Ok(swap) => swap,
            Err(e) => {
                // Put both back: the active one keeps serving, the candidate stays a candidate.
                let _ = std::fs::rename(&active, &holder.dir);
                let _ = std::fs::rename(&previous, &active);
                return Err(ShadowError::Files(format!("the candidate was refused: {e}")));
            }
        };
        holder.clear();
        Ok((self.tallies.lock().expect("shadow lock").remove(CLASSIFIER_KEY), swap))
    }

    /// Remove the candidate classifier's folder and figures.
    pub fn discard_classifier(&self) -> Result<Option<Tally>, ShadowError> {
        let (holder, _) = self.classifier_candidate()?;
        std::fs::remove_dir_all(&holder.dir)
            .map_err(|e| ShadowError::Files(format!("{}: {e}", holder.dir.display())))?;
        holder.clear();
        Ok(self.tallies.lock().expect("shadow lock").remove(CLASSIFIER_KEY))
    }
}

/// A classifier's version for the audit trail and the figures.
pub fn version_of(c: &Classifier) -> VersionRef {
    VersionRef { version: c.meta.version.clone(), sha256: c.meta.weights_sha256.clone() }
}

/// The candidate classifier's folder (`CLASSIFIER_DIR.shadow`): loaded when it
/// holds an artifact, refused (and remembered as `last_error`) when that artifact
/// is corrupt or trained for another embedding model.
pub struct ClassifierCandidate {
    pub dir: PathBuf,
    embedding_model: Option<String>,
    current: RwLock<Option<Arc<Classifier>>>,
    last_error: Mutex<Option<String>>,
}

impl ClassifierCandidate {
    /// The candidate folder beside `active_dir`, loaded if it is there.
    pub fn beside(active_dir: &Path, embedding_model: Option<String>) -> Self {
        let c = ClassifierCandidate {
            dir: sibling(active_dir, "shadow"),
            embedding_model,
            current: RwLock::new(None),
            last_error: Mutex::new(None),
        };
        if let Err(e) = c.reload() {
            tracing::error!(error = %e, dir = %c.dir.display(), "the candidate classifier was refused");
        }
        c
    }

    pub fn get(&self) -> Option<Arc<Classifier>> {
        self.current.read().expect("candidate lock").clone()
    }

    fn clear(&self) {
        *self.current.write().expect("candidate lock") = None;
        *self.last_error.lock().expect("error lock") = None;
    }

    /// Read the folder again: its version, or `None` when there is no folder.
    pub fn reload(&self) -> Result<Option<String>, ArtifactError> {
        if !self.dir.exists() {
            self.clear();
            return Ok(None);
        }
        let loaded = Artifact::load(&self.dir, self.embedding_model.as_deref()).inspect_err(|e| {
            *self.last_error.lock().expect("error lock") = Some(e.to_string());
        })?;
        let version = loaded.meta.version.clone();
        *self.current.write().expect("candidate lock") = Some(Arc::new(Classifier::new(loaded)));
        *self.last_error.lock().expect("error lock") = None;
        Ok(Some(version))
    }

    /// What `GET /v1/admin/shadow` shows of it.
    pub fn status(&self) -> Value {
        let c = self.get();
        json!({
            "dir": self.dir,
            "version": c.as_ref().map(|c| &c.meta.version),
            "created": c.as_ref().map(|c| &c.meta.created),
            "last_error": *self.last_error.lock().expect("error lock"),
        })
    }
}
