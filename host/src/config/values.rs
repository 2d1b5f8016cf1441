//! The kinds of value a setting holds (`Setting`: text to a typed value), the
//! checks, the secrets kept out of logs, the small enums, and `section!`, which
//! declares a subsystem's keys once.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

/// One configuration key: its environment name, default and meaning.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    pub name: &'static str,
    pub default: &'static str,
    pub help: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {message}")]
    File { path: String, message: String },
    #[error("config key {key}: {message}")]
    Value { key: &'static str, message: String },
}

/// A type a key's text parses into, and how to say what was expected.
pub trait Setting: Sized {
    const EXPECTED: &'static str;
    fn parse_setting(text: &str) -> Result<Self, String>;
}

macro_rules! from_str_setting {
    ($($ty:ty => $what:literal),* $(,)?) => {$(
        impl Setting for $ty {
            const EXPECTED: &'static str = $what;
            fn parse_setting(text: &str) -> Result<Self, String> {
                text.parse().map_err(|e| format!("{e}"))
            }
        }
    )*};
}

from_str_setting! {
    bool => "true or false",
    u32 => "a whole number",
    u64 => "a whole number",
    usize => "a whole number",
    f32 => "a number",
    f64 => "a number",
    SocketAddr => "an address like 127.0.0.1:8001",
    palisade_detect::embed::Device => "cpu or cuda",
    LogFormat => "json or text",
    Scoring => "classifier or weighted",
    DegradedEvents => "rescreen or review",
    Switch => "on or off",
    Band => "two numbers low,high with 0 ≤ low ≤ high ≤ 1",
}

impl Setting for String {
    const EXPECTED: &'static str = "text";
    fn parse_setting(text: &str) -> Result<Self, String> {
        Ok(text.to_string())
    }
}

impl Setting for PathBuf {
    const EXPECTED: &'static str = "a path";
    fn parse_setting(text: &str) -> Result<Self, String> {
        Ok(PathBuf::from(text))
    }
}

/// Comma- (or newline-) separated; blanks dropped.
impl Setting for Vec<String> {
    const EXPECTED: &'static str = "a comma-separated list";
    fn parse_setting(text: &str) -> Result<Self, String> {
        Ok(text.split([',', '\n']).map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect())
    }
}

impl Setting for Vec<usize> {
    const EXPECTED: &'static str = "a comma-separated list of whole numbers";
    fn parse_setting(text: &str) -> Result<Self, String> {
        Vec::<String>::parse_setting(text)?.iter().map(|n| n.parse().map_err(|e| format!("{n}: {e}"))).collect()
    }
}

/// Empty, `none` or `off` is `None`.
impl<T: Setting> Setting for Option<T> {
    const EXPECTED: &'static str = T::EXPECTED;
    fn parse_setting(text: &str) -> Result<Self, String> {
        match text {
            "" | "none" | "off" => Ok(None),
            t => T::parse_setting(t).map(Some),
        }
    }
}

