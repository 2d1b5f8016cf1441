//! What the host lends plugins beyond log, config and clock (WIT 0.1.1): the
//! nearest labelled examples of a text (`similar`), the trained classifier's
//! category scores (`classify`) and the labels an entity holds (`labels`). The
//! services plug their parts in — screening its classifier and example bank
//! ([`Semantic`]), every service the entity-label store ([`LabelSource`]) — and
//! the plugin runtime answers a guest's call from them; a part the process does
//! not have answers empty lists, and a part that fails (the label store times
//! out, the embedding fails) answers empty lists and an error, which the runtime
//! records so that the verdict is marked `degraded`. Every function takes a list
//! (one host call per batch, not per event). This module knows nothing of how
//! the parts work.

use std::sync::{Arc, RwLock};

/// A labelled example near a text.
#[derive(Debug, Clone, PartialEq)]
pub struct LentNeighbour {
    pub id: String,
    pub label: String,
    pub similarity: f32,
}

/// One label an entity holds (as the store has it).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LentLabel {
    pub entity: String,
    pub label: String,
    pub source: String,
    pub reason: String,
    pub expires_at_ms: Option<u64>,
}

/// The classifier and the example bank, as plugins see them.
pub trait Semantic: Send + Sync {
    /// Up to `k` nearest labelled examples per text (`Err`: why none could be found).
    fn similar(&self, texts: &[String], k: usize) -> Result<Vec<Vec<LentNeighbour>>, String>;
    /// Per text, a probability per category (in `classify::CATEGORIES` order);
    /// `None` when no classifier is loaded.
    fn classify(&self, texts: &[String]) -> Option<Vec<Vec<f32>>>;
}

/// Where entity labels are read from.
pub trait LabelSource: Send + Sync {
    /// The unexpired labels of each entity (`Err`: the store could not be read).
    fn labels(&self, entities: &[String]) -> Result<Vec<Vec<LentLabel>>, String>;
}

/// The parts a process lends its plugins (shared by every instance; set by the
/// services as they start, replaceable).
#[derive(Default)]
pub struct Lending {
    semantic: RwLock<Option<Arc<dyn Semantic>>>,
    labels: RwLock<Option<Arc<dyn LabelSource>>>,
}

impl Lending {
    pub fn set_semantic(&self, s: Arc<dyn Semantic>) {
        *self.semantic.write().expect("lending lock") = Some(s);
    }

    pub fn set_labels(&self, l: Arc<dyn LabelSource>) {
        *self.labels.write().expect("lending lock") = Some(l);
    }

    pub fn similar(&self, texts: &[String], k: usize) -> Result<Vec<Vec<LentNeighbour>>, String> {
        let semantic = self.semantic.read().expect("lending lock").clone();
        match semantic {
            Some(s) if k > 0 => s.similar(texts, k.min(MAX_K)),
            _ => Ok(vec![Vec::new(); texts.len()]),
        }
    }

    pub fn classify(&self, texts: &[String]) -> Option<Vec<Vec<f32>>> {
        let semantic = self.semantic.read().expect("lending lock").clone();
        semantic.and_then(|s| s.classify(texts))
    }

    pub fn labels(&self, entities: &[String]) -> Result<Vec<Vec<LentLabel>>, String> {
        let source = self.labels.read().expect("lending lock").clone();
        match source {
            Some(s) => s.labels(entities),
            None => Ok(vec![Vec::new(); entities.len()]),
        }
    }
}

/// The entities an event is about, as labels name them: `user:<user_id>`,
/// `user:<author_id>` (when another), `channel:<channel_id>`.
pub fn entities_of(e: &palisade_core::Event) -> Vec<String> {
    let mut out = vec![format!("user:{}", e.user_id)];
    if let Some(a) = e.author_id.as_deref().filter(|a| *a != e.user_id) {
        out.push(format!("user:{a}"));
    }
    if let Some(c) = &e.channel_id {
        out.push(format!("channel:{c}"));
    }
    out
}

/// The most neighbours one `similar` call returns per text.
pub const MAX_K: usize = 32;

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_core::Event;

    #[test]
    fn an_events_entities_are_its_user_author_and_channel() {
        let mut e = Event { user_id: "u1".into(), ..Event::default() };
        assert_eq!(entities_of(&e), ["user:u1"]);
        e.author_id = Some("u1".into());
        e.channel_id = Some("c9".into());
        assert_eq!(entities_of(&e), ["user:u1", "channel:c9"]);
        e.author_id = Some("a2".into());
        assert_eq!(entities_of(&e), ["user:u1", "user:a2", "channel:c9"]);
        // Plugins name them the same way (the SDK's copy of the convention).
        let guest = palisade_sdk::Event {
            user_id: e.user_id.clone(),
            author_id: e.author_id.clone(),
            channel_id: e.channel_id.clone(),
            ..palisade_sdk::Event::message("")
        };
        assert_eq!(guest.entities(), entities_of(&e));
        assert_eq!(guest.author_entity(), "user:a2");
    }
}
