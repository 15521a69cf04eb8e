//! What a pass may trust, against a real Garage: a directory put back from an older copy, a
//! file put back over a newer one, a store that moved on without this directory, and one
//! supervisor per brain (the lease). Each test fails when its guard is taken out.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use clawkeep_store::lease::{Holder, LeaseKeeper};
use support::*;

fn set_mtime(path: &Path, t: SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

/// The conflict copy of `path` in `files` (`notes.md` -> `notes.conflict-*.md`).
fn copy_of<'a>(files: &'a BTreeMap<String, Vec<u8>>, stem: &str) -> Option<&'a Vec<u8>> {
    files
        .iter()
        .find(|(k, _)| k.starts_with(&format!("{stem}.conflict-")))
        .map(|(_, v)| v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_home_put_back_from_an_older_copy_loses_nothing_the_store_gained_since() {
    let g = Garage::start().await;
    let bucket = g.bucket("ck-agent-backup").await;
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    write(&a, "notes.md", b"v1");
    write(&a, "keep.md", b"kept");
    let s = syncer(bucket.clone(), &a, "backup");
    s.sync(false).await.unwrap();
    // A backup of the home as `cp -a` makes it: contents, mtimes and the sync mark.
    let backup = tmp.path().join("backup");
    let cp = std::process::Command::new("cp")
        .arg("-a")
        .arg(&a)
        .arg(&backup)
        .status()
        .unwrap();
    assert!(cp.success());
    tokio::time::sleep(Duration::from_millis(20)).await;
    write(&a, "notes.md", b"v2, newer");
    write(&a, "new.md", b"written after the backup");
    s.sync(false).await.unwrap();
    let before = newest(&bucket).await;

    // The home is lost and put back from the backup.
    std::fs::remove_dir_all(&a).unwrap();
    std::fs::rename(&backup, &a).unwrap();
    let r = s.sync(false).await.unwrap();
    assert!(
        r.rebased.as_deref().unwrap_or("").contains("older copy"),
        "{r:?}"
    );
    assert_eq!((r.deleted_remote, r.deleted_local), (0, 0), "{r:?}");
    let after = newest(&bucket).await;
    // The store's newer version is back in its place, the older one kept beside it.
    assert_eq!(after["notes.md"], b"v2, newer");
    assert_eq!(copy_of(&after, "notes").unwrap(), b"v1");
    for (p, v) in &before {
        assert_eq!(after.get(p), Some(v), "{p} lost");
    }
    assert_eq!(tree(&a), after);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_put_back_in_place_from_an_older_copy_does_not_overwrite_the_newer_one() {
    let g = Garage::start().await;
    let bucket = g.bucket("ck-agent-inplace").await;
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let now = SystemTime::now();
    // v2 was written an hour ago (so the state remembers its mtime), v1 two hours ago.
    write(&a, "notes.md", b"v2, newer");
    set_mtime(&a.join("notes.md"), now - Duration::from_secs(3600));
    let s = syncer(bucket.clone(), &a, "inplace");
    s.sync(false).await.unwrap();
    // An older copy is put back over it in place, its old mtime kept (`cp -p`, `rsync -a`).
    write(&a, "notes.md", b"v1");
    set_mtime(&a.join("notes.md"), now - Duration::from_secs(7200));
    let r = s.sync(false).await.unwrap();
    assert_eq!(r.conflicts.len(), 1, "{r:?}");
    let after = newest(&bucket).await;
    assert_eq!(after["notes.md"], b"v2, newer", "the newer version stays");
    assert_eq!(copy_of(&after, "notes").unwrap(), b"v1");
    assert_eq!(tree(&a), after);
    // An edit (a new mtime) is an edit: it goes up as usual.
    write(&a, "notes.md", b"v3");
    let r = s.sync(false).await.unwrap();
    assert!(r.conflicts.is_empty(), "{r:?}");
    assert_eq!(newest(&bucket).await["notes.md"], b"v3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_moved_on_without_this_directorys_last_push_deletes_nothing() {
    let g = Garage::start().await;
    let bucket = g.bucket("ck-agent-fork").await;
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    write(&a, "common.md", b"c");
    let (sa, sb) = (
        syncer(bucket.clone(), &a, "one"),
        syncer(bucket.clone(), &b, "two"),
    );
    sa.sync(false).await.unwrap();
    sb.pull_into_place().await.unwrap();
    // Two writers push at once: A's snapshot is not yet listed when B merges, so B's
    // snapshot follows the one before A's and says nothing of A's file.
    write(&a, "a.md", b"from a");
    let r = sa.sync(false).await.unwrap();
    let a_key = format!(".clawkeep/snapshots/{}.json", r.snapshot.unwrap());
    let a_snap = bucket.get_bytes(&a_key).await.unwrap();
    bucket.delete(&a_key).await.unwrap();
    write(&b, "b.md", b"from b");
    sb.sync(false).await.unwrap();
    bucket.put(&a_key, a_snap).await.unwrap();

    // A's next pass: the store's newest does not follow A's last push. Nothing is deleted,
    // on either side; both files end up everywhere.
    let r = sa.sync(false).await.unwrap();
    assert!(
        r.rebased
            .as_deref()
            .unwrap_or("")
            .contains("does not follow"),
        "{r:?}"
    );
    assert_eq!((r.deleted_local, r.deleted_remote), (0, 0), "{r:?}");
    sb.sync(false).await.unwrap();
    let want: BTreeMap<String, Vec<u8>> = [
        ("a.md".to_string(), b"from a".to_vec()),
        ("b.md".to_string(), b"from b".to_vec()),
        ("common.md".to_string(), b"c".to_vec()),
    ]
    .into();
    assert_eq!(tree(&a), want);
    assert_eq!(tree(&b), want);
    assert_eq!(newest(&bucket).await, want);
    // And from there on both follow the same line: a deletion is a deletion again.
    std::fs::remove_file(a.join("a.md")).unwrap();
    let r = sa.sync(false).await.unwrap();
    assert_eq!((r.deleted_remote, r.rebased), (1, None));
    let r = sb.sync(false).await.unwrap();
    assert_eq!(r.deleted_local, 1, "{r:?}");
}

fn keeper(id: &str, host: &str, ttl: Duration) -> Option<Arc<LeaseKeeper>> {
    let holder = Holder {
        id: id.into(),
        host: host.into(),
        state_dir: format!("/var/lib/{host}"),
    };
    Some(Arc::new(LeaseKeeper::new(holder, "research", ttl)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_supervisor_syncs_a_brain_and_a_takeover_or_an_expired_lease_moves_it() {
    let g = Garage::start().await;
    let bucket = g.bucket("ck-agent-research").await;
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    write(&a, "SOUL.md", b"from node one");
    write(&b, "SOUL.md", b"from node two");
    let ttl = Duration::from_secs(2);
    let sa = syncer(bucket.clone(), &a, "research").lease(keeper("one", "node-one", ttl));
    let sb = syncer(bucket.clone(), &b, "research").lease(keeper("two", "node-two", ttl));
    sa.sync(false).await.unwrap();
    let snapshots = bucket.snapshot_ids().await.unwrap().len();

    // The second supervisor is refused, says who holds the brain and how to take it over,
    // and touches nothing.
    let err = sb.sync(false).await.unwrap_err().to_string();
    for want in [
        "node-one",
        "/var/lib/node-one",
        "clawkeep sync takeover research",
    ] {
        assert!(err.contains(want), "{want} not in: {err}");
    }
    assert!(sb.lease_keeper().unwrap().refused());
    assert_eq!(bucket.snapshot_ids().await.unwrap().len(), snapshots);
    assert_eq!(tree(&b)["SOUL.md"], b"from node two");

    // A takeover moves it: the second syncs (both versions kept), the first is refused at its
    // next renewal.
    let before = sb
        .lease_keeper()
        .unwrap()
        .take(&bucket)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(before.holder.host, "node-one");
    let r = sb.sync(false).await.unwrap();
    assert_eq!(r.conflicts.len(), 1, "{r:?}");
    tokio::time::sleep(ttl / 5 + Duration::from_millis(100)).await;
    let err = sa.sync(false).await.unwrap_err().to_string();
    assert!(err.contains("node-two"), "{err}");

    // Given back at shutdown, it is free at once; not renewed, it runs out after its ttl.
    sb.lease_keeper().unwrap().release(&bucket).await.unwrap();
    assert!(LeaseKeeper::read(&bucket).await.unwrap().is_none());
    sa.sync(false).await.unwrap();
    tokio::time::sleep(ttl + Duration::from_millis(100)).await;
    sb.sync(false).await.unwrap();

    // A lease object blown up by whoever holds the bucket's key is not read into memory.
    let huge = bytes::Bytes::from(vec![b' '; 1 << 20]);
    bucket.put(clawkeep_store::lease::KEY, huge).await.unwrap();
    tokio::time::sleep(ttl / 5 + Duration::from_millis(100)).await;
    let err = sb.sync(false).await.unwrap_err().to_string();
    assert!(err.contains("larger than the 65536 bytes"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_only_file_changed_in_the_store_never_comes_down() {
    let g = Garage::start().await;
    let bucket = g.bucket("ck-agent-enforced").await;
    let tmp = tempfile::tempdir().unwrap();
    let (home, other) = (tmp.path().join("home"), tmp.path().join("other"));
    write(&home, ".openclaw/openclaw.json", b"{\"auth\":\"token\"}");
    let s = syncer(bucket.clone(), &home, "agent").push_only(&[".openclaw/openclaw.json"]);
    s.sync(false).await.unwrap();
    // Someone with the bucket's key pushes a weakened config (and plants it as a plain
    // object too).
    let intruder = syncer(bucket.clone(), &other, "intruder");
    intruder.pull_into_place().await.unwrap();
    write(&other, ".openclaw/openclaw.json", b"{\"auth\":\"none\"}");
    intruder.sync(false).await.unwrap();
    assert_eq!(
        newest(&bucket).await[".openclaw/openclaw.json"],
        b"{\"auth\":\"none\"}"
    );
    // The agent's pass (a full one, listing plain objects) keeps its own and puts it back.
    let r = s.sync(true).await.unwrap();
    assert_eq!((r.downloaded, r.conflicts.len()), (0, 0), "{r:?}");
    assert_eq!(
        std::fs::read(home.join(".openclaw/openclaw.json")).unwrap(),
        b"{\"auth\":\"token\"}"
    );
    assert_eq!(
        newest(&bucket).await[".openclaw/openclaw.json"],
        b"{\"auth\":\"token\"}"
    );
    // A new home gets it from the supervisor, not from the store: it is not pulled.
    let fresh = tmp.path().join("fresh");
    let r = syncer(bucket.clone(), &fresh, "agent")
        .push_only(&[".openclaw/openclaw.json"])
        .pull_into_place()
        .await
        .unwrap();
    assert_eq!(r.downloaded, 0, "{r:?}");
    assert!(!fresh.join(".openclaw/openclaw.json").exists());
}
