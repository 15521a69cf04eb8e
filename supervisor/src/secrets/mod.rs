//! Agents' secrets: an age-encrypted file under the state dir, readable only with the node's
//! key, managed with `clawkeep secrets set|list|rm`, and handed to each sandbox at start
//! (files on a tmpfs at /run/secrets, or environment variables) without ever touching a disk,
//! config.json, a log or the knowledge store.

pub mod inject;
pub mod store;

use std::path::PathBuf;

pub use clawkeep_sandbox::secrets::{Payload, Value, SECRETS_DIR};
pub use store::Store;

/// Largest secret value accepted, in bytes (they live in memory and on a small tmpfs).
pub const MAX_VALUE: usize = 64 * 1024;

pub use crate::fleet::secrets::{is_secret_name, SecretsAs};

/// What can go wrong with secrets. Messages name the file and never a value.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
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
    /// The secrets file exists but the node key does not.
    #[error("{file} exists but its key {key} does not (hint: restore node.key from backup; without it the secrets are lost: move secrets.age away and set them again)")]
    KeyMissing {
        /// The node key.
        key: PathBuf,
        /// The secrets file.
        file: PathBuf,
    },
    /// The node key is not an age X25519 identity.
    #[error("{key} is not an age identity: {reason} (hint: restore node.key from backup)")]
    KeyInvalid {
        /// The node key.
        key: PathBuf,
        /// Why.
        reason: String,
    },
    /// The node key can be read by others than root.
    #[error("{key} has mode {mode:o}, readable by others than its owner (hint: chmod 600 {key})")]
    KeyMode {
        /// The node key.
        key: PathBuf,
        /// Its mode.
        mode: u32,
    },
    /// The key does not open the secrets file.
    #[error("{key} cannot decrypt {file}: {reason} (hint: the key was replaced; restore node.key from backup)")]
    Decrypt {
        /// The node key.
        key: PathBuf,
        /// The secrets file.
        file: PathBuf,
        /// age's reason.
        reason: String,
    },
    /// Encrypting failed.
    #[error("encrypt {file}: {reason}")]
    Encrypt {
        /// The secrets file.
        file: PathBuf,
        /// age's reason.
        reason: String,
    },
    /// The decrypted content is not what clawkeep writes.
    #[error("{file} decrypts but is not a secrets map: {reason} (hint: restore it from backup, or move it away and set the secrets again)")]
    Corrupt {
        /// The secrets file.
        file: PathBuf,
        /// The JSON error.
        reason: String,
    },
    /// A secret name that cannot be an environment variable or file name.
    #[error("secret name {0:?} is not valid (hint: use letters, digits and '_', not starting with a digit, e.g. matrix_token)")]
    BadName(String),
    /// An agent name that is not a DNS label.
    #[error("agent name {0:?} is not valid (hint: agent names are DNS labels: lowercase letters, digits and '-')")]
    BadAgent(String),
    /// An empty value.
    #[error("the value of {agent}/{name} is empty (hint: pipe the value on stdin, e.g. printf %s \"$TOKEN\" | clawkeep secrets set {agent} {name})")]
    Empty {
        /// The agent.
        agent: String,
        /// The secret.
        name: String,
    },
    /// A value larger than [`MAX_VALUE`].
    #[error("the value of {agent}/{name} has {len} bytes, more than {MAX_VALUE} (hint: secrets are tokens and keys; keep large files elsewhere)")]
    TooLarge {
        /// The agent.
        agent: String,
        /// The secret.
        name: String,
        /// Its size.
        len: usize,
    },
    /// Secrets the fleet file declares for an agent that were never set.
    #[error("agent {agent}: secret {names} declared in the fleet file but not set in {file} (hint: {hint})", names = names.join(", "), hint = set_hint(agent, names))]
    Missing {
        /// The agent.
        agent: String,
        /// The secrets not set.
        names: Vec<String>,
        /// The secrets file.
        file: PathBuf,
    },
}

fn set_hint(agent: &str, names: &[String]) -> String {
    let cmds: Vec<String> = names
        .iter()
        .map(|n| format!("clawkeep secrets set {agent} {n}"))
        .collect();
    format!("set it with `{}`, value on stdin", cmds.join("`, `"))
}
