//! From text to a [`Fleet`], collecting every problem.

use std::path::Path;

use super::{Diagnostics, Fleet};

/// Parse and validate fleet text; `base_dir` resolves relative paths.
pub fn parse(file: &str, _text: &str, _base_dir: &Path) -> Result<Fleet, Diagnostics> {
    Err(Diagnostics {
        file: file.to_string(),
        items: vec![],
    })
}

/// Read, parse and validate a fleet file.
pub fn load(path: &Path) -> Result<Fleet, Diagnostics> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    parse(
        &path.display().to_string(),
        &text,
        path.parent().unwrap_or(Path::new(".")),
    )
}
