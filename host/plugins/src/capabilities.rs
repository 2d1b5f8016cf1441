//! Capability grants: which host functions a plugin may import. A manifest lists
//! them (`capabilities = ["log", "config", "clock", "classify"]`; without the key
//! a plugin gets [`DEFAULT`], what every plugin had before grants existed). At load
//! the component's imports of the `palisade:plugin/host` interface are read from
//! its type and a component that imports a function its manifest does not grant is
//! refused, naming the import — so a running plugin can only ever call what it was
//! granted (the linker's other functions are unreachable from it).
//! Imports outside `palisade:plugin` (WASI) stay linked as traps by the runtime.

use serde::Serialize;
use wasmtime::Engine;
use wasmtime::component::Component;
use wasmtime::component::types::ComponentItem;

/// One grantable host function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Capability {
    /// `host.log`: write to the host log.
    Log,
    /// `host.config`: read its own manifest settings.
    Config,
    /// `host.now-ms`: wall-clock time.
    Clock,
    /// `host.similar`: nearest labelled examples of a text (WIT 0.1.1).
    Similar,
    /// `host.classify`: the trained classifier's category scores (WIT 0.1.1).
    Classify,
    /// `host.labels`: the labels an entity holds (WIT 0.1.1).
    Labels,
}

/// Granted when a manifest has no `capabilities` key.
pub const DEFAULT: [Capability; 3] = [Capability::Log, Capability::Config, Capability::Clock];

pub const ALL: [Capability; 6] = [
    Capability::Log,
    Capability::Config,
    Capability::Clock,
    Capability::Similar,
    Capability::Classify,
    Capability::Labels,
];

impl Capability {
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Log => "log",
            Capability::Config => "config",
            Capability::Clock => "clock",
            Capability::Similar => "similar",
            Capability::Classify => "classify",
            Capability::Labels => "labels",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// The capability a `host` function needs (its WIT name).
    fn of_function(name: &str) -> Option<Self> {
        match name {
            "now-ms" => Some(Capability::Clock),
            other => Capability::parse(other),
        }
    }
}

/// The host functions a component imports and the capability each needs:
/// `(import, capability)` with the import as `palisade:plugin/host@V#function`.
/// A `host` function this host does not know yields `None` (the linker then
/// refuses the component for the missing import).
pub fn imported(engine: &Engine, component: &Component) -> Vec<(String, Option<Capability>)> {
    let ty = component.component_type();
    let mut out = Vec::new();
    for (name, item) in ty.imports(engine) {
        if !name.starts_with("palisade:plugin/host@") {
            continue;
        }
        if let ComponentItem::ComponentInstance(instance) = item.ty {
            for (function, f) in instance.exports(engine) {
                if matches!(f.ty, ComponentItem::ComponentFunc(_)) {
                    out.push((format!("{name}#{function}"), Capability::of_function(function)));
                }
            }
        }
    }
    out
}

/// The first import of `component` that `granted` does not cover, as an error
/// message naming it and the capability it needs.
pub fn check(engine: &Engine, component: &Component, granted: &[Capability]) -> Result<(), String> {
    for (import, needs) in imported(engine, component) {
        match needs {
            Some(c) if granted.contains(&c) => {}
            Some(c) => {
                return Err(format!(
                    "imports `{import}`, which needs the `{}` capability its manifest does not grant \
                     (add \"{}\" to `capabilities`)",
                    c.as_str(),
                    c.as_str()
                ));
            }
            None => return Err(format!("imports `{import}`, which this host does not provide")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_the_clock_is_now_ms() {
        for c in ALL {
            assert_eq!(Capability::parse(c.as_str()), Some(c));
        }
        assert_eq!(Capability::of_function("now-ms"), Some(Capability::Clock));
        assert_eq!(Capability::parse("network"), None);
    }
}
