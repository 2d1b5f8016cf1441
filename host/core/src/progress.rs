//! Progress bars on stderr for long CLI work (imports, evaluation, load), one
//! style for all of them. Hidden when stderr is not a terminal (indicatif's own
//! rule), so logs and CI output stay clean.

use indicatif::{ProgressBar, ProgressStyle};

/// A bar for `total` items of work called `what`, with rate and time left.
pub fn bar(what: &str, total: u64) -> ProgressBar {
    let style = ProgressStyle::with_template("{msg:<22} [{bar:30}] {percent:>3}%  {pos}/{len}  {per_sec}  eta {eta}")
        .expect("a valid template")
        .progress_chars("#>.");
    ProgressBar::new(total).with_style(style).with_message(what.to_string())
}
