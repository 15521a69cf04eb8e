//! The mark that binds a sync state to the directory it describes. The sync state (the last
//! agreed snapshot) lives apart from the directory, so a directory that is new, replaced, or
//! put back from an older copy would otherwise look like one whose files were deleted. An id
//! and a generation are kept both in the state and on the directory itself, as a `trusted.`
//! extended attribute: only root on the host can read or set it (never the agent inside its
//! sandbox), it stays with the directory's inode, and it is gone when the directory is made
//! anew. A backup that carries it carries an older generation. Only a pass whose state and
//! directory carry the same mark trusts the state; any other merges without deleting.
//!
//! Where the syncer is not root (an agent's pod on Kubernetes, where the sync sidecar runs as
//! the agent's own uid) the mark is the `user.` attribute [`XATTR_USER`] instead. The agent
//! could set that one too: there it tells a new or restored volume from the agreed one, not
//! the agent from its syncer (an agent may delete its own files anyway, and deletions of a
//! large share of its brain are held until someone confirms them).

use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use clawkeep_beneath::Beneath;

/// The extended attribute on the synced directory.
pub const XATTR: &str = "trusted.clawkeep.sync";

/// The attribute an unprivileged syncer keeps instead (see the module's notes).
pub const XATTR_USER: &str = "user.clawkeep.sync";

/// One directory's identity and how many agreed states it has had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    /// Random, made when a directory is first agreed with the store.
    pub id: String,
    /// Raised by every pass that changes what both sides agree on.
    pub generation: u64,
}

impl Mark {
    /// A new identity, generation 1.
    pub fn new() -> Self {
        Mark {
            id: format!("{:032x}", rand::random::<u128>()),
            generation: 1,
        }
    }

    /// The same identity, one generation on.
    pub fn next(&self) -> Self {
        Mark {
            id: self.id.clone(),
            generation: self.generation + 1,
        }
    }

    fn encode(&self) -> Vec<u8> {
        format!("v1 {} {}", self.id, self.generation).into_bytes()
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut parts = text.split(' ');
        if parts.next()? != "v1" {
            return None;
        }
        let id = parts.next()?.to_string();
        let generation = parts.next()?.parse().ok()?;
        if parts.next().is_some() || id.is_empty() {
            return None;
        }
        Some(Mark { id, generation })
    }
}

impl Default for Mark {
    fn default() -> Self {
        Mark::new()
    }
}

fn unsupported(dir: &Path, name: &str, e: io::Error) -> StoreError {
    if e.raw_os_error() == Some(rustix::io::Errno::NOTSUP.raw_os_error()) {
        StoreError::Refused(format!(
            "{}: its filesystem keeps no extended attributes, which clawkeep needs to tell this \
             directory from a new or restored one before it deletes anything in the store; put \
             the state dir on ext4, xfs, btrfs or tmpfs",
            dir.display()
        ))
    } else {
        let op = if name == XATTR_USER {
            "read or set the sync mark (user.clawkeep.sync) of"
        } else {
            "read or set the sync mark (trusted.clawkeep.sync) of"
        };
        StoreError::io(op, dir, e)
    }
}

/// The mark kept as attribute `name` ([`XATTR`] or [`XATTR_USER`]) on the open directory
/// `within` (at `dir`, for messages); `None` when it has none, or one that is not ours.
pub fn read(within: &Beneath, dir: &Path, name: &str) -> Result<Option<Mark>, StoreError> {
    match within.root_xattr(name) {
        Ok(v) => Ok(v.as_deref().and_then(Mark::decode)),
        Err(e) => Err(unsupported(dir, name, e)),
    }
}

/// Put `mark` on the open directory `within` (at `dir`, for messages) as attribute `name`.
pub fn write(within: &Beneath, dir: &Path, name: &str, mark: &Mark) -> Result<(), StoreError> {
    within
        .set_root_xattr(name, &mark.encode())
        .map_err(|e| unsupported(dir, name, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_round_trips_and_a_foreign_value_is_no_mark() {
        for name in [XATTR, XATTR_USER] {
            let d = tempfile::tempdir().unwrap();
            let within = Beneath::open(d.path()).unwrap();
            assert_eq!(read(&within, d.path(), name).unwrap(), None);
            let m = Mark::new();
            write(&within, d.path(), name, &m).unwrap();
            assert_eq!(read(&within, d.path(), name).unwrap(), Some(m.clone()));
            let other = if name == XATTR { XATTR_USER } else { XATTR };
            assert_eq!(
                read(&within, d.path(), other).unwrap(),
                None,
                "{name} is its own"
            );
            let n = m.next();
            assert_eq!((n.id.as_str(), n.generation), (m.id.as_str(), 2));
            within.set_root_xattr(name, b"v1 only-an-id").unwrap();
            assert_eq!(read(&within, d.path(), name).unwrap(), None);
            within.set_root_xattr(name, b"v9 x 1").unwrap();
            assert_eq!(read(&within, d.path(), name).unwrap(), None);
        }
    }

    #[test]
    fn a_directory_made_anew_at_the_same_path_has_no_mark() {
        let d = tempfile::tempdir().unwrap();
        let home = d.path().join("home");
        std::fs::create_dir(&home).unwrap();
        write(&Beneath::open(&home).unwrap(), &home, XATTR, &Mark::new()).unwrap();
        std::fs::remove_dir(&home).unwrap();
        std::fs::create_dir(&home).unwrap();
        assert_eq!(
            read(&Beneath::open(&home).unwrap(), &home, XATTR).unwrap(),
            None
        );
    }
}
