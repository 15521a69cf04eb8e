//! History on any S3 store: restore a directory to the snapshot in force at a time, clone a
//! bucket server-side, prune snapshots past retention and the contents only they used.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use crate::error::StoreError;
use crate::keys::{blob_key, BLOB_PREFIX};
use crate::manifest::{id_time, FileMap, Snapshot};
use crate::remote::Remote;

/// The newest snapshot taken at or before `at`.
pub async fn snapshot_at(remote: &Remote, at: SystemTime) -> Result<Snapshot, StoreError> {
    let ids = remote.snapshot_ids().await?;
    let pick = ids
        .iter()
        .rev()
        .find(|id| id_time(id).is_some_and(|t| t <= at));
    match pick {
        Some(id) => remote.snapshot(id).await,
        None => Err(StoreError::Refused(format!(
            "s3://{} has no snapshot at or before {}{}",
            remote.name(),
            humantime::format_rfc3339_seconds(at),
            match ids.first().and_then(|i| id_time(i)) {
                Some(t) => format!(
                    " (the oldest is from {})",
                    humantime::format_rfc3339_seconds(t)
                ),
                None => " (it has no history yet)".into(),
            }
        ))),
    }
}

/// One push in a bucket's history, as `clawkeep sync history` lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    /// The snapshot id.
    pub id: String,
    /// Its time on the history's own timeline (RFC 3339): what `restore --at` compares with.
    pub at: String,
    /// When it was taken by the writer's clock (differs from `at` after a clock went back).
    pub taken: String,
    /// Who pushed it (agent name, `clone of ...`, ...).
    pub origin: String,
    /// Files in it.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
}

/// The newest `last` pushes of `remote`, oldest first.
pub async fn recent(remote: &Remote, last: usize) -> Result<Vec<Entry>, StoreError> {
    let ids = remote.snapshot_ids().await?;
    let mut out = Vec::new();
    for id in ids.iter().skip(ids.len().saturating_sub(last)) {
        let snap = remote.snapshot(id).await?;
        out.push(Entry {
            at: id_time(id)
                .map(|t| humantime::format_rfc3339_micros(t).to_string())
                .unwrap_or_default(),
            taken: snap.time.clone(),
            origin: snap.origin.clone(),
            files: snap.files.len(),
            bytes: snap.files.values().map(|f| f.size).sum(),
            id: id.clone(),
        });
    }
    Ok(out)
}

/// Parse a user's time: RFC 3339 with or without seconds, with a zone (`Z`, `+02:00`) or
/// without one (UTC), a date alone (its midnight, UTC), or a time ago (`2h ago`, `90m ago`).
pub fn parse_time(s: &str) -> Result<SystemTime, String> {
    parse_time_at(s, SystemTime::now())
}

/// [`parse_time`], with `now` for times ago.
pub fn parse_time_at(s: &str, now: SystemTime) -> Result<SystemTime, String> {
    use std::str::FromStr;
    let hint = "write it like 2026-11-20T10:00 (UTC), 2026-11-20T12:00+02:00 or 2h ago";
    let text = s.trim();
    if let Some(ago) = text.strip_suffix("ago") {
        let d = humantime::parse_duration(ago.trim())
            .map_err(|e| format!("{s:?} is not a time ago ({e}); {hint}"))?;
        return now
            .checked_sub(d)
            .ok_or_else(|| format!("{s:?} is before the clock's beginning"));
    }
    // A space between date and time, as people write it.
    let t = text.replacen(' ', "T", 1);
    let utc =
        |dt: jiff::civil::DateTime| dt.to_zoned(jiff::tz::TimeZone::UTC).map(|z| z.timestamp());
    let parsed = jiff::Timestamp::from_str(&t)
        .or_else(|_| jiff::civil::DateTime::from_str(&t).and_then(utc))
        .or_else(|_| {
            jiff::civil::Date::from_str(&t)
                .and_then(|d| utc(d.to_datetime(jiff::civil::Time::midnight())))
        });
    match parsed {
        Ok(ts) => Ok(SystemTime::from(ts)),
        Err(e) => Err(format!("{s:?} is not a time ({e}); {hint}")),
    }
}

/// What a restore changes locally.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RestorePlan {
    /// The snapshot restored.
    pub snapshot: String,
    /// When it was taken.
    pub time: String,
    /// Files written (content differs or missing now).
    pub write: Vec<String>,
    /// Files removed (did not exist then).
    pub delete: Vec<String>,
    /// Files already as they were.
    pub unchanged: usize,
}

/// Compare the current files with a snapshot's.
pub fn plan_restore(current: &FileMap, target: &Snapshot) -> RestorePlan {
    let mut p = RestorePlan {
        snapshot: target.id.clone(),
        time: target.time.clone(),
        ..Default::default()
    };
    for (k, f) in &target.files {
        if current.get(k) == Some(f) {
            p.unchanged += 1;
        } else {
            p.write.push(k.clone());
        }
    }
    p.delete = current
        .keys()
        .filter(|k| !target.files.contains_key(*k))
        .cloned()
        .collect();
    p
}

