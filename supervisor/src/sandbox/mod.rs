//! The agent sandbox: an OCI bundle generated per agent, and clawkeep's own launcher for it
//! (namespaces, pivot_root into a read-only rootfs, cgroup limits, no capabilities, seccomp,
//! and a tiny init as PID 1 inside).

pub mod bundle;
pub mod cgroup;
pub mod init;
pub mod launch;
pub mod mounts;
pub mod run;
pub mod seccomp;
pub mod status;

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
    /// The agent's secrets could not be read or handed over.
    #[error(transparent)]
    Secrets(#[from] crate::secrets::SecretsError),
    /// A step of the sandbox init failed.
    #[error("{0}")]
    Init(String),
}
