//! How far a sync pass (or a migration) has got, in files and bytes done of those planned,
//! readable by another task while it runs: `clawkeep sync push|pull` and `clawkeep store
//! migrate` show it with a rate and an estimate of the time left.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

/// What a pass is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Reading the directory and the store's newest snapshot, planning.
    Planning,
    /// Uploading the contents the bucket lacks.
    Uploading,
    /// Making the plain, readable copies from the uploaded contents (server-side).
    Copying,
    /// Deleting plain objects removed here.
    Deleting,
    /// Downloading the store's changes.
    Downloading,
    /// Writing the snapshot and the local state.
    Finishing,
}

impl Stage {
    const ALL: [Stage; 6] = [
        Stage::Planning,
        Stage::Uploading,
        Stage::Copying,
        Stage::Deleting,
        Stage::Downloading,
        Stage::Finishing,
    ];

    /// The word the progress line shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Planning => "planning",
            Stage::Uploading => "uploading",
            Stage::Copying => "copying",
            Stage::Deleting => "deleting",
            Stage::Downloading => "downloading",
            Stage::Finishing => "finishing",
        }
    }
}

/// A pass's counters; share it (in an `Arc`) with whoever shows them.
#[derive(Debug, Default)]
pub struct PassProgress {
    stage: AtomicU8,
    files_total: AtomicU64,
    files_done: AtomicU64,
    bytes_total: AtomicU64,
    bytes_done: AtomicU64,
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProgressSnapshot {
    /// What the pass is doing.
    pub stage: Stage,
    /// Files (uploads, copies, deletions, downloads) done so far.
    pub files_done: u64,
    /// Files planned (0 while planning).
    pub files_total: u64,
    /// Bytes uploaded and downloaded so far.
    pub bytes_done: u64,
    /// Bytes planned.
    pub bytes_total: u64,
}

impl PassProgress {
    /// Counters at zero, planning.
    pub fn new() -> Self {
        Self::default()
    }

    /// What they say now.
    pub fn snapshot(&self) -> ProgressSnapshot {
        let stage = Stage::ALL
            .get(usize::from(self.stage.load(Ordering::Relaxed)))
            .copied()
            .unwrap_or(Stage::Finishing);
        ProgressSnapshot {
            stage,
            files_done: self.files_done.load(Ordering::Relaxed),
            files_total: self.files_total.load(Ordering::Relaxed),
            bytes_done: self.bytes_done.load(Ordering::Relaxed),
            bytes_total: self.bytes_total.load(Ordering::Relaxed),
        }
    }

    /// Say what the work is doing now.
    pub fn stage(&self, stage: Stage) {
        let i = Stage::ALL.iter().position(|s| *s == stage).unwrap_or(0);
        self.stage.store(i as u8, Ordering::Relaxed);
    }

    /// The work planned: `files` files of `bytes` bytes in all.
    pub fn plan(&self, files: u64, bytes: u64) {
        self.files_total.store(files, Ordering::Relaxed);
        self.bytes_total.store(bytes, Ordering::Relaxed);
    }

    /// More work found (the next bucket of a migration, listed).
    pub fn plan_more(&self, files: u64, bytes: u64) {
        self.files_total.fetch_add(files, Ordering::Relaxed);
        self.bytes_total.fetch_add(bytes, Ordering::Relaxed);
    }

    /// One file done, of `bytes` bytes.
    pub fn done(&self, bytes: u64) {
        self.files_done.fetch_add(1, Ordering::Relaxed);
        self.bytes_done.fetch_add(bytes, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_snapshot_says_the_stage_and_the_counts() {
        let p = PassProgress::new();
        assert_eq!(p.snapshot().stage, Stage::Planning);
        p.plan(3, 300);
        p.stage(Stage::Downloading);
        p.done(100);
        p.done(50);
        let s = p.snapshot();
        assert_eq!(s.stage, Stage::Downloading);
        assert_eq!((s.files_done, s.files_total), (2, 3));
        assert_eq!((s.bytes_done, s.bytes_total), (150, 300));
    }
}
