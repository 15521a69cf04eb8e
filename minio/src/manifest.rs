//! Manifests: the remote snapshot written once per push (path → content hash at that moment)
//! and the local sync state (what the last pass agreed on, plus a hash cache), saved atomically.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::error::StoreError;

/// One file's content as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    /// sha256 of the content, lowercase hex; the blob key's last part.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// Paths to contents: one consistent state of a synced directory.
pub type FileMap = BTreeMap<String, FileRef>;

/// `.clawkeep/snapshots/<id>.json`: the directory as it was at one push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Format version (1).
    pub version: u32,
    /// Sortable id: UTC time then a random suffix.
    pub id: String,
    /// When it was taken (RFC 3339, UTC).
    pub time: String,
    /// Who pushed it (agent name, `clone`, `restore`, ...).
    pub origin: String,
    /// The snapshot its writer merged with (the bucket's newest when it pushed), if any: the
    /// line of history a pass follows to tell a deletion from a store that moved on without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Every file.
    pub files: FileMap,
}

impl Snapshot {
    /// A new snapshot taken now, after `newest` (the bucket's newest snapshot id, whose time it
    /// never goes before: see [`next_id`]) and merged with `parent`.
    pub fn new(origin: &str, files: FileMap, newest: Option<&str>, parent: Option<String>) -> Self {
        let now = SystemTime::now();
        Snapshot {
            version: 1,
            id: next_id(now, newest),
            time: humantime::format_rfc3339_micros(now).to_string(),
            origin: origin.to_string(),
            parent,
            files,
        }
    }

    /// Its key in the bucket.
    pub fn key(&self) -> String {
        format!("{}{}.json", crate::keys::SNAPSHOT_PREFIX, self.id)
    }
}

/// A snapshot id for `t`: `20261129T103032.123456Z-1a2b`, so ids sort by time.
pub fn new_id(t: SystemTime) -> String {
    let stamp: String = humantime::format_rfc3339_micros(t)
        .to_string()
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    format!("{stamp}-{:04x}", rand::random::<u16>())
}

/// The id of a snapshot taken at `now` after the snapshot `newest`: stamped `now`, unless
/// that is not after `newest`'s time (the node's clock was set back, or another writer's runs
/// ahead), in which case it is stamped one microsecond after it. Ids therefore sort in the
/// order pushes were made whatever the clock does, and `restore --at` compares against these
/// stamps.
pub fn next_id(now: SystemTime, newest: Option<&str>) -> String {
    let floor = newest
        .and_then(id_time)
        .map(|t| t + std::time::Duration::from_micros(1));
    match floor {
        Some(f) if f > now => new_id(f),
        _ => new_id(now),
    }
}

/// Whether `id` has the shape of the ids clawkeep writes (`20261129T103032.123456Z-1a2b`).
/// Other names under `.clawkeep/snapshots/` (planted, or left by a tool) are not history: one
/// that sorts after every real id would otherwise pin the newest snapshot forever.
pub fn is_snapshot_id(id: &str) -> bool {
    let Some((stamp, suffix)) = id.split_once('-') else {
        return false;
    };
    stamp.len() == 23
        && suffix.len() == 4
        && suffix
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && id_time(id).is_some()
}

/// The time encoded in a snapshot id, if it is one of ours.
pub fn id_time(id: &str) -> Option<SystemTime> {
    let stamp = id.split('-').next()?;
    // 20261129T103032.123456Z -> 2026-11-29T10:30:32.123456Z
    // ASCII only: the name comes from a bucket listing anyone with write access shapes, and
    // the slices below are by byte (a multi-byte character across one panicked, found by
    // scripts/fuzz).
    if stamp.len() < 16 || !stamp.is_ascii() {
        return None;
    }
    let (d, t) = (&stamp[..8], &stamp[9..]);
    let text = format!(
        "{}-{}-{}T{}:{}:{}",
        &d[..4],
        &d[4..6],
        &d[6..8],
        t.get(..2)?,
        t.get(2..4)?,
        t.get(4..)?
    );
    humantime::parse_rfc3339(&text).ok()
}

/// What the last pass saw of one local file, to skip rehashing unchanged files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i128,
    /// Content hash.
    pub sha256: String,
}

/// The local sync state of one directory, kept outside it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalState {
    /// Bucket this directory syncs with.
    pub bucket: String,
    /// Snapshot both sides agreed on at the end of the last pass.
    pub base_id: Option<String>,
    /// Its files (the merge base).
    pub base: FileMap,
    /// Hash cache by path.
    pub seen: BTreeMap<String, Seen>,
    /// When the last pass finished (RFC 3339).
    pub last_sync: Option<String>,
    /// What the last pass could not do (deferred deletions, refused keys, ...).
    pub last_report: Option<crate::sync::SyncReport>,
    /// The directory's identity as the last agreed pass left it (also on the directory: see
    /// [`crate::mark`]); `None` until a pass has agreed with the store.
    #[serde(default)]
    pub mark: Option<crate::mark::Mark>,
    /// The last pass that deleted files in the store, for `sync status`.
    #[serde(default)]
    pub last_deletions: Option<crate::sync::Deletions>,
    /// Paths the last agreed pass left out for being larger than `max_file_size`, each with
    /// the base it had then (`None`: none). `base` holds the store's version of them, which
    /// this directory never agreed to: the merge takes this one instead, so a file left out
    /// never looks deleted, here or there. Also how a pass tells which ones are new.
    #[serde(default)]
    pub left_out: BTreeMap<String, Option<FileRef>>,
}

