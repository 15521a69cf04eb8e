//! `clawkeep.lock`: the digest of every input and every output of an image build, so
//! `clawkeep image verify out/` can tell whether anything under `out/` changed since.
//!
//! It is JSON (pretty, one trailing newline), written by serde from [`Lock`]:
//!
//! ```json
//! {
//!   "format": 1,
//!   "source_date_epoch": 1700000000,
//!   "inputs": [
//!     { "role": "kernel", "path": "kernel/linux-image-…_amd64.deb", "sha256": "…", "size": 70600000 },
//!     { "role": "runtime", "path": "runtime", "sha256": "<runtime bundle id>", "size": 290000000, "version": "2026.9.6" }
//!   ],
//!   "outputs": [
//!     { "path": "oci/blobs/sha256/…", "sha256": "…", "size": 1234 }
//!   ]
//! }
//! ```
//!
//! Inputs are the image bundle's manifest entries (paths relative to the bundle), sorted
//! by role, then path; outputs are every regular file under the output directory but the
//! lock itself (paths relative to it, `/`-separated), sorted by path. The same build gives
//! the same lock, byte for byte.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::bundle::{BundleManifest, Input};
use crate::digest::sha256_file;
use crate::runtime::tree;

/// File name of the lock inside the output directory.
pub const LOCK: &str = "clawkeep.lock";

/// Version of the lock layout this code writes and reads.
pub const FORMAT: u32 = 1;

/// One output file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Output {
    /// Its path relative to the output directory, `/`-separated.
    pub path: String,
    /// sha256 of its contents, lowercase hex.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// The lock of one build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    /// Layout version ([`FORMAT`]).
    pub format: u32,
    /// The build's one timestamp (seconds since the epoch): every mtime and creation time
    /// in the outputs.
    pub source_date_epoch: u64,
    /// Every input, as the image bundle pins it.
    pub inputs: Vec<Input>,
    /// Every output file.
    pub outputs: Vec<Output>,
}

/// What went wrong writing, reading or checking a lock.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// A local file operation failed.
    #[error(transparent)]
    Io(#[from] crate::io_error::IoError),
    /// The output directory could not be listed.
    #[error(transparent)]
    Tree(#[from] crate::runtime::RuntimeError),
    /// The lock file is missing or unreadable.
    #[error("lock file {path} is not valid: {message} (is this an output directory of `clawkeep image build`?)")]
    BadLock {
        /// The lock file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The output directory holds something that is not a regular file.
    #[error("{path}: not a regular file (an image build's outputs are files only; remove it)")]
    NotAFile {
        /// The entry.
        path: PathBuf,
    },
    /// Outputs differ from the lock.
    #[error(
        "{dir} does not match its {LOCK}:\n{}\n(hint: an output changed after the build: build again into a new directory, or copy the outputs again from where they were built)",
        .problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n")
    )]
    Mismatch {
        /// The output directory.
        dir: PathBuf,
        /// One line per changed, missing or unlisted file, each naming it with the
        /// expected and the actual digest.
        problems: Vec<String>,
    },
}

impl LockError {
    fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        crate::io_error::on(op, path)
    }
}

impl Lock {
    /// The lock of a build from `bundle` into `out_dir` with timestamp `epoch`: hashes every
    /// file under `out_dir` but the lock.
    pub fn new(bundle: &BundleManifest, out_dir: &Path, epoch: u64) -> Result<Self, LockError> {
        let mut inputs = bundle.inputs.clone();
        inputs.sort_by(|a, b| (a.role, &a.path).cmp(&(b.role, &b.path)));
        Ok(Self {
            format: FORMAT,
            source_date_epoch: epoch,
            inputs,
            outputs: hash_outputs(out_dir)?,
        })
    }

    /// Writes `out_dir/clawkeep.lock`; returns its bytes.
    pub fn write(&self, out_dir: &Path) -> Result<Vec<u8>, LockError> {
        let path = out_dir.join(LOCK);
        let mut bytes = serde_json::to_vec_pretty(self).map_err(|e| LockError::BadLock {
            path: path.clone(),
            message: format!("does not serialise: {e}"),
        })?;
        bytes.push(b'\n');
        fs::write(&path, &bytes).map_err(LockError::io("write", &path))?;
        Ok(bytes)
    }

    /// Reads `out_dir/clawkeep.lock`.
    pub fn load(out_dir: &Path) -> Result<Self, LockError> {
        let path = out_dir.join(LOCK);
        let bad = |message: String| LockError::BadLock {
            path: path.clone(),
            message,
        };
        let bytes = fs::read(&path).map_err(|e| bad(e.to_string()))?;
        let lock: Self = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
        if lock.format != FORMAT {
            return Err(bad(format!(
                "format {} (this clawkeep reads format {FORMAT})",
                lock.format
            )));
        }
        Ok(lock)
    }
}

