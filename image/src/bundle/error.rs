//! Errors of preparing and verifying an image bundle; each names the file or input it
//! concerns and what to do about it.

use std::fmt;
use std::path::PathBuf;

use super::manifest::{Role, MANIFEST};
use crate::runtime::RuntimeError;

/// What went wrong preparing or verifying an image bundle.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// A local file operation failed.
    #[error(transparent)]
    Io(#[from] crate::io_error::IoError),
    /// `image-bundle.json` is missing, unreadable or inconsistent.
    #[error("image bundle manifest {path} is not valid: {message} (is this a directory written by the image bundle's prepare step?)")]
    BadManifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// An input given to prepare is unusable.
    #[error("{role} input {path}: {message} ({hint})")]
    BadInput {
        /// The role it was given for.
        role: Role,
        /// The file or directory given.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
        /// What to give instead.
        hint: &'static str,
    },
    /// The output directory already holds something.
    #[error(
        "{path} already exists and is not empty (give a new bundle directory, or remove this one)"
    )]
    OutNotEmpty {
        /// The directory.
        path: PathBuf,
    },
    /// The agent runtime bundle given to prepare is itself not as its `bundle.json` says.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// Inputs of the bundle do not match `image-bundle.json`.
    #[error(
        "image bundle {bundle} does not match its {MANIFEST}:\n{}\n(hint: the bundle changed after it was prepared: copy the named files again from the machine that prepared it, or prepare the bundle again from the original inputs)",
        .problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n")
    )]
    Corrupt {
        /// The bundle directory.
        bundle: PathBuf,
        /// Every input that is not as pinned.
        problems: Vec<Problem>,
    },
}

impl BundleError {
    /// A [`BundleError::Io`] for `path`.
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        crate::io_error::on(op, path)
    }
}

/// One input of a bundle that is not as `image-bundle.json` pins it. Paths are relative to
/// the bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The file is not there.
    Missing {
        /// The file.
        path: String,
        /// The sha256 the manifest pins.
        expected: String,
    },
    /// The file's contents differ from what the manifest pins.
    Mismatch {
        /// The file.
        path: String,
        /// The sha256 the manifest pins.
        expected: String,
        /// The sha256 it has now.
        actual: String,
        /// The size the manifest pins.
        expected_size: u64,
        /// The size it has now.
        actual_size: u64,
    },
    /// A file of the agent runtime bundle, checked against the runtime's own `bundle.json`
    /// (its message names the file and both digests).
    Runtime {
        /// The runtime's directory in the bundle.
        dir: String,
        /// The runtime manifest's line about it.
        message: String,
    },
    /// A file the manifest does not list.
    Unlisted {
        /// The file.
        path: String,
    },
    /// Something that is not a regular file where the bundle holds only files.
    NotAFile {
        /// The entry.
        path: String,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Missing { path, expected } => {
                write!(f, "{path}: missing (expected sha256 {expected})")
            }
            Problem::Mismatch {
                path,
                expected,
                actual,
                expected_size,
                actual_size,
            } => {
                write!(
                    f,
                    "{path}: expected sha256 {expected}, actual sha256 {actual}"
                )?;
                if expected_size != actual_size {
                    write!(f, " ({actual_size} bytes, expected {expected_size})")?;
                }
                Ok(())
            }
            Problem::Runtime { dir, message } => write!(f, "{dir}/{message}"),
            Problem::Unlisted { path } => write!(f, "{path}: not listed in {MANIFEST}"),
            Problem::NotAFile { path } => {
                write!(f, "{path}: not a regular file (a bundle holds only files)")
            }
        }
    }
}
