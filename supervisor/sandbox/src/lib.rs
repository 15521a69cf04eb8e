//! The agent sandbox: an OCI bundle generated per agent, and clawkeep's own launcher for it
//! (namespaces, pivot_root into a read-only rootfs, cgroup limits, no capabilities, seccomp,
//! and a tiny init as PID 1 inside), with the system calls they need.
//!
//! This crate depends on no other crate of the workspace, and it is the only one that may
//! hold `unsafe` code: all of it is in [`sys`], each block with a `// SAFETY:` note. The
//! supervisor decides *what* runs (from the fleet file); this crate knows *how* to run it.

pub mod bundle;
pub mod cgroup;
pub mod exec;
pub mod init;
pub mod launch;
pub mod mounts;
pub mod netns;
pub mod quota;
pub mod run;
pub mod seccomp;
pub mod secrets;
pub mod special_files;
pub mod status;
pub mod sys;
pub mod system_root;

use std::path::PathBuf;

/// What can go wrong while building or running a sandbox.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The OCI spec could not be built or is not something clawkeep can run.
    #[error("sandbox spec: {0}")]
    Spec(String),
    /// A file operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What clawkeep was doing.
        what: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A mount inside the sandbox failed.
    #[error("mount {target}: {reason}")]
    Mount {
        /// Destination inside the sandbox.
        target: PathBuf,
        /// Why.
        reason: String,
    },
    /// A cgroup operation failed.
    #[error("cgroup {path}: {reason}")]
    Cgroup {
        /// cgroup path relative to the hierarchy roots.
        path: String,
        /// Why.
        reason: String,
    },
    /// The seccomp filter could not be built or installed.
    #[error("seccomp: {0}")]
    Seccomp(String),
    /// Creating the process failed.
    #[error(transparent)]
    Spawn(#[from] crate::sys::SpawnError),
    /// The agent's secrets could not be handed over.
    #[error("pass secrets to the sandbox: {0}")]
    Secrets(String),
    /// The agent's disk limit could not be set.
    #[error("disk limit: {0}")]
    Quota(#[from] crate::quota::QuotaError),
    /// A step of the sandbox init failed.
    #[error("{0}")]
    Init(String),
}
