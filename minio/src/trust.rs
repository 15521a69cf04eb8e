//! What a pass may trust before it deletes anything: whether the sync state describes this
//! very directory (its mark), whether the store's newest snapshot follows the last agreed one
//! (its parents), which local files are older copies put back over newer ones, and which
//! deletions wait for a person's yes.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::StoreError;
use crate::manifest::{FileMap, LocalState, Seen, Snapshot};
use crate::mark::Mark;
use crate::remote::Remote;
use crate::report::{size, Held, LISTED};
use crate::scan::Found;

/// Parents followed back from the store's newest snapshot to find the last agreed one; past
/// this many the store counts as having moved on without this directory.
pub const LINEAGE_STEPS: usize = 32;

/// A pass holds its deletions back only when they are at least this many files (and more
/// than the share allowed): deleting one or two files never needs a yes.
pub const HOLD_MIN_FILES: usize = 3;

/// Why the sync state cannot be taken as the last agreed state of `dir`, or `None` when its
/// mark is the directory's. A first pass (no state, no mark) has nothing to distrust.
pub fn untrusted_reason(dir: &Path, state: &LocalState, here: Option<&Mark>) -> Option<String> {
    let d = dir.display();
    match (state.mark.as_ref(), here) {
        (Some(s), Some(h)) if s == h => None,
        (None, None) if state.base_id.is_none() => None,
        (Some(_), None) => Some(format!(
            "{d} is not the directory last synced (it has no sync mark: it is new, or was made anew)"
        )),
        (None, Some(_)) => Some(format!(
            "the sync state of {d} was lost (the directory has a mark the state does not know)"
        )),
        (None, None) => Some(format!(
            "the sync state of {d} has no mark (written by an older clawkeep)"
        )),
        (Some(s), Some(h)) if s.id != h.id => Some(format!(
            "{d} is another directory than the one last synced (its sync mark differs: replaced, or copied from elsewhere)"
        )),
        (Some(s), Some(h)) => Some(format!(
            "{d} is at sync generation {} but its sync state at {}: one of them was put back from an older copy",
            h.generation, s.generation
        )),
    }
}

/// Whether `snap` descends from the snapshot `base` along its parents: the store moved on
/// from what this directory agreed, rather than without it (another writer, a store restored
/// or replaced). History pruned or written by an older clawkeep counts as not descending.
pub async fn follows(remote: &Remote, snap: &Snapshot, base: &str) -> Result<bool, StoreError> {
    let mut parent = snap.parent.clone();
    for _ in 0..LINEAGE_STEPS {
        match parent {
            Some(p) if p == base => return Ok(true),
            // Parents are always older (see manifest::next_id): the base is not behind it.
            Some(p) if p.as_str() < base => return Ok(false),
            Some(p) => match remote.snapshot(&p).await {
                Ok(s) => parent = s.parent,
                Err(e) if e.s3_code() == Some("NoSuchKey") => return Ok(false),
                Err(e) => return Err(e),
            },
            None => return Ok(false),
        }
    }
    Ok(false)
}

/// Local files that are older copies of what the store holds, to be set aside (kept as
/// conflict copies) so the store's version comes back in their place instead of being
/// overwritten by them.
///
/// With a trusted base: a file whose content left the agreed one while its mtime went back
/// before the agreed version's (put back from a backup, not edited). Without one (`base` is
/// empty): a file that differs from the store's and is older than the store's newest
/// snapshot (`remote_ns`).
pub fn older_local_copies(
    base: &FileMap,
    local: &BTreeMap<String, Found>,
    remote: &FileMap,
    seen: &BTreeMap<String, Seen>,
    remote_ns: Option<i128>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (p, l) in local {
        let Some(r) = remote.get(p) else { continue };
        if l.sha256 == r.sha256 {
            continue;
        }
        let older = match base.get(p) {
            Some(b) => {
                b == r
                    && l.sha256 != b.sha256
                    && seen
                        .get(p)
                        .is_some_and(|s| s.sha256 == b.sha256 && l.mtime_ns < s.mtime_ns)
            }
            None if base.is_empty() => remote_ns.is_some_and(|t| l.mtime_ns < t),
            None => false,
        };
        if older {
            out.push(p.clone());
        }
    }
    out
}

