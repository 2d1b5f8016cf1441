//! A native test harness: build a plugin from settings and call it the way the host
//! does, with plain `cargo test` (no Wasm, no host).
//!
//! ```
//! use palisade_sdk::{Event, Heuristic, Settings, Verdict, testing::Harness};
//! struct Shout;
//! impl Heuristic for Shout {
//!     fn new(_: &Settings) -> Result<Self, String> { Ok(Shout) }
//!     fn score(&self, e: &Event) -> Verdict {
//!         Verdict { score: if e.content.ends_with('!') { 0.5 } else { 0.0 }, ..Verdict::default() }
//!     }
//! }
//! let h = Harness::<Shout>::heuristic(&[]).unwrap();
//! assert_eq!(h.score_text("hey!").score, 0.5);
//! ```

use crate::settings::{Level, take_native_log};
use crate::{Adapter, Event, Heuristic, Settings, Validator, Verdict, Violation};

/// A plugin built natively from settings.
pub struct Harness<P> {
    pub plugin: P,
}

impl<P> Harness<P> {
    /// The log lines the plugin wrote on this thread since the last call.
    pub fn logs(&self) -> Vec<(Level, String)> {
        take_native_log()
    }
}

/// Fix the clock [`crate::now_ms`] reads on this thread (`None`: the system clock
/// again), to test timestamp windows such as a webhook signature's age.
pub fn set_now_ms(ms: Option<u64>) {
    crate::settings::set_native_now_ms(ms);
}

/// Lend, on this thread, a label to an entity (what [`crate::lend::labels`] answers natively).
pub fn lend_label(entity: &str, label: &str, reason: &str) {
    let l = crate::lend::EntityLabel {
        entity: entity.into(),
        label: label.into(),
        source: "reviewer".into(),
        reason: reason.into(),
        expires_at_ms: None,
    };
    crate::lend::NATIVE.with(|n| n.borrow_mut().labels.entry(entity.into()).or_default().push(l));
}

/// Lend, on this thread, the classifier's scores of a text ([`crate::lend::classify`]).
pub fn lend_classify(text: &str, scores: crate::lend::CategoryScores) {
    crate::lend::NATIVE.with(|n| n.borrow_mut().classify.insert(text.into(), scores));
}

/// Lend, on this thread, the neighbours of a text ([`crate::lend::similar`]).
pub fn lend_similar(text: &str, neighbours: Vec<crate::lend::Neighbour>) {
    crate::lend::NATIVE.with(|n| n.borrow_mut().similar.insert(text.into(), neighbours));
}

/// Forget everything lent on this thread.
pub fn lend_nothing() {
    crate::lend::NATIVE.with(|n| *n.borrow_mut() = Default::default());
}

fn settings(pairs: &[(&str, &str)]) -> Settings {
    Settings::from_pairs(pairs.iter().copied())
}

#[cfg(feature = "manifest")]
impl<P> Harness<P> {
    /// Settings from a manifest's `[settings]`, e.g. `include_str!("../plugin.toml")`.
    pub fn manifest(manifest: &str) -> Settings {
        Settings::from_pairs(crate::manifest::settings(manifest).unwrap_or_else(|e| panic!("{e}")))
    }
}

impl<H: Heuristic> Harness<H> {
    /// Build a heuristic from its manifest's settings.
    #[cfg(feature = "manifest")]
    pub fn heuristic_from_manifest(manifest: &str) -> Self {
        Harness { plugin: H::new(&Self::manifest(manifest)).unwrap_or_else(|e| panic!("{e}")) }
    }

    /// Build a heuristic from `[settings]` pairs (lists newline- or comma-separated).
    pub fn heuristic(pairs: &[(&str, &str)]) -> Result<Self, String> {
        Ok(Harness { plugin: H::new(&settings(pairs))? })
    }
    pub fn score(&self, events: &[Event]) -> Vec<Verdict> {
        self.plugin.score_batch(events)
    }
    /// Score one message event with this content.
    pub fn score_text(&self, content: &str) -> Verdict {
        self.plugin.score_batch(&[Event::message(content)]).remove(0)
    }
}

impl<V: Validator> Harness<V> {
    /// Build a validator from its manifest's settings.
    #[cfg(feature = "manifest")]
    pub fn validator_from_manifest(manifest: &str) -> Self {
        Harness { plugin: V::new(&Self::manifest(manifest)).unwrap_or_else(|e| panic!("{e}")) }
    }

    pub fn validator(pairs: &[(&str, &str)]) -> Result<Self, String> {
        Ok(Harness { plugin: V::new(&settings(pairs))? })
    }
    pub fn validate(&self, events: &[Event]) -> Vec<Vec<Violation>> {
        self.plugin.validate_batch(events)
    }
}

impl<A: Adapter> Harness<A> {
    pub fn adapter(pairs: &[(&str, &str)]) -> Result<Self, String> {
        Ok(Harness { plugin: A::new(&settings(pairs))? })
    }
}