impl LocalState {
    /// Read the state at `path`; a missing file is a fresh start. A damaged file is moved
    /// aside and also treated as a fresh start: the next pass merges both sides in full and
    /// keeps conflicting copies, so nothing is lost.
    pub fn load(path: &Path, bucket: &str) -> Result<Self, StoreError> {
        match std::fs::read(path) {
            Ok(bytes) => match serde_json::from_slice::<LocalState>(&bytes) {
                Ok(s) if s.bucket == bucket => Ok(s),
                Ok(_) => Ok(LocalState {
                    bucket: bucket.into(),
                    ..Default::default()
                }),
                Err(e) => {
                    let aside = path.with_extension("corrupt");
                    tracing::warn!(path = %path.display(), error = %e, "sync state damaged; moved aside, merging both sides in full");
                    std::fs::rename(path, &aside)
                        .map_err(|e| StoreError::io("move aside", path, e))?;
                    Ok(LocalState {
                        bucket: bucket.into(),
                        ..Default::default()
                    })
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(LocalState {
                bucket: bucket.into(),
                ..Default::default()
            }),
            Err(e) => Err(StoreError::io("read sync state", path, e)),
        }
    }

    /// Write atomically: a temporary file, fsync, rename, fsync of the directory.
    pub fn save(&self, path: &Path) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(self).map_err(|e| StoreError::Corrupt {
            what: "sync state",
            place: path.display().to_string(),
            message: e.to_string(),
            hint: "this is a bug",
        })?;
        write_atomic(path, &bytes)
    }
}

/// Replace `path` with `bytes` so a crash leaves either the old or the new file, never half.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| StoreError::io("create", dir, e))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .map_err(|e| StoreError::io("create temporary file in", dir, e))?;
    tmp.write_all(bytes)
        .map_err(|e| StoreError::io("write", tmp.path().to_path_buf(), e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| StoreError::io("fsync", tmp.path().to_path_buf(), e))?;
    tmp.persist(path)
        .map_err(|e| StoreError::io("rename into place", path, e.error))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn ids_sort_by_time_and_give_it_back() {
        let t = humantime::parse_rfc3339("2026-11-20T10:00:00.250Z").unwrap();
        let a = new_id(t);
        let b = new_id(t + Duration::from_millis(1));
        assert!(a < b, "{a} !< {b}");
        assert!(a.starts_with("20261120T100000.250000Z-"), "{a}");
        assert_eq!(id_time(&a), Some(t));
    }

    #[test]
    fn only_ids_of_our_shape_are_history() {
        let t = humantime::parse_rfc3339("2026-11-20T10:00:00Z").unwrap();
        assert!(is_snapshot_id(&new_id(t)));
        for bad in [
            "zzzz",
            "20261120T100000.000000Z",
            "20261120T100000.000000Z-ZZZZ",
            "20261120T100000.000000Z-1a2b-x",
            "99999999T999999.999999Z-1a2b",
            "20261120T100000Z-1a2b",
        ] {
            assert!(!is_snapshot_id(bad), "{bad}");
        }
    }

    #[test]
    fn ids_follow_the_newest_even_when_the_clock_is_set_back() {
        let t = humantime::parse_rfc3339("2026-11-20T10:00:00Z").unwrap();
        let first = next_id(t, None);
        // The clock goes back a day: the next id still sorts after the first, a microsecond on.
        let day_before = t - Duration::from_secs(86400);
        let second = next_id(day_before, Some(&first));
        assert!(first < second, "{first} !< {second}");
        assert_eq!(id_time(&second), Some(t + Duration::from_micros(1)));
        let third = next_id(day_before + Duration::from_secs(60), Some(&second));
        assert!(second < third);
        // A clock that is right again stamps its own time.
        let later = t + Duration::from_secs(3600);
        assert_eq!(id_time(&next_id(later, Some(&third))), Some(later));
        // An id that is not ours sets no floor.
        assert_eq!(id_time(&next_id(t, Some("junk"))), Some(t));
        // Planted names with multi-byte characters where the stamp is sliced by byte.
        for planted in [
            "{\u{789}\u{460}awkegp/s\\\"0\\,id\u{7bd}\"20\\",
            "2026112\u{e9}T103032.123456Z-1a2b",
        ] {
            assert_eq!(id_time(planted), None, "{planted}");
            assert!(!is_snapshot_id(planted), "{planted}");
        }
    }

    #[test]
    fn a_damaged_state_is_moved_aside_not_fatal() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s.json");
        std::fs::write(&p, b"{\"bucket\": \"b\", \"base_id\": ").unwrap();
        let s = LocalState::load(&p, "b").unwrap();
        assert_eq!(s.base_id, None);
        assert!(d.path().join("s.corrupt").exists());
        let s = LocalState {
            bucket: "b".into(),
            base_id: Some("x".into()),
            ..Default::default()
        };
        s.save(&p).unwrap();
        assert_eq!(LocalState::load(&p, "b").unwrap(), s);
    }
}
