//! Output directories: a step writes only into a directory that is new or empty, so
//! nothing of an earlier run is mistaken for its output.

use std::fs;
use std::io::{self, ErrorKind};
use std::path::Path;

/// True when `dir` does not exist or is an empty directory.
pub(crate) fn is_new_or_empty(dir: &Path) -> io::Result<bool> {
    match fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn new_and_empty_directories_only() {
        let dir = tempfile::tempdir().unwrap();
        assert!(super::is_new_or_empty(&dir.path().join("new")).unwrap());
        assert!(super::is_new_or_empty(dir.path()).unwrap());
        std::fs::write(dir.path().join("x"), "").unwrap();
        assert!(!super::is_new_or_empty(dir.path()).unwrap());
    }
}
