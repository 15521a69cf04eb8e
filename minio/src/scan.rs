//! Walking a synced directory: regular files inside the boundary, with content hashes reused
//! from the last pass when size and mtime are unchanged. Symlinks are never followed. A file
//! larger than the sync's `max_file_size` (by its apparent size: a sparse file counts in
//! full) is listed apart and never read, nor is one that grows past it while it is hashed.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use crate::boundary::Boundary;
use crate::error::StoreError;
use crate::manifest::{FileMap, FileRef, Seen};
use clawkeep_beneath::{Beneath, Kind};

/// A file found by a scan.
#[derive(Debug, Clone)]
pub struct Found {
    /// Size in bytes.
    pub size: u64,
    /// Modification time in nanoseconds.
    pub mtime_ns: i128,
    /// Content hash.
    pub sha256: String,
}

/// The result of a scan.
#[derive(Debug, Default)]
pub struct Scan {
    /// Files by key.
    pub files: BTreeMap<String, Found>,
    /// Entries left out and why (symlinks, devices, names that are not UTF-8).
    pub skipped: Vec<String>,
    /// Regular files larger than the limit, by key, with their size: not hashed, not read.
    pub too_big: BTreeMap<String, u64>,
}

impl Scan {
    /// Paths and contents, as a snapshot would hold them.
    pub fn map(&self) -> FileMap {
        self.files
            .iter()
            .map(|(k, f)| {
                (
                    k.clone(),
                    FileRef {
                        sha256: f.sha256.clone(),
                        size: f.size,
                    },
                )
            })
            .collect()
    }

    /// The hash cache for the next pass; files changed within the last two seconds are left
    /// out, since a write in the same mtime tick would not show.
    pub fn seen(&self, now: SystemTime) -> BTreeMap<String, Seen> {
        let fresh = mtime_ns(now - Duration::from_secs(2));
        self.files
            .iter()
            .filter(|(_, f)| f.mtime_ns < fresh)
            .map(|(k, f)| {
                (
                    k.clone(),
                    Seen {
                        size: f.size,
                        mtime_ns: f.mtime_ns,
                        sha256: f.sha256.clone(),
                    },
                )
            })
            .collect()
    }
}

fn mtime_ns(t: SystemTime) -> i128 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

/// Walk `root` (which must be a real directory) and hash what changed since `seen`.
/// Everything is reached through the root's open directory, so a symlink swapped in
/// anywhere during the walk is skipped, never followed. Files over `max_file_size` bytes go
/// to [`Scan::too_big`] unread.
pub fn scan(
    root: &Path,
    boundary: &Boundary,
    seen: &BTreeMap<String, Seen>,
    max_file_size: u64,
) -> Result<Scan, StoreError> {
    let mut out = Scan::default();
    let within = Beneath::open(root).map_err(|e| match e.raw_os_error() {
        // ELOOP, ENOTDIR: a symlink or a file where the directory should be.
        Some(40 | 20) => StoreError::Refused(format!(
            "{} is not a directory (a symlink is not followed); nothing was synced",
            root.display()
        )),
        _ => StoreError::io("open synced directory", root, e),
    })?;
    let mut stack: Vec<PathBuf> = vec![PathBuf::new()];
    while let Some(rel_dir) = stack.pop() {
        let entries = match within.list(&rel_dir) {
            Ok(e) => e,
            // Replaced by a symlink or removed since it was listed: nothing to take there.
            Err(_) if !rel_dir.as_os_str().is_empty() => continue,
            Err(e) => return Err(StoreError::io("list", root, e)),
        };
        for entry in entries {
            let (kind, rel) = (entry.kind, rel_dir.join(&entry.name));
            if kind == Kind::Dir {
                if !boundary.excludes(&rel, true) {
                    stack.push(rel);
                }
                continue;
            }
            if boundary.excludes(&rel, false) {
                continue;
            }
            match kind {
                Kind::Symlink => {
                    out.skipped
                        .push(format!("{}: symlink, not followed", rel.display()));
                    continue;
                }
                Kind::Other => {
                    out.skipped
                        .push(format!("{}: not a regular file", rel.display()));
                    continue;
                }
                _ => {}
            }
            let Some(key) = crate::keys::key_for(&rel) else {
                out.skipped.push(format!(
                    "{}: name is not valid UTF-8 or not a plain path",
                    rel.display()
                ));
                continue;
            };
            let Some((size, mtime)) = within.stat(&rel) else {
                continue;
            };
            if size > max_file_size {
                out.too_big.insert(key, size);
                continue;
            }
            let sha256 = match seen.get(&key) {
                Some(s) if s.size == size && s.mtime_ns == mtime => s.sha256.clone(),
                _ => match within
                    .open_file(&rel)
                    .and_then(|f| hash_read_at_most(f, max_file_size))
                {
                    Ok(Some(h)) => h,
                    // Grown past the limit since its stat: left out, and read no further.
                    Ok(None) => {
                        let now = within.stat(&rel).map_or(size, |(s, _)| s);
                        out.too_big
                            .insert(key, now.max(max_file_size.saturating_add(1)));
                        continue;
                    }
                    // Vanished or swapped for a symlink since it was listed: not there now.
                    Err(_) => continue,
                },
            };
            out.files.insert(
                key,
                Found {
                    size,
                    mtime_ns: mtime,
                    sha256,
                },
            );
        }
    }
    Ok(out)
}

