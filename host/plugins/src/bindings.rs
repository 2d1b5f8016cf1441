//! The WIT worlds as host-side bindings, and the one place where host types are
//! converted to and from the generated WIT types. Nothing else names generated types.
//! The event conversions name every field on both sides, so a field added to the
//! WIT record or to [`Event`] alone does not compile; the test below also checks
//! the field lists against `wit/palisade.wit` itself.

use palisade_core::Event;

mod heuristic_world {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "palisade:plugin/heuristic@0.1.1",
    });
}
mod validator_world {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "palisade:plugin/validator@0.1.1",
        with: {
            "palisade:plugin/types@0.1.1": super::heuristic_world::palisade::plugin::types,
            "palisade:plugin/host@0.1.1": super::heuristic_world::palisade::plugin::host,
        },
    });
}
mod adapter_world {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "palisade:plugin/platform-adapter@0.1.1",
        with: {
            "palisade:plugin/types@0.1.1": super::heuristic_world::palisade::plugin::types,
            "palisade:plugin/host@0.1.1": super::heuristic_world::palisade::plugin::host,
        },
    });
}

/// The `host` interface as published in 0.1.0 (`wit/published/0.1.0`): linked under
/// its own name so components built against it find it. (wasmtime's semver
/// matching would link their `host@0.1.0` imports to `host@0.1.1`, but stubbing
/// the unknown WASI imports as traps defines an exact `host@0.1.0` first.)
mod published_0_1_0 {
    wasmtime::component::bindgen!({
        path: "../../wit/published/0.1.0",
        world: "palisade:plugin/heuristic@0.1.0",
    });
}
pub use published_0_1_0::palisade::plugin::host as host_iface_0_1_0;

impl From<host_iface_0_1_0::Level> for Level {
    fn from(l: host_iface_0_1_0::Level) -> Self {
        use host_iface_0_1_0::Level as Old;
        match l {
            Old::Trace => Level::Trace,
            Old::Debug => Level::Debug,
            Old::Info => Level::Info,
            Old::Warn => Level::Warn,
            Old::Error => Level::Error,
        }
    }
}

pub use adapter_world::{PlatformAdapter, PlatformAdapterPre};
pub use heuristic_world::palisade::plugin::host::{self as host_iface, Level};
pub use heuristic_world::palisade::plugin::types::{
    AdapterError, Category, CategoryScore, Delivery, EntityLabel as WitEntityLabel, Event as WitEvent, HttpReply,
    HttpRequest, Inbound, Moderation, Neighbour as WitNeighbour, Outbound, OutboundAction, OutboundPost,
    PlatformResponse, RuleHit, Verdict, Violation,
};
pub use heuristic_world::{Heuristic, HeuristicPre};
pub use validator_world::{Validator, ValidatorPre};

impl From<&Event> for WitEvent {
    fn from(e: &Event) -> Self {
        let Event { event_id, event_type, platform, user_id, author_id, channel_id, content, timestamp_ms, metadata } =
            e;
        WitEvent {
            event_id: event_id.clone(),
            event_type: event_type.clone(),
            platform: platform.clone(),
            user_id: user_id.clone(),
            author_id: author_id.clone(),
            channel_id: channel_id.clone(),
            content: content.clone(),
            timestamp_ms: *timestamp_ms,
            metadata: metadata.clone(),
        }
    }
}

impl From<WitEvent> for Event {
    fn from(e: WitEvent) -> Self {
        let WitEvent {
            event_id,
            event_type,
            platform,
            user_id,
            author_id,
            channel_id,
            content,
            timestamp_ms,
            metadata,
        } = e;
        Event { event_id, event_type, platform, user_id, author_id, channel_id, content, timestamp_ms, metadata }
    }
}

/// Events in the WIT shape, converted once per batch and shared by every plugin call.
pub fn to_wit(events: &[Event]) -> Vec<WitEvent> {
    events.iter().map(WitEvent::from).collect()
}

