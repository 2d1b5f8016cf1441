//! The WIT worlds as host-side bindings, and the one place where host types are
//! converted to and from the generated WIT types. Nothing else names generated types.

use crate::event::Event;

mod heuristic_world {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "palisade:plugin/heuristic@0.1.0",
    });
}
mod validator_world {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "palisade:plugin/validator@0.1.0",
        with: {
            "palisade:plugin/types@0.1.0": super::heuristic_world::palisade::plugin::types,
            "palisade:plugin/host@0.1.0": super::heuristic_world::palisade::plugin::host,
        },
    });
}
mod adapter_world {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "palisade:plugin/platform-adapter@0.1.0",
        with: {
            "palisade:plugin/types@0.1.0": super::heuristic_world::palisade::plugin::types,
            "palisade:plugin/host@0.1.0": super::heuristic_world::palisade::plugin::host,
        },
    });
}

pub use adapter_world::{PlatformAdapter, PlatformAdapterPre};
pub use heuristic_world::palisade::plugin::host::{self as host_iface, Level};
pub use heuristic_world::palisade::plugin::types::{
    AdapterError, Category, Delivery, Event as WitEvent, HttpReply, HttpRequest, Inbound, Moderation, Outbound,
    OutboundAction, OutboundPost, PlatformResponse, RuleHit, Verdict, Violation,
};
pub use heuristic_world::{Heuristic, HeuristicPre};
pub use validator_world::{Validator, ValidatorPre};

impl From<&Event> for WitEvent {
    fn from(e: &Event) -> Self {
        WitEvent {
            event_id: e.event_id.clone(),
            event_type: e.event_type.clone(),
            platform: e.platform.clone(),
            user_id: e.user_id.clone(),
            author_id: e.author_id.clone(),
            channel_id: e.channel_id.clone(),
            content: e.content.clone(),
            timestamp_ms: e.timestamp_ms,
            metadata: e.metadata.clone(),
        }
    }
}

impl From<WitEvent> for Event {
    fn from(e: WitEvent) -> Self {
        Event {
            event_id: e.event_id,
            event_type: e.event_type,
            platform: e.platform,
            user_id: e.user_id,
            author_id: e.author_id,
            channel_id: e.channel_id,
            content: e.content,
            timestamp_ms: e.timestamp_ms,
            metadata: e.metadata,
        }
    }
}

/// Events in the WIT shape, converted once per batch and shared by every plugin call.
pub fn to_wit(events: &[Event]) -> Vec<WitEvent> {
    events.iter().map(WitEvent::from).collect()
}

impl Category {
    /// The wire name (`LOW_RISK`, `SPAM`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Category::LowRisk => "LOW_RISK",
            Category::Spam => "SPAM",
            Category::Toxic => "TOXIC",
            Category::TargetedHarassment => "TARGETED_HARASSMENT",
            Category::HateSpeech => "HATE_SPEECH",
            Category::Violence => "VIOLENCE",
            Category::Sexual => "SEXUAL",
        }
    }
}