/// A value never shown in logs, errors or `Debug` output.
#[derive(Clone)]
pub struct Secret(pub(super) String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl Setting for Secret {
    const EXPECTED: &'static str = "text";
    fn parse_setting(text: &str) -> Result<Self, String> {
        Ok(Secret(text.to_string()))
    }
}

/// A key's check beyond parsing (a range, say): `Err` says what is wrong.
pub(super) type Check<T> = fn(&T) -> Result<(), String>;

/// Raw key → text, as read from the file and the environment.
pub(super) type Raw = BTreeMap<String, String>;

pub(super) fn read<T: Setting>(
    raw: &Raw,
    key: &'static str,
    default: &str,
    checks: &[Check<T>],
) -> Result<T, ConfigError> {
    let text = raw.get(key).map_or(default, String::as_str).trim();
    let value = T::parse_setting(text)
        .map_err(|e| ConfigError::Value { key, message: format!("`{text}` is not {}: {e}", T::EXPECTED) })?;
    for check in checks {
        check(&value).map_err(|message| ConfigError::Value { key, message: format!("`{text}`: {message}") })?;
    }
    Ok(value)
}

// Checks a key can name after its meaning.
pub(super) fn positive<T: PartialOrd + Default>(v: &T) -> Result<(), String> {
    if *v > T::default() { Ok(()) } else { Err("must be greater than 0".into()) }
}

pub(super) fn unit(v: &f32) -> Result<(), String> {
    if (0.0..=1.0).contains(v) { Ok(()) } else { Err("must be between 0 and 1".into()) }
}

pub(super) fn open_unit(v: &Option<f32>) -> Result<(), String> {
    match v {
        Some(v) if !(*v > 0.0 && *v <= 1.0) => Err("must be off or in (0, 1]".into()),
        _ => Ok(()),
    }
}

pub(super) fn share(v: &f64) -> Result<(), String> {
    if *v > 0.0 && *v <= 1.0 { Ok(()) } else { Err("must be in (0, 1]".into()) }
}

/// How log lines are written (`LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

impl LogFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Json => "json",
            LogFormat::Text => "text",
        }
    }
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "json" => Ok(LogFormat::Json),
            "text" => Ok(LogFormat::Text),
            other => Err(format!("`{other}` is neither")),
        }
    }
}

/// How screening turns stage results into a verdict (`SCORING`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scoring {
    /// `category_scores` from the trained classifier (`CLASSIFIER_DIR`).
    Classifier,
    /// The seed's fixed mix: `RULE_WEIGHT` × rules + `EMBEDDING_WEIGHT` × embedding.
    Weighted,
}

impl std::str::FromStr for Scoring {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "classifier" => Ok(Scoring::Classifier),
            "weighted" => Ok(Scoring::Weighted),
            other => Err(format!("`{other}` is neither")),
        }
    }
}

/// What the consumer does with an event screened `degraded` (`DEGRADED_EVENTS`):
/// a heuristic plugin's part is missing from its verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DegradedEvents {
    /// Route the verdict, and screen the event again once the plugins it missed
    /// are back (`screening::rescreen`).
    Rescreen,
    /// Route it to `events:reasoning_queue` whatever its risk, flagged `review`.
    Review,
}

impl std::str::FromStr for DegradedEvents {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "rescreen" => Ok(DegradedEvents::Rescreen),
            "review" => Ok(DegradedEvents::Review),
            other => Err(format!("`{other}` is neither")),
        }
    }
}

/// `on`/`off` (also `true`/`false`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Switch(pub bool);

impl std::str::FromStr for Switch {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "on" | "true" => Ok(Switch(true)),
            "off" | "false" => Ok(Switch(false)),
            other => Err(format!("`{other}` is neither")),
        }
    }
}

/// The cascade band (`CASCADE_BAND`): detection's type, parsed here.
pub use palisade_detect::cascade::Band;

/// Declares one subsystem's struct: each line is
/// `field: Type = ("KEY", "default", "meaning" [, check…])`.
macro_rules! section {
    ($(#[$meta:meta])* pub struct $name:ident {
        $( $(#[$fmeta:meta])* $field:ident : $ty:ty = ($key:literal, $default:literal, $help:expr $(, $check:expr)* $(,)?), )*
    }) => {
        $(#[$meta])*
        #[derive(Debug, Clone)]
        pub struct $name { $( $(#[$fmeta])* pub $field: $ty, )* }

        impl $name {
            pub const KEYS: &'static [Key] = &[$( Key { name: $key, default: $default, help: $help }, )*];

            pub(super) fn from_raw(raw: &Raw) -> Result<Self, ConfigError> {
                Ok($name { $( $field: read::<$ty>(raw, $key, $default, &[$($check),*])?, )* })
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::from_raw(&Raw::new()).expect("every default parses")
            }
        }
    };
}
