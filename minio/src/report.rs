//! What a sync pass did and left undone, for `clawkeep sync status`, `sync push` and logs.

use serde::{Deserialize, Serialize};

/// How many paths a report lists where it also gives a count.
pub const LISTED: usize = 20;

/// What a pass did, for `clawkeep sync status` and logs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncReport {
    /// The snapshot both sides agree on after the pass.
    pub snapshot: Option<String>,
    /// Whether this pass wrote that snapshot.
    pub pushed: bool,
    /// Files uploaded (new content).
    pub uploaded: usize,
    /// Bytes uploaded.
    pub uploaded_bytes: u64,
    /// Files written locally from the store.
    pub downloaded: usize,
    /// Plain objects deleted from the bucket.
    pub deleted_remote: usize,
    /// Local files deleted because the store deleted them.
    pub deleted_local: usize,
    /// Remote deletions left for the next pass by the per-pass cap.
    pub deferred_deletes: usize,
    /// Conflict copies written, as `path -> copy`.
    pub conflicts: Vec<String>,
    /// Keys in the bucket refused on pull, with the reason.
    pub refused: Vec<String>,
    /// Local entries not synced (symlinks, special files), with the reason.
    pub skipped: Vec<String>,
    /// Files that could not be synced this pass and are retried on the next.
    pub failed: Vec<String>,
    /// Files that changed while they were being uploaded: they go up on the next pass (the
    /// change that made them differ also schedules it). Not a failure.
    #[serde(default)]
    pub retry: Vec<String>,
    /// Why this pass did not take the last agreed snapshot as its base, if it did not: it then
    /// merged the directory and the store without deleting anything on either side.
    #[serde(default)]
    pub rebased: Option<String>,
    /// Deletions in the store this pass held back until someone confirms them.
    #[serde(default)]
    pub held: Option<Held>,
    /// The paths this pass deleted in the store, the first [`LISTED`] in order
    /// (`deleted_remote` counts them all).
    #[serde(default)]
    pub deleted: Vec<String>,
    /// The time of the snapshot this pass started from (RFC 3339): `clawkeep restore NAME --at`
    /// that time undoes the pass.
    #[serde(default)]
    pub restore_at: Option<String>,
    /// Files this pass left out for being larger than the sync's `max_file_size`, the first
    /// [`LISTED`] by path (`too_big_count` counts them all). Neither side's copy of them is
    /// changed or deleted for it; they sync again once they fit.
    #[serde(default)]
    pub too_big: Vec<TooBig>,
    /// How many files this pass left out for being too big.
    #[serde(default)]
    pub too_big_count: usize,
    /// Those of them the pass before did not leave out, the first [`LISTED`]
    /// (`too_big_new_count` counts them all): what to tell someone, once.
    #[serde(default)]
    pub too_big_new: Vec<TooBig>,
    /// How many files this pass left out for being too big for the first time.
    #[serde(default)]
    pub too_big_new_count: usize,
}

/// A file a pass left out because it is larger than the sync's `max_file_size`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TooBig {
    /// Its path in the directory and key in the bucket.
    pub path: String,
    /// Its size in bytes: a local file's apparent size (a sparse file counts in full, and is
    /// never read), or the size the store gives for its version.
    pub size: u64,
    /// Whether the version over the limit is the store's (not downloaded) rather than this
    /// directory's (not uploaded).
    pub in_store: bool,
}

impl SyncReport {
    /// Whether nothing is left for a later pass to retry. Held deletions wait for a person,
    /// not for a retry, so they do not count.
    pub fn complete(&self) -> bool {
        self.deferred_deletes == 0 && self.failed.is_empty()
    }
}

/// Deletions a pass did not make because they would remove too much of what the store holds
/// (or the directory is empty); they wait for `clawkeep sync push NAME --allow-deletes`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    /// Why they are held.
    pub reason: String,
    /// Files that would be deleted.
    pub count: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Files the store holds now.
    pub of_files: usize,
    /// Bytes the store holds now.
    pub of_bytes: u64,
    /// The first of them.
    pub paths: Vec<String>,
}

/// The last pass that deleted files in the store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deletions {
    /// When (RFC 3339).
    pub at: String,
    /// How many files.
    pub count: usize,
    /// The first of them.
    pub paths: Vec<String>,
    /// The newest snapshot that still had them: `restore --at` this time brings them back.
    pub restore_at: Option<String>,
}

/// `n bytes` the way people read sizes.
pub fn size(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(size(12), "12 B");
        assert_eq!(size(3 << 20), "3.0 MiB");
        assert_eq!(size(1536), "1.5 KiB");
    }
}