/// Copy the newest snapshot of `src` into the empty bucket `dst`, server-side: contents,
/// plain files and the snapshot itself. Refuses a `dst` that already has history.
pub async fn clone_bucket(
    src: &Remote,
    dst: &Remote,
    origin: &str,
) -> Result<Snapshot, StoreError> {
    if !dst.snapshot_ids().await?.is_empty() {
        return Err(StoreError::Refused(format!(
            "s3://{} already holds a brain; clone writes only into a new one (pick another name)",
            dst.name()
        )));
    }
    let ids = src.snapshot_ids().await?;
    let Some(id) = ids.last() else {
        return Err(StoreError::Refused(format!(
            "s3://{} has no snapshot to clone yet (push it first: clawkeep sync push)",
            src.name()
        )));
    };
    let snap = src.snapshot(id).await?;
    let hashes: BTreeSet<&String> = snap.files.values().map(|f| &f.sha256).collect();
    for h in hashes {
        dst.copy_from(src.name(), &blob_key(h), &blob_key(h))
            .await?;
    }
    for (p, f) in &snap.files {
        dst.copy_from(dst.name(), &blob_key(&f.sha256), p).await?;
    }
    let copy = Snapshot::new(origin, snap.files.clone(), None, None);
    dst.put_snapshot(&copy).await?;
    Ok(copy)
}

/// What a prune removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Snapshots deleted.
    pub snapshots: usize,
    /// Blobs deleted.
    pub blobs: usize,
}

/// Delete snapshots older than `retention` (never the newest) and blobs no remaining snapshot
/// uses. Blobs younger than `grace` stay: a push may be writing them before its snapshot.
pub async fn prune(
    remote: &Remote,
    retention: Duration,
    grace: Duration,
    now: SystemTime,
) -> Result<Pruned, StoreError> {
    let mut out = Pruned::default();
    let ids = remote.snapshot_ids().await?;
    let Some((newest, older)) = ids.split_last() else {
        return Ok(out);
    };
    let cutoff = now.checked_sub(retention).unwrap_or(SystemTime::UNIX_EPOCH);
    let mut keep = vec![newest.clone()];
    for id in older {
        if id_time(id).is_some_and(|t| t < cutoff) {
            remote
                .delete(&format!("{}{id}.json", crate::keys::SNAPSHOT_PREFIX))
                .await?;
            out.snapshots += 1;
        } else {
            keep.push(id.clone());
        }
    }
    let mut used = BTreeSet::new();
    for id in &keep {
        used.extend(
            remote
                .snapshot(id)
                .await?
                .files
                .into_values()
                .map(|f| f.sha256),
        );
    }
    let young = now.checked_sub(grace).unwrap_or(SystemTime::UNIX_EPOCH);
    for o in remote.list(BLOB_PREFIX).await? {
        let h = &o.key[BLOB_PREFIX.len()..];
        if !used.contains(h) && o.modified.is_some_and(|m| m < young) {
            remote.delete(&o.key).await?;
            out.blobs += 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_carry_their_zone_or_count_back_from_now() {
        let rfc = |t: SystemTime| humantime::format_rfc3339_seconds(t).to_string();
        assert_eq!(
            rfc(parse_time("2026-11-20T12:00+02:00").unwrap()),
            "2026-11-20T10:00:00Z"
        );
        assert_eq!(
            rfc(parse_time("2026-11-20T05:30:00-04:30").unwrap()),
            "2026-11-20T10:00:00Z"
        );
        assert_eq!(
            rfc(parse_time("2026-11-20 10:00:00.5Z").unwrap()),
            "2026-11-20T10:00:00Z"
        );
        assert_eq!(
            rfc(parse_time("2026-11-20").unwrap()),
            "2026-11-20T00:00:00Z"
        );
        let now = humantime::parse_rfc3339("2026-12-05T12:00:00Z").unwrap();
        assert_eq!(
            rfc(parse_time_at("2h ago", now).unwrap()),
            "2026-12-05T10:00:00Z"
        );
        assert_eq!(
            rfc(parse_time_at("1day 30min ago", now).unwrap()),
            "2026-12-04T11:30:00Z"
        );
        let e = parse_time_at("soon ago", now).unwrap_err();
        assert!(
            e.contains("is not a time ago") && e.contains("2h ago"),
            "{e}"
        );
        let e = parse_time("2026-13-40T10:00").unwrap_err();
        assert!(e.contains("2026-11-20T12:00+02:00"), "{e}");
    }

    #[test]
    fn times_without_seconds_or_zone_are_utc() {
        let t = parse_time("2026-11-20T10:00").unwrap();
        assert_eq!(
            humantime::format_rfc3339_seconds(t).to_string(),
            "2026-11-20T10:00:00Z"
        );
        assert!(parse_time("2026-11-20").is_ok());
        assert!(parse_time("yesterday")
            .unwrap_err()
            .contains("2026-11-20T10:00"));
    }
}
