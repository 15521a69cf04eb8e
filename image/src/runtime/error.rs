//! Errors of preparing and installing the runtime; each names the file, command or version
//! it concerns and what to do about it.

use std::path::PathBuf;

/// What went wrong preparing or installing a runtime bundle.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// A local file operation failed.
    #[error(transparent)]
    Io(#[from] crate::io_error::IoError),
    /// An external command (npm, node) could not be run or failed.
    #[error("`{command}` failed: {message} ({hint})")]
    Command {
        /// The command line, shortened.
        command: String,
        /// Exit status and the tail of its output.
        message: String,
        /// What to check.
        hint: String,
    },
    /// The registry or npm answered something this code cannot use.
    #[error("{what}: {message} ({hint})")]
    Unexpected {
        /// What was being read.
        what: String,
        /// What was wrong with it.
        message: String,
        /// What to check.
        hint: &'static str,
    },
    /// The Node version asked for does not satisfy OpenClaw's `engines.node`.
    #[error(transparent)]
    EnginesMismatch(Box<EnginesMismatch>),
    /// `--out` already holds something.
    #[error(
        "{path} already exists and is not empty (give a new --out directory, or remove this one)"
    )]
    OutNotEmpty {
        /// The directory.
        path: PathBuf,
    },
    /// `bundle.json` is missing or unreadable.
    #[error("bundle manifest {path} is not valid: {message} (is this a directory written by `clawkeep runtime prepare`?)")]
    BadManifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// Files of the bundle do not match its manifest; nothing was installed.
    #[error(
        "bundle {bundle} is corrupt, nothing was installed:\n{}\n(copy the bundle again, or prepare a new one with `clawkeep runtime prepare`)",
        .problems.join("\n")
    )]
    Corrupt {
        /// The bundle directory.
        bundle: PathBuf,
        /// One line per bad file, each naming it.
        problems: Vec<String>,
    },
}

impl RuntimeError {
    /// An [`RuntimeError::Io`] for `path`.
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        crate::io_error::on(op, path)
    }
}

/// A Node version that does not satisfy OpenClaw's `engines.node`, with the majors that do.
#[derive(Debug, thiserror::Error)]
#[error(
    "openclaw {openclaw} needs Node {range} (its engines.node), but node@{asked} is Node {node}, which does not satisfy it; Node majors that fit: {fits} (hint: pass --node {suggest})"
)]
pub struct EnginesMismatch {
    /// The OpenClaw version.
    pub openclaw: String,
    /// Its `engines.node` range.
    pub range: String,
    /// What was asked for (`--node`).
    pub asked: String,
    /// The exact Node version that resolved to.
    pub node: String,
    /// The majors that fit, each with the oldest version that does.
    pub fits: String,
    /// A `--node` value that would work.
    pub suggest: String,
}