/// The remote deletions `deletes` held back, if they remove more than `over_percent` of the
/// files or bytes `remote` holds (and at least [`HOLD_MIN_FILES`]), or if the directory is
/// empty; `None` when they may go ahead.
pub fn hold(
    deletes: &[String],
    local_empty: bool,
    remote: &FileMap,
    over_percent: u8,
    dir: &Path,
) -> Option<Held> {
    if deletes.is_empty() {
        return None;
    }
    let of_files = remote.len();
    let of_bytes: u64 = remote.values().map(|f| f.size).sum();
    let bytes: u64 = deletes
        .iter()
        .filter_map(|p| remote.get(p))
        .map(|f| f.size)
        .sum();
    let over = u64::from(over_percent);
    let n = deletes.len() as u64;
    let reason = if local_empty {
        format!(
            "{} is empty but the store holds {} of its files",
            dir.display(),
            deletes.len()
        )
    } else if deletes.len() >= HOLD_MIN_FILES
        && (n * 100 > over * of_files as u64 || bytes * 100 > over * of_bytes)
    {
        format!(
            "this pass would delete {} of the {of_files} files ({} of {}) the store holds, more than {over_percent} %",
            deletes.len(),
            size(bytes),
            size(of_bytes)
        )
    } else {
        return None;
    };
    Some(Held {
        reason,
        count: deletes.len(),
        bytes,
        of_files,
        of_bytes,
        paths: deletes.iter().take(LISTED).cloned().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::FileRef;

    fn f(sha: &str, size: u64) -> FileRef {
        FileRef {
            sha256: sha.into(),
            size,
        }
    }

    fn found(sha: &str, mtime_ns: i128) -> Found {
        Found {
            size: 1,
            mtime_ns,
            sha256: sha.into(),
        }
    }

    #[test]
    fn only_the_same_mark_on_both_sides_is_trusted() {
        let dir = Path::new("/h");
        let m = Mark::new();
        let mut st = LocalState::default();
        assert_eq!(untrusted_reason(dir, &st, None), None, "a first pass");
        st.base_id = Some("x".into());
        assert!(untrusted_reason(dir, &st, None)
            .unwrap()
            .contains("older clawkeep"));
        st.mark = Some(m.clone());
        assert_eq!(untrusted_reason(dir, &st, Some(&m)), None);
        assert!(untrusted_reason(dir, &st, None)
            .unwrap()
            .contains("no sync mark"));
        assert!(untrusted_reason(dir, &st, Some(&Mark::new()))
            .unwrap()
            .contains("another directory"));
        assert!(untrusted_reason(dir, &st, Some(&m.next()))
            .unwrap()
            .contains("older copy"));
        st.mark = None;
        assert!(untrusted_reason(dir, &st, Some(&m))
            .unwrap()
            .contains("was lost"));
    }

    #[test]
    fn a_file_whose_mtime_went_back_is_an_older_copy_and_an_edit_is_not() {
        let base: FileMap = [("a".to_string(), f("v2", 1)), ("b".to_string(), f("v2", 1))].into();
        let remote = base.clone();
        let seen: BTreeMap<String, Seen> = ["a", "b"]
            .map(|p| {
                (
                    p.to_string(),
                    Seen {
                        size: 1,
                        mtime_ns: 200,
                        sha256: "v2".into(),
                    },
                )
            })
            .into();
        // a: put back from a backup (mtime 100 < 200); b: edited (mtime 300).
        let local: BTreeMap<String, Found> = [
            ("a".to_string(), found("v1", 100)),
            ("b".to_string(), found("v3", 300)),
        ]
        .into();
        assert_eq!(
            older_local_copies(&base, &local, &remote, &seen, None),
            ["a"]
        );
        // Without a trusted base, the store's snapshot time decides.
        assert_eq!(
            older_local_copies(&FileMap::new(), &local, &remote, &seen, Some(250)),
            ["a"]
        );
        assert!(older_local_copies(&FileMap::new(), &local, &remote, &seen, None).is_empty());
    }

    #[test]
    fn a_large_share_of_deletions_waits_and_a_few_go_ahead() {
        let remote: FileMap = (0..10)
            .map(|i| {
                (
                    format!("f{i}"),
                    f(&format!("h{i}"), if i == 0 { 1000 } else { 10 }),
                )
            })
            .collect();
        let dir = Path::new("/h");
        let del = |n: usize| -> Vec<String> { (0..n).map(|i| format!("f{i}")).collect() };
        assert_eq!(hold(&del(2), false, &remote, 50, dir), None, "two files");
        assert_eq!(hold(&del(0), true, &remote, 50, dir), None);
        let h = hold(&del(6), false, &remote, 50, dir).unwrap();
        assert_eq!(
            (h.count, h.of_files, h.bytes, h.of_bytes),
            (6, 10, 1050, 1090)
        );
        // Three files, but most of the bytes.
        assert!(hold(&del(3), false, &remote, 50, dir).is_some());
        // Three small files of ten: fine.
        let small: Vec<String> = (1..4).map(|i| format!("f{i}")).collect();
        assert_eq!(hold(&small, false, &remote, 50, dir), None);
        // An empty directory holds even one deletion; 100 % holds only that.
        assert!(hold(&del(1), true, &remote, 50, dir)
            .unwrap()
            .reason
            .contains("is empty"));
        assert_eq!(hold(&del(9), false, &remote, 100, dir), None);
    }
}