impl From<super::lending::LentNeighbour> for WitNeighbour {
    fn from(n: super::lending::LentNeighbour) -> Self {
        WitNeighbour { id: n.id, label: n.label, similarity: n.similarity }
    }
}

impl From<super::lending::LentLabel> for WitEntityLabel {
    fn from(l: super::lending::LentLabel) -> Self {
        WitEntityLabel {
            entity: l.entity,
            label: l.label,
            source: l.source,
            reason: l.reason,
            expires_at_ms: l.expires_at_ms,
        }
    }
}

/// Probabilities in category order (the WIT's, the classifier's) as WIT scores.
pub fn category_scores(probabilities: &[f32]) -> Vec<CategoryScore> {
    palisade_vocab::Category::ALL
        .iter()
        .zip(probabilities)
        .map(|(c, p)| CategoryScore { category: Category::from(*c), score: *p })
        .collect()
}

impl From<palisade_vocab::Category> for Category {
    fn from(c: palisade_vocab::Category) -> Self {
        use palisade_vocab::Category as V;
        match c {
            V::LowRisk => Category::LowRisk,
            V::Spam => Category::Spam,
            V::Toxic => Category::Toxic,
            V::TargetedHarassment => Category::TargetedHarassment,
            V::HateSpeech => Category::HateSpeech,
            V::Violence => Category::Violence,
            V::Sexual => Category::Sexual,
        }
    }
}

impl From<Category> for palisade_vocab::Category {
    /// `palisade-vocab` lists the categories in the WIT's order, as the bindings'
    /// enum does (a test checks both).
    fn from(c: Category) -> Self {
        palisade_vocab::Category::ALL[c as usize]
    }
}

impl Category {
    /// The wire name (`LOW_RISK`, `SPAM`, …).
    pub fn as_str(self) -> &'static str {
        palisade_vocab::Category::from(self).as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fields of `record event` in the WIT file, in snake case.
    fn wit_event_fields() -> Vec<String> {
        let wit = include_str!("../../../wit/palisade.wit");
        let start = wit.find("record event {").expect("record event in palisade.wit") + "record event {".len();
        let body = &wit[start..start + wit[start..].find('}').expect("end of record event")];
        // One field a line: `name: type,`.
        body.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("//"))
            .map(|l| l.split(':').next().unwrap_or_default().trim().trim_start_matches('%').replace('-', "_"))
            .collect()
    }

    #[test]
    fn the_event_has_the_same_fields_on_both_sides_of_the_wit_boundary() {
        let full = Event {
            author_id: Some("a".into()),
            channel_id: Some("c".into()),
            metadata: vec![("k".into(), "v".into())],
            timestamp_ms: 7,
            ..Event::sample("hi")
        };
        let json = serde_json::to_value(&full).unwrap();
        let mut host: Vec<String> = json.as_object().unwrap().keys().cloned().collect();
        let mut wit = wit_event_fields();
        host.sort();
        wit.sort();
        assert_eq!(host, wit, "host Event (JSON) vs wit/palisade.wit `record event`");
        assert_eq!(Event::from(WitEvent::from(&full)), full, "round trip through the WIT type");
    }

    #[test]
    fn category_names_follow_the_wit_order() {
        let wit = include_str!("../../../wit/palisade.wit");
        let start = wit.find("enum category {").expect("enum category in palisade.wit") + "enum category {".len();
        let body = &wit[start..start + wit[start..].find('}').expect("end of enum category")];
        let names: Vec<String> = body
            .split(',')
            .map(|c| c.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with("//")).collect::<String>())
            .filter(|c| !c.is_empty())
            .map(|c| c.replace('-', "_").to_uppercase())
            .collect();
        // The shared table (palisade-vocab) follows the WIT, and the host's enum (generated from the WIT) indexes it.
        let sdk: Vec<&str> = palisade_vocab::Category::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(sdk, names);
        assert_eq!((Category::LowRisk.as_str(), Category::Sexual.as_str()), ("LOW_RISK", "SEXUAL"));
        assert_eq!(Category::HateSpeech.as_str(), "HATE_SPEECH");
    }
}
