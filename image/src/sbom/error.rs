//! Errors of writing the SBOM; each names the file it concerns and what to do about it.

use std::path::PathBuf;

use crate::runtime::RuntimeError;

/// What went wrong writing the SBOM.
#[derive(Debug, thiserror::Error)]
pub enum SbomError {
    /// A local file operation failed.
    #[error(transparent)]
    Io(#[from] crate::io_error::IoError),
    /// The runtime's `bundle.json` could not be read.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// An input the SBOM describes is not what it should be.
    #[error("{path}: {message} ({hint})")]
    BadInput {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
        /// What to do.
        hint: &'static str,
    },
    /// The document built fails SPDX's structural rules (a bug).
    #[error("the SBOM is not valid SPDX 2.3:\n{}\n(a bug in clawkeep's SBOM writer; please report it)", .problems.join("\n"))]
    Invalid {
        /// One line per broken rule.
        problems: Vec<String>,
    },
}

impl SbomError {
    /// An [`SbomError::Io`] for `path`.
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        crate::io_error::on(op, path)
    }
}
