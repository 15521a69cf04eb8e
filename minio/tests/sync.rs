//! The sync engine against a real Garage: round trips, the sync boundary, unsafe keys,
//! conflicts, deletion guards, an unreachable store, clone and restore.

mod support;

use std::time::Duration;

use support::*;

fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_is_byte_identical_with_odd_names_empty_files_deep_trees_and_a_200mb_file() {
    let g = Garage::start().await;
    let bucket = g.bucket("ck-agent-roundtrip").await;
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    write(&a, "SOUL.md", b"# who I am\n");
    write(&a, "notes/été à Paris – 日本語.md", "unicode ✓".as_bytes());
    write(&a, "with space/and  two  spaces .txt", b"spaces");
    write(&a, "empty", b"");
    write(&a, "d1/d2/d3/d4/d5/d6/d7/d8/d9/d10/deep.md", b"deep");
    write(&a, "memory/dup1.md", b"same content");
    write(&a, "memory/dup2.md", b"same content");
    write(&a, "big.bin", &pseudo_random(200 << 20, 7));

    let r = syncer(bucket.clone(), &a, "roundtrip")
        .sync(true)
        .await
        .unwrap();
    assert!(r.pushed && r.complete(), "{r:?}");
    // Content-addressed: the two identical files are one blob.
    let blobs = bucket.list(".clawkeep/blobs/").await.unwrap();
    assert_eq!(blobs.len(), 7, "{blobs:?}");
    // The plain files are there for people and tools.
    let keys = keys(&bucket).await;
    assert!(
        keys.contains(&"notes/été à Paris – 日本語.md".to_string()),
        "{keys:?}"
    );
    assert!(keys.contains(&"big.bin".to_string()));

    let b = tmp.path().join("b");
    let r = syncer(bucket.clone(), &b, "roundtrip")
        .pull_into_place()
        .await
        .unwrap();
    assert_eq!(r.downloaded, 8, "{r:?}");
    assert!(!tmp.path().join(".b.pulling").exists());
    assert_eq!(tree(&a), tree(&b));

    // A second pass with nothing changed moves nothing and writes no snapshot.
    let r = syncer(bucket.clone(), &a, "roundtrip")
        .sync(false)
        .await
        .unwrap();
    assert!(!r.pushed && r.uploaded == 0, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_excluded_ever_reaches_the_store() {
    let g = Garage::start().await;
    let bucket = g.bucket("ck-agent-boundary").await;
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    write(&ws, "openclaw.json", b"{}");
    write(&ws, "workspace/MEMORY.md", b"m");
    write(&ws, "credentials/matrix.json", b"TOKEN");
    write(&ws, "state/openclaw.sqlite", b"db");
    write(&ws, "state/openclaw.sqlite-wal", b"wal");
    write(&ws, "state/openclaw.sqlite-shm", b"shm");
    write(&ws, "openclaw.json.bak", b"old");
    write(&ws, "workspace/.git/HEAD", b"ref");
    write(&ws, "agents/main/sessions/s.jsonl", b"transcript");
    write(
        &ws,
        "knowledge/docs/shared.md",
        b"belongs to another bucket",
    );
    std::os::unix::fs::symlink("/etc/shadow", ws.join("shadow")).unwrap();
    std::os::unix::fs::symlink("/etc", ws.join("etc-link")).unwrap();
    let s = syncer(bucket.clone(), &ws, "boundary");
    // A busy run: several passes with changes in between.
    for i in 0..3 {
        write(&ws, &format!("workspace/memory/{i}.md"), b"x");
        write(&ws, &format!("credentials/c{i}"), b"secret");
        let r = s.sync(i == 0).await.unwrap();
        assert_eq!(r.skipped.len(), 2, "the two symlinks are reported: {r:?}");
    }
    let keys = keys(&bucket).await;
    let plain: Vec<&String> = keys
        .iter()
        .filter(|k| !k.starts_with(".clawkeep/"))
        .collect();
    assert_eq!(
        plain,
        [
            "openclaw.json",
            "workspace/MEMORY.md",
            "workspace/memory/0.md",
            "workspace/memory/1.md",
            "workspace/memory/2.md"
        ]
    );
    // And no excluded content hides under a blob either.
    for o in bucket.list(".clawkeep/blobs/").await.unwrap() {
        let body = bucket.get_bytes(&o.key).await.unwrap();
        for secret in [
            &b"TOKEN"[..],
            b"secret",
            b"db",
            b"wal",
            b"transcript",
            b"belongs to another bucket",
        ] {
            assert_ne!(&body[..], secret);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malicious_keys_are_refused_on_pull_and_nothing_lands_outside() {
    let g = Garage::start().await;
    let bucket = g.bucket("ck-agent-evil").await;
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    write(&a, "SOUL.md", b"good");
    syncer(bucket.clone(), &a, "evil")
        .sync(false)
        .await
        .unwrap();
    // Planted by someone with write access to the bucket. Garage normalises some of these on
    // its own; whatever it stores must not be written outside the workspace.
    for k in [
        "../x",
        "/etc/passwd",
        "a/../../b",
        "a\0b",
        "credentials/token",
        "ok/../../../escape",
        // Not a snapshot id: sorting after every real one, it would pin the newest.
        ".clawkeep/snapshots/zzzz.json",
    ] {
        let _ = bucket.put(k, bytes::Bytes::from_static(b"pwned")).await;
    }
    let b = tmp.path().join("b");
    let r = syncer(bucket.clone(), &b, "evil")
        .pull_into_place()
        .await
        .unwrap();
    assert!(!r.refused.is_empty(), "{r:?}");
    assert!(
        r.refused.iter().any(|x| x.contains("credentials/token")),
        "{r:?}"
    );
    let got = tree(&b);
    // Garage stores "/etc/passwd" as "etc/passwd": a plain relative name, harmless inside.
    let names: Vec<&String> = got.keys().filter(|k| *k != "etc/passwd").collect();
    assert_eq!(names, ["SOUL.md"], "{r:?}");
    for bad in [
        "\"../x\"",
        "\"a/../../b\"",
        "\"a\\0b\"",
        "\"ok/../../../escape\"",
    ] {
        assert!(
            r.refused.iter().any(|x| x.starts_with(bad)),
            "{bad} not reported: {r:?}"
        );
    }
    for outside in [
        tmp.path().join("x"),
        tmp.path().join("b/../x"),
        tmp.path().join("escape"),
        tmp.path().join("b"),
        "/b".into(),
    ] {
        if outside.is_file() {
            assert_ne!(
                std::fs::read(&outside).unwrap(),
                b"pwned",
                "{} written",
                outside.display()
            );
        }
    }
    assert_ne!(std::fs::read("/etc/passwd").unwrap(), b"pwned");
    // The planted snapshot name is not history: the next push is the newest.
    write(&b, "later.md", b"after the planted snapshot");
    let r = syncer(bucket.clone(), &b, "evil")
        .sync(false)
        .await
        .unwrap();
    assert!(r.pushed, "{r:?}");
    assert_eq!(bucket.snapshot_ids().await.unwrap().pop(), r.snapshot);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflicting_edit_keeps_both_versions() {
    let g = Garage::start().await;
    let bucket = g.bucket("ck-shared-docs").await;
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    write(&a, "plan.md", b"v1");
    let sa = syncer(bucket.clone(), &a, "alice");
    let sb = syncer(bucket.clone(), &b, "bob");
    sa.sync(false).await.unwrap();
    sb.pull_into_place().await.unwrap();
    write(&a, "plan.md", b"alice's edit");
    write(&b, "plan.md", b"bob's edit");
    write(&b, "bob-only.md", b"new");
    sa.sync(false).await.unwrap();
    let r = sb.sync(false).await.unwrap();
    assert_eq!(r.conflicts.len(), 1, "{r:?}");
    let tb = tree(&b);
    assert_eq!(tb["plan.md"], b"bob's edit");
    let copy = tb
        .iter()
        .find(|(k, _)| k.starts_with("plan.conflict-"))
        .expect("conflict copy");
    assert_eq!(copy.1, b"alice's edit");
    // Alice gets both too, and Bob's new file.
    let r = sa.sync(false).await.unwrap();
    assert!(r.conflicts.is_empty(), "{r:?}");
    assert_eq!(tree(&a), tree(&b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emptied_directory_deletes_nothing_one_made_anew_is_refilled_and_big_deletions_wait() {
    let mut g = Garage::start().await;
    let bucket = g.bucket("ck-agent-guard").await;
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    for i in 0..30 {
        write(&a, &format!("f{i:02}.md"), format!("{i}").as_bytes());
    }
    let s = syncer(bucket.clone(), &a, "guard");
    s.sync(false).await.unwrap();
    let plain = |keys: Vec<String>| {
        keys.into_iter()
            .filter(|k| !k.starts_with(".clawkeep/"))
            .count()
    };

    // The workspace is emptied in place (`rm -rf ~/*`): nothing is deleted, the deletions
    // wait for a yes.
    for i in 0..30 {
        std::fs::remove_file(a.join(format!("f{i:02}.md"))).unwrap();
    }
    let r = s.sync(false).await.unwrap();
    assert_eq!(r.deleted_remote, 0, "{r:?}");
    let held = r.held.expect("held");
    assert_eq!(held.count, 30);
    assert!(held.reason.contains("is empty"), "{held:?}");
    assert_eq!(plain(keys(&bucket).await), 30);

    // The directory is made anew (a lost home, an unmounted disk): it is not the one the
    // state describes, so the pass brings the brain back and deletes nothing.
    std::fs::remove_dir_all(&a).unwrap();
    std::fs::create_dir(&a).unwrap();
    let r = s.sync(false).await.unwrap();
    assert!(
        r.rebased.as_deref().unwrap_or("").contains("no sync mark"),
        "{r:?}"
    );
    assert_eq!(
        (r.downloaded, r.deleted_remote, &r.held),
        (30, 0, &None),
        "{r:?}"
    );
    assert_eq!(tree(&a).len(), 30);

    // Deleting 25 of 30 files is more than half of the brain: held until confirmed; then a
    // cap of 10 deletions per pass takes three passes.
    let capped = syncer_with(
        bucket.clone(),
        &a,
        "guard",
        clawkeep_store::SyncLimits {
            max_deletes: 10,
            concurrency: 4,
            hold_deletes_over: 50,
            ..Default::default()
        },
    );
    for i in 0..25 {
        std::fs::remove_file(a.join(format!("f{i:02}.md"))).unwrap();
    }
    let r = capped.sync(false).await.unwrap();
    assert_eq!((r.deleted_remote, r.held.map(|h| h.count)), (0, Some(25)));
    assert_eq!(plain(keys(&bucket).await), 30);
    let yes = clawkeep_store::PassOptions {
        full: false,
        allow_deletes: true,
        progress: None,
    };
    let mut passes = 0;
    loop {
        let r = capped.pass(yes.clone()).await.unwrap();
        passes += 1;
        assert!(r.deleted_remote <= 10, "{r:?}");
        assert_eq!(r.deleted.len(), r.deleted_remote);
        assert!(r.restore_at.is_some(), "{r:?}");
        if r.complete() {
            break;
        }
    }
    assert_eq!(passes, 3);
    assert_eq!(plain(keys(&bucket).await), 5);
    // A few deletions need no yes.
    std::fs::remove_file(a.join("f25.md")).unwrap();
    let r = capped.sync(false).await.unwrap();
    assert_eq!((r.deleted, r.held), (vec!["f25.md".to_string()], None));
    let state: clawkeep_store::manifest::LocalState =
        serde_json::from_slice(&std::fs::read(a.with_extension("state.json")).unwrap()).unwrap();
    assert_eq!(state.last_deletions.unwrap().paths, ["f25.md"]);

    // The store is down: the pass fails, deletes nothing locally, and loses nothing.
    g.kill();
    write(&a, "written-while-down.md", b"kept");
    let err = s.sync(false).await.unwrap_err();
    assert!(err.to_string().contains("is the store running"), "{err}");
    assert_eq!(tree(&a).len(), 5);
    g.resume().await;
    let r = s.sync(false).await.unwrap();
    assert!(r.complete() && r.uploaded == 1, "{r:?}");
    assert!(keys(&bucket)
        .await
        .contains(&"written-while-down.md".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clone_is_identical_and_restore_returns_files_as_they_were_deleted_ones_included() {
    let g = Garage::start().await;
    let src = g.bucket("ck-agent-research").await;
    let dst = g.bucket("ck-agent-research-2").await;
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    write(&a, "SOUL.md", b"v1");
    write(&a, "memory/old.md", b"will be deleted");
    let s = syncer(src.clone(), &a, "research");
    s.sync(false).await.unwrap();
    let then = std::time::SystemTime::now();
    let before = tree(&a);
    tokio::time::sleep(Duration::from_millis(20)).await;
    write(&a, "SOUL.md", b"v2");
    std::fs::remove_file(a.join("memory/old.md")).unwrap();
    write(&a, "new.md", b"later");
    s.sync(false).await.unwrap();

    // clone: server-side, the newest brain under a new name.
    clawkeep_store::history::clone_bucket(&src, &dst, "clone of research")
        .await
        .unwrap();
    let c = tmp.path().join("clone");
    syncer(dst.clone(), &c, "research-2")
        .pull_into_place()
        .await
        .unwrap();
    assert_eq!(tree(&c), tree(&a));

    // restore --at: the snapshot in force then.
    let snap = clawkeep_store::history::snapshot_at(&src, then)
        .await
        .unwrap();
    let r = tmp.path().join("restored");
    let rs = syncer(src.clone(), &r, "restore");
    rs.sync(false).await.unwrap();
    let plan = clawkeep_store::history::plan_restore(&tree_map(&r), &snap);
    assert_eq!(plan.write, ["SOUL.md", "memory/old.md"]);
    assert_eq!(plan.delete, ["new.md"]);
    let err = clawkeep_store::history::snapshot_at(
        &src,
        humantime::parse_rfc3339("2020-01-01T00:00:00Z").unwrap(),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("no snapshot at or before 2020-01-01"),
        "{err}"
    );
    // Applied: exactly the files of then, the deleted one back, the later one gone; the next
    // pass makes that the newest snapshot, and history still has the state it replaced.
    let dry = rs.restore(&snap, true).await.unwrap();
    assert_eq!(dry, plan);
    assert!(r.join("new.md").exists(), "a dry run changes nothing");
    rs.restore(&snap, false).await.unwrap();
    assert_eq!(tree(&r), before);
    let pushed = rs.sync(false).await.unwrap();
    assert!(pushed.pushed && pushed.complete(), "{pushed:?}");
    let newest = src
        .snapshot(&src.snapshot_ids().await.unwrap().pop().unwrap())
        .await
        .unwrap();
    assert_eq!(newest.files, snap.files);
    assert_eq!(src.snapshot_ids().await.unwrap().len(), 3);
}

fn tree_map(root: &std::path::Path) -> clawkeep_store::manifest::FileMap {
    tree(root)
        .into_iter()
        .map(|(k, v)| {
            (
                k,
                clawkeep_store::manifest::FileRef {
                    sha256: clawkeep_store::scan::hash_bytes(&v),
                    size: v.len() as u64,
                },
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pruning_keeps_the_newest_snapshot_and_what_retained_history_needs() {
    let g = Garage::start().await;
    let bucket = g.bucket("ck-agent-prune").await;
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let s = syncer(bucket.clone(), &a, "prune");
    for v in 0..3 {
        write(&a, "MEMORY.md", format!("version {v}").as_bytes());
        write(&a, "stable.md", b"never changes");
        s.sync(false).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(bucket.snapshot_ids().await.unwrap().len(), 3);
    assert_eq!(bucket.list(".clawkeep/blobs/").await.unwrap().len(), 4);
    // Inside retention nothing goes.
    let now = std::time::SystemTime::now();
    let p = clawkeep_store::history::prune(&bucket, Duration::from_secs(3600), Duration::ZERO, now)
        .await
        .unwrap();
    assert_eq!(p, clawkeep_store::history::Pruned::default());
    // Past it: only the newest snapshot and its two blobs stay.
    let later = now + Duration::from_secs(7200);
    let p =
        clawkeep_store::history::prune(&bucket, Duration::from_secs(3600), Duration::ZERO, later)
            .await
            .unwrap();
    assert_eq!((p.snapshots, p.blobs), (2, 2));
    let b = tmp.path().join("b");
    syncer(bucket.clone(), &b, "prune")
        .pull_into_place()
        .await
        .unwrap();
    assert_eq!(tree(&a), tree(&b));
    // Fresh blobs (a push in flight) are never pruned.
    write(&a, "MEMORY.md", b"in flight");
    let sha = clawkeep_store::scan::hash_bytes(b"in flight");
    bucket
        .put_blob_from(&a.join("MEMORY.md"), &sha)
        .await
        .unwrap();
    let p = clawkeep_store::history::prune(
        &bucket,
        Duration::ZERO,
        Duration::from_secs(3600),
        std::time::SystemTime::now(),
    )
    .await
    .unwrap();
    assert_eq!(
        p.blobs, 0,
        "an unreferenced blob younger than the grace period stays"
    );
    assert!(bucket
        .exists(&clawkeep_store::keys::blob_key(&sha))
        .await
        .unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_that_comes_back_empty_deletes_nothing_here_and_is_refilled() {
    let g = Garage::start().await;
    let bucket = g.bucket("ck-agent-wiped").await;
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    write(&a, "SOUL.md", b"soul");
    write(&a, "memory/day.md", b"day");
    let s = syncer(bucket.clone(), &a, "wiped");
    s.sync(false).await.unwrap();
    // Someone empties the bucket (or a listing comes back empty): the local brain is the
    // only copy now, and the next pass must treat it so.
    for k in keys(&bucket).await {
        bucket.delete(&k).await.unwrap();
    }
    assert!(keys(&bucket).await.is_empty());
    let r = s.sync(true).await.unwrap();
    assert_eq!((r.deleted_local, r.uploaded), (0, 2), "{r:?}");
    assert_eq!(tree(&a).len(), 2);
    let b = tmp.path().join("b");
    syncer(bucket.clone(), &b, "wiped")
        .pull_into_place()
        .await
        .unwrap();
    assert_eq!(tree(&a), tree(&b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlink_swapped_in_by_the_agent_never_leads_the_sync_outside() {
    let g = Garage::start().await;
    let bucket = g.bucket("ck-agent-swap").await;
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, outside) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("outside"),
    );
    write(&outside, "keep.md", b"outside, must stay");
    write(&a, "notes/keep.md", b"v1");
    write(&a, "notes/other.md", b"x");
    let sa = syncer(bucket.clone(), &a, "writer");
    sa.sync(false).await.unwrap();
    let sb = syncer(bucket.clone(), &b, "agent");
    sb.pull_into_place().await.unwrap();
    // The agent swaps its notes/ directory for a symlink to a directory outside; meanwhile
    // the store changes notes/keep.md and deletes notes/other.md.
    std::fs::rename(b.join("notes"), tmp.path().join("notes-moved")).unwrap();
    std::os::unix::fs::symlink(&outside, b.join("notes")).unwrap();
    write(&a, "notes/keep.md", b"v2 from the store");
    std::fs::remove_file(a.join("notes/other.md")).unwrap();
    sa.sync(false).await.unwrap();
    let r = sb.sync(true).await.unwrap();
    // Nothing was written or deleted through the link, and nothing outside went up.
    assert_eq!(
        std::fs::read(outside.join("keep.md")).unwrap(),
        b"outside, must stay"
    );
    assert_eq!(tree(&outside).len(), 1, "{:?}", tree(&outside));
    assert!(!r.complete(), "the refused writes are reported: {r:?}");
    assert!(
        r.skipped.iter().any(|s| s.starts_with("notes: symlink")),
        "{r:?}"
    );
    let snap = bucket
        .snapshot(&bucket.snapshot_ids().await.unwrap().pop().unwrap())
        .await
        .unwrap();
    assert!(snap.files.keys().all(|k| !k.ends_with("keep.md")
        || snap.files[k].sha256 != clawkeep_store::scan::hash_bytes(b"outside, must stay")));
}

/// An access time two days back: a read of the file moves it (relatime moves one older
/// than the file's change time), so it stays only while nothing reads the file.
fn two_days_ago() -> std::time::SystemTime {
    std::time::SystemTime::now() - Duration::from_secs(2 * 86400)
}

/// Make `rel` under `root` a sparse file of `len` bytes, last read [`two_days_ago`]: its
/// size says `len`, its blocks take no room, and reading it all would take as long as
/// reading `len` real bytes.
fn sparse(root: &std::path::Path, rel: &str, len: u64) {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(root.join(rel))
        .unwrap();
    f.set_len(len).unwrap();
    f.set_times(std::fs::FileTimes::new().set_accessed(two_days_ago()))
        .unwrap();
}

/// Whether the file at `p` has not been read since [`sparse`] made it.
fn unread(p: &std::path::Path) -> bool {
    let accessed = std::fs::metadata(p).unwrap().accessed().unwrap();
    accessed < std::time::SystemTime::now() - Duration::from_secs(86400)
}

/// A pass, which must end within a minute (reading a terabyte would take far longer).
async fn quick_pass(s: &clawkeep_store::Syncer, full: bool) -> clawkeep_store::SyncReport {
    tokio::time::timeout(Duration::from_secs(60), s.sync(full))
        .await
        .expect("the pass ended within a minute: no big file was read")
        .unwrap()
}

fn too_big(r: &clawkeep_store::SyncReport) -> Vec<(&str, u64, bool)> {
    r.too_big
        .iter()
        .map(|t| (t.path.as_str(), t.size, t.in_store))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sparse_terabyte_is_never_read_nor_uploaded_deletes_nothing_anywhere_and_goes_up_once_it_fits(
) {
    const TIB: u64 = 1 << 40;
    let g = Garage::start().await;
    let bucket = g.bucket("ck-agent-toobig").await;
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    write(&a, "SOUL.md", b"soul");
    write(&a, "MEMORY.md", b"remembered");
    let s = syncer(bucket.clone(), &a, "toobig");
    let r = quick_pass(&s, true).await;
    assert_eq!((r.uploaded, r.too_big_count), (2, 0), "{r:?}");

    // The agent makes a new sparse terabyte, and blows a synced file up to one.
    sparse(&a, "disk.img", TIB);
    sparse(&a, "MEMORY.md", TIB);
    write(&a, "notes.md", b"a small new file");
    let r = quick_pass(&s, true).await;
    assert_eq!(r.uploaded, 1, "only the small new file goes up: {r:?}");
    assert_eq!(
        too_big(&r),
        [("MEMORY.md", TIB, false), ("disk.img", TIB, false)],
        "{r:?}"
    );
    assert_eq!((r.too_big_count, r.too_big_new_count), (2, 2), "{r:?}");
    assert_eq!(r.too_big_new, r.too_big);
    assert_eq!((r.deleted_remote, r.deleted_local), (0, 0), "{r:?}");
    assert!(r.complete(), "a file left out is not a failure: {r:?}");
    let plain = |keys: Vec<String>| -> Vec<String> {
        keys.into_iter()
            .filter(|k| !k.starts_with(".clawkeep/"))
            .collect()
    };
    assert_eq!(
        plain(keys(&bucket).await),
        ["MEMORY.md", "SOUL.md", "notes.md"]
    );
    // The store keeps the last version of MEMORY.md that fitted; nothing big reached it.
    assert_eq!(
        &bucket.get_bytes("MEMORY.md").await.unwrap()[..],
        b"remembered"
    );
    for o in bucket.list("").await.unwrap() {
        assert!(o.size < 1 << 20, "{} is {} bytes", o.key, o.size);
    }

    // Further passes delete nothing on either side, and name the files only the first time.
    for full in [false, true] {
        let r = quick_pass(&s, full).await;
        assert_eq!((r.deleted_remote, r.deleted_local), (0, 0), "{r:?}");
        assert!(r.held.is_none() && r.rebased.is_none(), "{r:?}");
        assert_eq!((r.too_big_count, r.too_big_new_count), (2, 0), "{r:?}");
        assert!(r.too_big_new.is_empty(), "{r:?}");
        assert_eq!(
            plain(keys(&bucket).await),
            ["MEMORY.md", "SOUL.md", "notes.md"]
        );
        for f in ["disk.img", "MEMORY.md"] {
            assert_eq!(std::fs::metadata(a.join(f)).unwrap().len(), TIB);
            assert!(unread(&a.join(f)), "{f} was read");
        }
    }
    assert!(
        s.pending().await.unwrap().is_empty(),
        "nothing looks deleted or changed"
    );

    // Once they fit again, they go up like any changed file.
    write(&a, "disk.img", b"an image after all");
    write(&a, "MEMORY.md", b"remembered, and more");
    let r = quick_pass(&s, false).await;
    assert_eq!((r.uploaded, r.too_big_count), (2, 0), "{r:?}");
    assert!(r.conflicts.is_empty(), "{r:?}");
    let newest = newest(&bucket).await;
    assert_eq!(newest["disk.img"], b"an image after all");
    assert_eq!(newest["MEMORY.md"], b"remembered, and more");
    assert_eq!(newest.len(), 4, "{:?}", newest.keys());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_a_file_is_left_out_for_its_size_the_other_side_keeps_its_version_and_its_edits() {
    const MIB: u64 = 1 << 20;
    let g = Garage::start().await;
    let bucket = g.bucket("ck-shared-toobig").await;
    let tmp = tempfile::tempdir().unwrap();
    let (a, c) = (tmp.path().join("a"), tmp.path().join("c"));
    // `a` syncs files up to 1 MiB, `c` (another writer) up to the default 1 GiB.
    let sa = syncer_with(
        bucket.clone(),
        &a,
        "a",
        clawkeep_store::SyncLimits {
            max_file_size: MIB,
            ..Default::default()
        },
    );
    let sc = syncer(bucket.clone(), &c, "c");
    write(&a, "notes.md", b"v1");
    quick_pass(&sa, false).await;
    sc.pull_into_place().await.unwrap();

    // A store version over a's limit never comes down to a, and a never deletes it.
    write(&c, "video.bin", &pseudo_random(2 * MIB as usize, 3));
    quick_pass(&sc, false).await;
    for (pass, full) in [(1, false), (2, true), (3, false)] {
        let r = quick_pass(&sa, full).await;
        assert_eq!((r.downloaded, r.deleted_remote), (0, 0), "{r:?}");
        assert!(!a.join("video.bin").exists());
        assert!(keys(&bucket).await.contains(&"video.bin".to_string()));
        assert_eq!(too_big(&r), [("video.bin", 2 * MIB, true)], "{r:?}");
        assert_eq!(r.too_big_new_count, usize::from(pass == 1), "{r:?}");
    }

    // a's notes.md grows past the limit: left out, while c edits its own copy.
    sparse(&a, "notes.md", 2 * MIB);
    let r = quick_pass(&sa, false).await;
    assert_eq!(r.too_big_count, 2, "{r:?}");
    write(&c, "notes.md", b"c's edit");
    quick_pass(&sc, false).await;
    let r = quick_pass(&sa, false).await;
    assert_eq!(
        (r.downloaded, r.uploaded, r.deleted_remote),
        (0, 0, 0),
        "{r:?}"
    );
    assert_eq!(
        std::fs::metadata(a.join("notes.md")).unwrap().len(),
        2 * MIB
    );
    assert_eq!(
        &bucket.get_bytes("notes.md").await.unwrap()[..],
        b"c's edit"
    );

    // Once it fits again, both edits are kept: the merge did not take c's as agreed.
    write(&a, "notes.md", b"a's edit");
    let r = quick_pass(&sa, false).await;
    assert_eq!(r.conflicts.len(), 1, "{r:?}");
    assert_eq!(std::fs::read(a.join("notes.md")).unwrap(), b"a's edit");
    let copy = std::fs::read_dir(&a)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .find(|n| n.starts_with("notes.conflict-"))
        .expect("c's edit kept beside a's");
    assert_eq!(std::fs::read(a.join(copy)).unwrap(), b"c's edit");
    assert!(keys(&bucket).await.contains(&"video.bin".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_file_bigger_than_its_snapshot_says_is_read_no_further_than_the_limit() {
    const MIB: u64 = 1 << 20;
    let g = Garage::start().await;
    let bucket = g.bucket("ck-agent-liar").await;
    let tmp = tempfile::tempdir().unwrap();
    let (a, c) = (tmp.path().join("a"), tmp.path().join("c"));
    write(&c, "video.bin", &pseudo_random(2 * MIB as usize, 5));
    quick_pass(&syncer(bucket.clone(), &c, "c"), false).await;
    // Whoever holds the bucket's key writes a snapshot that calls it 10 bytes.
    let id = bucket.snapshot_ids().await.unwrap().pop().unwrap();
    let mut files = bucket.snapshot(&id).await.unwrap().files;
    files.get_mut("video.bin").unwrap().size = 10;
    let lie = clawkeep_store::manifest::Snapshot::new("liar", files, Some(&id), Some(id.clone()));
    bucket.put_snapshot(&lie).await.unwrap();

    let sa = syncer_with(
        bucket.clone(),
        &a,
        "a",
        clawkeep_store::SyncLimits {
            max_file_size: MIB,
            ..Default::default()
        },
    );
    let r = sa.pull_into_place().await.unwrap();
    assert_eq!(r.downloaded, 0, "{r:?}");
    assert!(
        r.failed.len() == 1 && r.failed[0].contains("holds more than max_file_size"),
        "{r:?}"
    );
    assert!(!a.join("video.bin").exists());
    // Nothing of it is kept, staged or anywhere else beside a.
    fn walk(dir: &std::path::Path, out: &mut Vec<(std::path::PathBuf, u64)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            match e.file_type().unwrap().is_dir() {
                true => walk(&e.path(), out),
                false => out.push((e.path(), e.metadata().unwrap().len())),
            }
        }
    }
    let mut all = Vec::new();
    walk(tmp.path(), &mut all);
    let big: Vec<_> = all
        .iter()
        .filter(|(p, n)| *n > MIB && !p.starts_with(&c))
        .collect();
    assert!(big.is_empty(), "{big:?}");
    assert!(keys(&bucket).await.contains(&"video.bin".to_string()));
}