/// sha256 of an open file's content, lowercase hex.
pub fn hash_read(f: std::fs::File) -> std::io::Result<String> {
    Ok(hash_read_at_most(f, u64::MAX)?.unwrap_or_default())
}

/// sha256 of an open file's content, lowercase hex, or `None` (having read `max + 1` bytes
/// and no more) when it holds more than `max` bytes.
pub fn hash_read_at_most(f: std::fs::File, max: u64) -> std::io::Result<Option<String>> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut f = f.take(max.saturating_add(1));
    let mut read = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        read += n as u64;
        if read > max {
            return Ok(None);
        }
        h.update(&buf[..n]);
    }
    Ok(Some(hex::encode(h.finalize())))
}

/// sha256 of bytes, lowercase hex.
pub fn hash_bytes(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_and_excluded_files_are_not_taken() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir_all(r.join("credentials")).unwrap();
        std::fs::write(r.join("credentials/token"), "secret").unwrap();
        std::fs::write(r.join("SOUL.md"), "soul").unwrap();
        std::os::unix::fs::symlink("/etc/shadow", r.join("shadow")).unwrap();
        std::os::unix::fs::symlink("/etc", r.join("etc")).unwrap();
        let b = Boundary::new(&[], &[]).unwrap();
        let s = scan(r, &b, &Default::default(), u64::MAX).unwrap();
        assert_eq!(s.files.keys().collect::<Vec<_>>(), ["SOUL.md"]);
        assert_eq!(s.files["SOUL.md"].sha256, hash_bytes(b"soul"));
        assert_eq!(s.skipped.len(), 2, "{:?}", s.skipped);
    }

    #[test]
    fn a_file_over_the_limit_is_listed_apart_at_its_apparent_size_and_not_read() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::write(r.join("small.md"), "small").unwrap();
        // Sparse: a terabyte that takes no room, and would take hours to hash.
        let big = std::fs::File::create(r.join("big")).unwrap();
        big.set_len(1 << 40).unwrap();
        // An access time in the past, which a read would move (relatime moves one older
        // than the change time).
        let then = SystemTime::now() - Duration::from_secs(2 * 86400);
        big.set_times(std::fs::FileTimes::new().set_accessed(then))
            .unwrap();
        let b = Boundary::new(&[], &[]).unwrap();
        let s = scan(r, &b, &Default::default(), 1 << 20).unwrap();
        assert_eq!(s.files.keys().collect::<Vec<_>>(), ["small.md"]);
        assert_eq!(s.too_big.get("big"), Some(&(1 << 40)));
        let accessed = std::fs::metadata(r.join("big"))
            .unwrap()
            .accessed()
            .unwrap();
        assert_eq!(accessed, then, "not a byte of it was read");
    }

    #[test]
    fn hashing_stops_one_byte_past_the_limit() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, b"12345").unwrap();
        let open = || std::fs::File::open(&p).unwrap();
        assert_eq!(
            hash_read_at_most(open(), 5).unwrap(),
            Some(hash_bytes(b"12345"))
        );
        assert_eq!(hash_read_at_most(open(), 4).unwrap(), None);
    }
}
