//! # palisade-sdk
//!
//! What a plugin author depends on. A plugin is a plain Rust type that implements
//! one of [`Heuristic`], [`Validator`] or [`Adapter`], exported with the matching
//! macro ([`export_heuristic!`], [`export_validator!`], [`export_adapter!`]) and
//! built with `cargo build --release --target wasm32-wasip2` (the crate enables the
//! SDK feature of the same name: `heuristic`, `validator` or `adapter`).
//!
//! - [`types`]: the plugin-facing data (events, verdicts, violations, HTTP shapes),
//!   plain Rust types converted to and from the WIT bindings in one place.
//! - [`text`]: normalisation (case, leetspeak, Unicode confusables), caps ratio,
//!   repeated punctuation/characters, keyword sets, URL and mention extraction.
//! - [`rules`]: a configurable keyword rule shared by rule families.
//! - [`Settings`], [`log`] and [`now_ms`]: the host interface (`[settings]` of the
//!   manifest, host log, wall clock).
//! - [`lend`]: what the host lends a plugin granted it — nearest labelled
//!   examples, the classifier's scores, entity labels (WIT 0.1.1).
//! - `signing` (adapters, feature `adapter`): HMAC-SHA256, constant-time comparison, header lookup and
//!   timestamp windows for webhook signatures.
//! - [`testing`]: a native harness so a rule is unit-tested with plain `cargo test`.
//!
//! This crate must not depend on the host: the host speaks to plugins only through `wit/`.

extern crate self as palisade_sdk;

pub mod lend;
#[cfg(feature = "manifest")]
pub mod manifest;
pub mod rules;
pub mod settings;
#[cfg(feature = "adapter")]
pub mod signing;
pub mod testing;
pub mod text;
pub mod types;

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod guest;

pub use settings::{Level, Settings, log, now_ms};
pub use types::*;

/// A heuristic rule family. Built once per plugin instance from its settings,
/// then asked to score batches of events.
pub trait Heuristic: Sized + Send + Sync + 'static {
    /// Read settings (keyword lists, thresholds). An error here fails every call
    /// of the plugin with that message, so the host reports and quarantines it.
    fn new(settings: &Settings) -> Result<Self, String>;
    /// Score one event. Score in `[0, 1]`; hits explain it.
    fn score(&self, event: &Event) -> Verdict;
    /// Score a batch (one boundary crossing). Override to share work across events.
    fn score_batch(&self, events: &[Event]) -> Vec<Verdict> {
        events.iter().map(|e| self.score(e)).collect()
    }
}

/// An event policy. Returns the violations of one event; empty means it passes.
pub trait Validator: Sized + Send + Sync + 'static {
    fn new(settings: &Settings) -> Result<Self, String>;
    fn validate(&self, event: &Event) -> Vec<Violation>;
    fn validate_batch(&self, events: &[Event]) -> Vec<Vec<Violation>> {
        events.iter().map(|e| self.validate(e)).collect()
    }
}

/// A platform adapter: webhook payloads in, platform HTTP requests out. It does
/// no I/O: the host sends what it describes.
pub trait Adapter: Sized + Send + Sync + 'static {
    fn new(settings: &Settings) -> Result<Self, String>;
    fn platform(&self) -> String;
    fn parse_inbound(&self, headers: &[(String, String)], body: &[u8]) -> Result<Inbound, AdapterError>;
    fn format_outbound(&self, request: &Outbound) -> Result<HttpRequest, AdapterError>;
    fn parse_response(&self, response: &PlatformResponse) -> Result<Delivery, AdapterError>;
}

/// Builds the plugin once per instance; an error becomes a trap the host reports.
#[doc(hidden)]
pub fn __build<T>(make: impl FnOnce(&Settings) -> Result<T, String>) -> T {
    settings::install_panic_logger();
    match make(&Settings::from_host()) {
        Ok(plugin) => plugin,
        Err(message) => panic!("plugin settings rejected: {message}"),
    }
}

/// Export a [`Heuristic`] as the plugin's `score` function.
#[macro_export]
macro_rules! export_heuristic {
    ($ty:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            static PLUGIN: ::std::sync::OnceLock<$ty> = ::std::sync::OnceLock::new();
            struct Export;
            impl $crate::guest::heuristic::Guest for Export {
                fn score(
                    events: ::std::vec::Vec<$crate::guest::heuristic::Event>,
                ) -> ::std::vec::Vec<$crate::guest::heuristic::Verdict> {
                    let plugin = PLUGIN.get_or_init(|| {
                        $crate::__build(<$ty as $crate::Heuristic>::new)
                    });
                    $crate::guest::heuristic::score(plugin, events)
                }
            }
            $crate::guest::heuristic::bindings::__export_heuristic_world!(Export with_types_in $crate::guest::heuristic::bindings);
        };
    };
}

/// Export a [`Validator`] as the plugin's `validate` function.
#[macro_export]
macro_rules! export_validator {
    ($ty:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            static PLUGIN: ::std::sync::OnceLock<$ty> = ::std::sync::OnceLock::new();
            struct Export;
            impl $crate::guest::validator::Guest for Export {
                fn validate(
                    events: ::std::vec::Vec<$crate::guest::validator::Event>,
                ) -> ::std::vec::Vec<::std::vec::Vec<$crate::guest::validator::Violation>> {
                    let plugin = PLUGIN.get_or_init(|| {
                        $crate::__build(<$ty as $crate::Validator>::new)
                    });
                    $crate::guest::validator::validate(plugin, events)
                }
            }
            $crate::guest::validator::bindings::__export_validator_world!(Export with_types_in $crate::guest::validator::bindings);
        };
    };
}

/// Export an [`Adapter`] as the plugin's platform-adapter functions.
#[macro_export]
macro_rules! export_adapter {
    ($ty:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            static PLUGIN: ::std::sync::OnceLock<$ty> = ::std::sync::OnceLock::new();
            fn plugin() -> &'static $ty {
                PLUGIN.get_or_init(|| $crate::__build(<$ty as $crate::Adapter>::new))
            }
            struct Export;
            impl $crate::guest::adapter::Guest for Export {
                fn platform() -> ::std::string::String {
                    $crate::Adapter::platform(plugin())
                }
                fn parse_inbound(
                    headers: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
                    body: ::std::vec::Vec<u8>,
                ) -> ::std::result::Result<$crate::guest::adapter::Inbound, $crate::guest::adapter::AdapterError> {
                    $crate::guest::adapter::parse_inbound(plugin(), headers, body)
                }
                fn format_outbound(
                    request: $crate::guest::adapter::Outbound,
                ) -> ::std::result::Result<$crate::guest::adapter::HttpRequest, $crate::guest::adapter::AdapterError> {
                    $crate::guest::adapter::format_outbound(plugin(), request)
                }
                fn parse_response(
                    response: $crate::guest::adapter::PlatformResponse,
                ) -> ::std::result::Result<$crate::guest::adapter::Delivery, $crate::guest::adapter::AdapterError> {
                    $crate::guest::adapter::parse_response(plugin(), response)
                }
            }
            $crate::guest::adapter::bindings::__export_adapter_world!(Export with_types_in $crate::guest::adapter::bindings);
        };
    };
}
