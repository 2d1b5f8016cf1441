//! Reading a plugin manifest's `[settings]` the way the host hands them to a
//! plugin (the host's manifest loader and the native test harness share this;
//! it lives in `palisade-vocab`).

pub use palisade_vocab::manifest::{setting_text, settings};
