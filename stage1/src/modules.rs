//! Loading the kernel modules the initramfs lists (`/stage1.modules`: one absolute path a
//! line, dependencies first, as `clawkeep image build` resolved them from `modules.dep`).

use std::ffi::CString;
use std::fs::{self, File};
use std::path::Path;

use nix::errno::Errno;
use nix::kmod::{finit_module, ModuleInitFlags};

use crate::error::Stage1Error;

/// How loading one module went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Now in the kernel.
    Loaded,
    /// Already there (built in, or loaded before).
    Already,
    /// The kernel refused it: the message says why. Stage 1 goes on (a crc32c variant the
    /// CPU lacks is refused with ENODEV, and the generic one does the work).
    Failed(String),
}

/// The module paths listed in `list` (blank lines and `#` comments skipped).
pub fn read_list(list: &Path) -> Result<Vec<String>, Stage1Error> {
    let text = fs::read_to_string(list).map_err(|source| Stage1Error::Io {
        what: "read the module list",
        path: list.to_path_buf(),
        source,
    })?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect())
}

/// Loads the module file at `path`.
pub fn load(path: &str) -> Outcome {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) => return Outcome::Failed(format!("cannot open: {e}")),
    };
    // An empty C string cannot hold a NUL: this cannot fail.
    let no_params = CString::default();
    match finit_module(&file, &no_params, ModuleInitFlags::empty()) {
        Ok(()) => Outcome::Loaded,
        Err(Errno::EEXIST) => Outcome::Already,
        Err(e) => Outcome::Failed(e.desc().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_read_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("stage1.modules");
        fs::write(
            &list,
            "/lib/modules/k/a.ko\n\n# soft dependency\n/lib/modules/k/b.ko\n",
        )
        .unwrap();
        assert_eq!(
            read_list(&list).unwrap(),
            ["/lib/modules/k/a.ko", "/lib/modules/k/b.ko"]
        );
        let e = read_list(&dir.path().join("none")).unwrap_err().to_string();
        assert!(e.contains("none"), "{e}");
    }

    #[test]
    fn a_missing_module_file_is_reported_not_fatal() {
        assert!(
            matches!(load("/nonexistent/x.ko"), Outcome::Failed(m) if m.contains("cannot open"))
        );
    }
}
