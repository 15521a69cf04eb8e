//! What can stop stage 1, each with what to do about it.

use std::path::PathBuf;

/// Why stage 1 cannot hand over to the root filesystem's init.
#[derive(Debug, thiserror::Error)]
pub enum Stage1Error {
    /// A kernel command-line word stage 1 cannot use.
    #[error("kernel command line: {word} (hint: {hint})")]
    Cmdline {
        /// The word (or what is missing).
        word: String,
        /// How to write it.
        hint: &'static str,
    },
    /// The root device did not appear in time.
    #[error("root device {spec} did not appear within {secs} s; block devices seen: {seen} (hint: {hint})")]
    NoRoot {
        /// What `root=` asked for.
        spec: String,
        /// How long stage 1 waited.
        secs: u64,
        /// The block devices there were.
        seen: String,
        /// What to check.
        hint: &'static str,
    },
    /// A system call on a path failed.
    #[error("{what} {path}: {source} (hint: {hint})")]
    Sys {
        /// What stage 1 was doing.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: nix::Error,
        /// What to check.
        hint: &'static str,
    },
    /// Reading a file failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What stage 1 was doing.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}
