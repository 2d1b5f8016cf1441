//! Inside a component only: the generated WIT bindings of the one world this plugin
//! crate exports (chosen by SDK feature), and the one place where binding types are
//! converted to and from [`crate::types`]. Plugin authors never touch this module.

#[cfg(not(any(feature = "heuristic", feature = "validator", feature = "adapter")))]
compile_error!("enable exactly one palisade-sdk feature: heuristic, validator or adapter");
#[cfg(any(
    all(feature = "heuristic", feature = "validator"),
    all(feature = "heuristic", feature = "adapter"),
    all(feature = "validator", feature = "adapter")
))]
compile_error!("a plugin crate exports one world: enable only one of heuristic, validator, adapter");

use crate::settings::Level;
use crate::types as sdk;

/// Conversions between one world's generated `types` and the SDK's types.
macro_rules! conversions {
    ($t:path) => {
        use $t as wit;

        impl From<wit::Event> for sdk::Event {
            fn from(e: wit::Event) -> Self {
                sdk::Event {
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
        impl From<sdk::Event> for wit::Event {
            fn from(e: sdk::Event) -> Self {
                wit::Event {
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
        impl From<sdk::Category> for wit::Category {
            fn from(c: sdk::Category) -> Self {
                match c {
                    sdk::Category::LowRisk => wit::Category::LowRisk,
                    sdk::Category::Spam => wit::Category::Spam,
                    sdk::Category::Toxic => wit::Category::Toxic,
                    sdk::Category::TargetedHarassment => wit::Category::TargetedHarassment,
                    sdk::Category::HateSpeech => wit::Category::HateSpeech,
                    sdk::Category::Violence => wit::Category::Violence,
                    sdk::Category::Sexual => wit::Category::Sexual,
                }
            }
        }
        impl From<wit::Category> for sdk::Category {
            fn from(c: wit::Category) -> Self {
                match c {
                    wit::Category::LowRisk => sdk::Category::LowRisk,
                    wit::Category::Spam => sdk::Category::Spam,
                    wit::Category::Toxic => sdk::Category::Toxic,
                    wit::Category::TargetedHarassment => sdk::Category::TargetedHarassment,
                    wit::Category::HateSpeech => sdk::Category::HateSpeech,
                    wit::Category::Violence => sdk::Category::Violence,
                    wit::Category::Sexual => sdk::Category::Sexual,
                }
            }
        }
        impl From<sdk::Verdict> for wit::Verdict {
            fn from(v: sdk::Verdict) -> Self {
                wit::Verdict {
                    score: v.score,
                    category: v.category.map(Into::into),
                    hits: v
                        .hits
                        .into_iter()
                        .map(|h| wit::RuleHit {
                            rule: h.rule,
                            weight: h.weight,
                            category: h.category.map(Into::into),
                            detail: h.detail,
                        })
                        .collect(),
                }
            }
        }
        impl From<sdk::Violation> for wit::Violation {
            fn from(v: sdk::Violation) -> Self {
                wit::Violation { field: v.field, code: v.code, message: v.message }
            }
        }
        impl From<sdk::HttpRequest> for wit::HttpRequest {
            fn from(r: sdk::HttpRequest) -> Self {
                wit::HttpRequest { method: r.method, path: r.path, headers: r.headers, body: r.body }
            }
        }
        impl From<sdk::Inbound> for wit::Inbound {
            fn from(i: sdk::Inbound) -> Self {
                wit::Inbound {
                    events: i.events.into_iter().map(Into::into).collect(),
                    reply: i.reply.map(|r| wit::HttpReply { status: r.status, headers: r.headers, body: r.body }),
                }
            }
        }
        impl From<sdk::AdapterError> for wit::AdapterError {
            fn from(e: sdk::AdapterError) -> Self {
                wit::AdapterError { code: e.code, message: e.message }
            }
        }
        impl From<wit::Outbound> for sdk::Outbound {
            fn from(o: wit::Outbound) -> Self {
                match o {
                    wit::Outbound::Post(p) => sdk::Outbound::Post(sdk::OutboundPost {
                        channel_id: p.channel_id,
                        content: p.content,
                        reply_to: p.reply_to,
                        idempotency_key: p.idempotency_key,
                    }),
                    wit::Outbound::Action(a) => sdk::Outbound::Action(sdk::OutboundAction {
                        channel_id: a.channel_id,
                        reason: a.reason,
                        action: match a.action {
                            wit::Moderation::DeleteMessage(m) => sdk::Moderation::DeleteMessage(m),
                            wit::Moderation::TimeoutUser((u, s)) => sdk::Moderation::TimeoutUser(u, s),
                            wit::Moderation::BanUser(u) => sdk::Moderation::BanUser(u),
                            wit::Moderation::AddReaction((m, e)) => sdk::Moderation::AddReaction(m, e),
                        },
                    }),
                }
            }
        }
        impl From<wit::PlatformResponse> for sdk::PlatformResponse {
            fn from(r: wit::PlatformResponse) -> Self {
                sdk::PlatformResponse { status: r.status, headers: r.headers, body: r.body }
            }
        }
        impl From<sdk::Delivery> for wit::Delivery {
            fn from(d: sdk::Delivery) -> Self {
                wit::Delivery { id: d.id }
            }
        }

        pub(crate) fn host_log(level: Level, message: &str) {
            use host::Level as L;
            let level = match level {
                Level::Trace => L::Trace,
                Level::Debug => L::Debug,
                Level::Info => L::Info,
                Level::Warn => L::Warn,
                Level::Error => L::Error,
            };
            host::log(level, message);
        }

        pub(crate) fn host_config(key: &str) -> Option<String> {
            host::config(key)
        }

        pub(crate) fn host_now_ms() -> u64 {
            host::now_ms()
        }

        pub(crate) fn host_similar(texts: &[String], k: u32) -> Vec<Vec<crate::lend::Neighbour>> {
            host::similar(texts, k)
                .into_iter()
                .map(|ns| {
                    ns.into_iter()
                        .map(|n| crate::lend::Neighbour { id: n.id, label: n.label, similarity: n.similarity })
                        .collect()
                })
                .collect()
        }

        pub(crate) fn host_classify(texts: &[String]) -> Vec<crate::lend::CategoryScores> {
            host::classify(texts)
                .into_iter()
                .map(|scores| {
                    crate::lend::CategoryScores(
                        scores.into_iter().map(|s| (sdk::Category::from(s.category), s.score)).collect(),
                    )
                })
                .collect()
        }

        pub(crate) fn host_labels(entities: &[String]) -> Vec<Vec<crate::lend::EntityLabel>> {
            host::labels(entities)
                .into_iter()
                .map(|ls| {
                    ls.into_iter()
                        .map(|l| crate::lend::EntityLabel {
                            entity: l.entity,
                            label: l.label,
                            source: l.source,
                            reason: l.reason,
                            expires_at_ms: l.expires_at_ms,
                        })
                        .collect()
                })
                .collect()
        }
    };
}

#[cfg(feature = "heuristic")]
pub mod heuristic {
    //! The `heuristic` world.
    use super::*;
    pub mod bindings {
        wit_bindgen::generate!({
            path: "../wit",
            world: "palisade:plugin/heuristic@0.1.1",
            pub_export_macro: true,
            export_macro_name: "__export_heuristic_world",
            runtime_path: "palisade_sdk::guest::rt",
        });
    }
    use bindings::palisade::plugin::host;
    pub use bindings::{Event, Guest, Verdict};
    conversions!(bindings::palisade::plugin::types);

    pub fn score<H: crate::Heuristic>(plugin: &H, events: Vec<Event>) -> Vec<Verdict> {
        let events: Vec<sdk::Event> = events.into_iter().map(Into::into).collect();
        plugin.score_batch(&events).into_iter().map(Into::into).collect()
    }
}
#[cfg(feature = "heuristic")]
pub(crate) use heuristic::{host_classify, host_config, host_labels, host_log, host_now_ms, host_similar};

#[cfg(feature = "validator")]
pub mod validator {
    //! The `validator` world.
    use super::*;
    pub mod bindings {
        wit_bindgen::generate!({
            path: "../wit",
            world: "palisade:plugin/validator@0.1.1",
            pub_export_macro: true,
            export_macro_name: "__export_validator_world",
            runtime_path: "palisade_sdk::guest::rt",
        });
    }
    use bindings::palisade::plugin::host;
    pub use bindings::{Event, Guest, Violation};
    conversions!(bindings::palisade::plugin::types);

    pub fn validate<V: crate::Validator>(plugin: &V, events: Vec<Event>) -> Vec<Vec<Violation>> {
        let events: Vec<sdk::Event> = events.into_iter().map(Into::into).collect();
        plugin.validate_batch(&events).into_iter().map(|vs| vs.into_iter().map(Into::into).collect()).collect()
    }
}
#[cfg(feature = "validator")]
pub(crate) use validator::{host_classify, host_config, host_labels, host_log, host_now_ms, host_similar};

#[cfg(feature = "adapter")]
pub mod adapter {
    //! The `platform-adapter` world.
    use super::*;
    pub mod bindings {
        wit_bindgen::generate!({
            path: "../wit",
            world: "palisade:plugin/platform-adapter@0.1.1",
            pub_export_macro: true,
            export_macro_name: "__export_adapter_world",
            runtime_path: "palisade_sdk::guest::rt",
        });
    }
    use bindings::palisade::plugin::host;
    pub use bindings::{AdapterError, Delivery, Guest, HttpRequest, Inbound, Outbound, PlatformResponse};
    conversions!(bindings::palisade::plugin::types);

    pub fn parse_inbound<A: crate::Adapter>(
        plugin: &A,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Result<Inbound, AdapterError> {
        plugin.parse_inbound(&headers, &body).map(Into::into).map_err(Into::into)
    }

    pub fn format_outbound<A: crate::Adapter>(plugin: &A, request: Outbound) -> Result<HttpRequest, AdapterError> {
        plugin.format_outbound(&request.into()).map(Into::into).map_err(Into::into)
    }

    pub fn parse_response<A: crate::Adapter>(plugin: &A, response: PlatformResponse) -> Result<Delivery, AdapterError> {
        plugin.parse_response(&response.into()).map(Into::into).map_err(Into::into)
    }
}
#[cfg(feature = "adapter")]
pub(crate) use adapter::{host_classify, host_config, host_labels, host_log, host_now_ms, host_similar};

/// The wit-bindgen runtime, re-exported so plugin crates need not depend on wit-bindgen.
pub use wit_bindgen::rt;