/// Re-hashes every output under `out_dir` against its `clawkeep.lock`; a changed, missing
/// or unlisted file makes a [`LockError::Mismatch`] naming each with the expected and the
/// actual digest. Returns the lock when all match.
pub fn verify_outputs(out_dir: &Path) -> Result<Lock, LockError> {
    let lock = Lock::load(out_dir)?;
    let (files, others) = tree::list_files(out_dir)?;
    let mut problems = Vec::new();
    for out in &lock.outputs {
        let path = out_dir.join(&out.path);
        if files.binary_search(&out.path).is_err() {
            problems.push(format!(
                "{}: missing (expected sha256 {})",
                out.path, out.sha256
            ));
            continue;
        }
        let got = sha256_file(&path).map_err(LockError::io("read", &path))?;
        if got.sha256 != out.sha256 || got.size != out.size {
            let mut line = format!(
                "{}: expected sha256 {}, actual sha256 {}",
                out.path, out.sha256, got.sha256
            );
            if got.size != out.size {
                line.push_str(&format!(" ({} bytes, expected {})", got.size, out.size));
            }
            problems.push(line);
        }
    }
    for rel in files {
        if rel != LOCK && lock.outputs.binary_search_by(|o| o.path.cmp(&rel)).is_err() {
            problems.push(format!("{rel}: not listed in {LOCK}"));
        }
    }
    for rel in others {
        problems.push(format!("{rel}: not a regular file"));
    }
    if problems.is_empty() {
        Ok(lock)
    } else {
        Err(LockError::Mismatch {
            dir: out_dir.to_path_buf(),
            problems,
        })
    }
}

/// Every regular file under `out_dir` but the lock, sorted by path.
fn hash_outputs(out_dir: &Path) -> Result<Vec<Output>, LockError> {
    let (files, others) = tree::list_files(out_dir)?;
    if let Some(rel) = others.first() {
        return Err(LockError::NotAFile {
            path: out_dir.join(rel),
        });
    }
    files
        .into_iter()
        .filter(|rel| rel != LOCK)
        .map(|rel| {
            let path = out_dir.join(&rel);
            let d = sha256_file(&path).map_err(LockError::io("read", &path))?;
            Ok(Output {
                path: rel,
                sha256: d.sha256,
                size: d.size,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::Role;

    fn bundle() -> BundleManifest {
        let input = |role, path: &str| Input {
            role,
            path: path.into(),
            sha256: "b".repeat(64),
            size: 3,
            version: None,
        };
        BundleManifest::new(vec![
            input(Role::Runtime, "runtime"),
            input(Role::Clawkeep, "clawkeep/clawkeep"),
            input(Role::Stage1, "stage1/clawkeep-stage1"),
            input(Role::Kernel, "kernel/k_1_amd64.deb"),
            input(Role::BaseRootfs, "rootfs/base.tar"),
        ])
        .unwrap()
    }

    #[test]
    fn lists_outputs_sorted_and_names_every_difference() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        fs::create_dir_all(out.join("oci/blobs")).unwrap();
        fs::write(out.join("z.raw"), "disk").unwrap();
        fs::write(out.join("oci/blobs/a"), "blob").unwrap();
        fs::write(out.join("oci/index.json"), "{}").unwrap();
        let lock = Lock::new(&bundle(), out, 7).unwrap();
        let paths: Vec<&str> = lock.outputs.iter().map(|o| o.path.as_str()).collect();
        assert_eq!(paths, ["oci/blobs/a", "oci/index.json", "z.raw"]);
        let bytes = lock.write(out).unwrap();
        assert_eq!(
            Lock::new(&bundle(), out, 7).unwrap(),
            lock,
            "the lock excludes itself"
        );
        assert_eq!(lock.write(out).unwrap(), bytes);
        assert_eq!(verify_outputs(out).unwrap(), lock);

        fs::write(out.join("z.raw"), "disk!").unwrap();
        fs::remove_file(out.join("oci/index.json")).unwrap();
        fs::write(out.join("extra"), "").unwrap();
        let e = verify_outputs(out).unwrap_err();
        let LockError::Mismatch { problems, .. } = &e else {
            panic!("{e}")
        };
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].starts_with("oci/index.json: missing (expected sha256 44136fa3"));
        assert!(
            problems[1].starts_with("z.raw: expected sha256 "),
            "{}",
            problems[1]
        );
        assert!(
            problems[1].ends_with("(5 bytes, expected 4)"),
            "{}",
            problems[1]
        );
        assert_eq!(problems[2], "extra: not listed in clawkeep.lock");
    }
}
