//! The brain survives every way a node loses local state (issue 14's matrix), with a real
//! Garage and real `clawkeep up` processes running a sandboxed agent: the agent's directory
//! lost, the sync state lost, both, the state put back from an older copy while the store
//! moved on, the home put back from an older backup, two supervisors running one agent, and
//! the node's clock set back a day. Each case ends with the store's newest snapshot holding
//! every file it held before the fault (or a conflict copy of it), the home equal to it, and
//! no object deleted from the bucket.

#[path = "../supervisor/tests/support/mod.rs"]
mod support;

#[path = "../minio/tests/support/mod.rs"]
mod s3;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use clawkeep_store::remote::Remote;
use support::{rt, wait_for, Scratch, Supervisor};

const AGENT: &str = "keeper";
const BUCKET: &str = "ck-agent-keeper";

/// A real Garage the supervisors use as an external store, and a view of the agent's bucket.
struct World {
    rt: tokio::runtime::Runtime,
    garage: s3::Garage,
    key: PathBuf,
    _scratch: Scratch,
}

impl World {
    fn new(tag: &str) -> Self {
        let rt = rt();
        let garage = rt.block_on(s3::Garage::start());
        let scratch = Scratch::new(&format!("{tag}-key"));
        let key = scratch.dir.join("store.key");
        let root = &garage.secrets.root;
        std::fs::write(&key, format!("{}:{}", root.access_key, root.secret_key)).unwrap();
        World {
            rt,
            garage,
            key,
            _scratch: scratch,
        }
    }

    /// The fleet: this store and one agent that, like OpenClaw's workspace seeding, writes
    /// its SOUL.md when it starts and finds none.
    fn body(&self) -> String {
        format!(
            r#"
[store]
endpoint = "{endpoint}"
credentials = "{key}"
admin = {{ kind = "none" }}
debounce = "300ms"
reconcile = "2s"

[[agent]]
name = "{AGENT}"
command = "/bin/sh"
args = ["-c", '''[ -f $HOME/SOUL.md ] || echo 'a seeded soul' > $HOME/SOUL.md; while sleep 1; do :; done''']
"#,
            endpoint = self.garage.managed.endpoint(),
            key = self.key.display()
        )
    }

    fn bucket(&self) -> Remote {
        self.garage.root().bucket(BUCKET)
    }

    /// The newest snapshot's files, with their contents from the blobs.
    fn brain(&self) -> BTreeMap<String, Vec<u8>> {
        self.rt.block_on(s3::newest(&self.bucket()))
    }

    /// Every object in the bucket.
    fn keys(&self) -> BTreeSet<String> {
        self.rt
            .block_on(s3::keys(&self.bucket()))
            .into_iter()
            .filter(|k| k != clawkeep_store::lease::KEY)
            .collect()
    }

    fn snapshot_ids(&self) -> Vec<String> {
        self.rt.block_on(self.bucket().snapshot_ids()).unwrap()
    }

    /// Wait until the newest snapshot holds `files` with these contents.
    fn wait_stored(&self, files: &[(&str, &[u8])]) {
        wait_for(Duration::from_secs(20), "the files in the store", || {
            let b = self.brain();
            files
                .iter()
                .all(|(p, v)| b.get(*p).map(Vec::as_slice) == Some(*v))
                .then_some(())
        });
    }
}

fn home(sup: &Supervisor) -> PathBuf {
    sup.state.join("agents").join(AGENT).join("home")
}

fn sync_state(sup: &Supervisor) -> PathBuf {
    sup.state.join("brains/sync/agent-keeper.json")
}

fn put(dir: &Path, rel: &str, bytes: &[u8]) {
    s3::write(dir, rel, bytes);
}

/// The home's files as the sync sees them (without the `knowledge` mount points).
fn local(home: &Path) -> BTreeMap<String, Vec<u8>> {
    s3::tree(home)
        .into_iter()
        .filter(|(k, _)| !k.starts_with("knowledge/"))
        .collect()
}

/// A brain with a few memories and a 3 MB file, as in the issue.
fn fill(home: &Path) -> Vec<(&'static str, Vec<u8>)> {
    let files: Vec<(&'static str, Vec<u8>)> = vec![
        ("AGENTS.md", b"# agents\n".to_vec()),
        ("IDENTITY.md", b"# identity\n".to_vec()),
        ("memory/2026-12-04 notes.md", b"france: paris\n".to_vec()),
        (
            "memory/blob.bin",
            (0..3 << 20).map(|i| (i % 251) as u8).collect(),
        ),
    ];
    for (p, v) in &files {
        put(home, p, v);
    }
    files
}

fn refs<'a>(files: &'a [(&'static str, Vec<u8>)]) -> Vec<(&'static str, &'a [u8])> {
    files.iter().map(|(p, v)| (*p, v.as_slice())).collect()
}

/// `clawkeep sync push keeper`, which must leave nothing behind and hold nothing back.
fn push(sup: &Supervisor) -> String {
    let out = sup.cli(&["sync", "push", AGENT]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "sync push: {text}");
    text
}

/// Every file of `before` is in `after` at its path, or as a conflict copy beside it.
fn assert_kept(before: &BTreeMap<String, Vec<u8>>, after: &BTreeMap<String, Vec<u8>>) {
    for (p, v) in before {
        if after.get(p) == Some(v) {
            continue;
        }
        let (dir, file) = p.rsplit_once('/').map_or(("", p.as_str()), |(d, f)| (d, f));
        let stem = file.rsplit_once('.').map_or(file, |(s, _)| s);
        let prefix = if dir.is_empty() {
            format!("{stem}.conflict-")
        } else {
            format!("{dir}/{stem}.conflict-")
        };
        assert!(
            after.iter().any(|(k, w)| k.starts_with(&prefix) && w == v),
            "{p} as it was is neither in the store nor kept as a conflict copy; the store has {:?}",
            after.keys().collect::<Vec<_>>()
        );
    }
}

/// The end of every case: nothing the store held is lost, the home is the store's newest
/// snapshot, and no object was deleted from the bucket.
fn assert_survived(
    w: &World,
    sup: &Supervisor,
    before: &BTreeMap<String, Vec<u8>>,
    keys: &BTreeSet<String>,
) {
    let after = w.brain();
    assert_kept(before, &after);
    assert_eq!(
        local(&home(sup)).keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "the home and the store's newest snapshot differ"
    );
    assert_eq!(local(&home(sup)), after, "the home differs from the store");
    let now = w.keys();
    let gone: Vec<&String> = keys.difference(&now).collect();
    assert!(gone.is_empty(), "deleted from the store: {gone:?}");
    let st = sup.cli(&["sync", "status", "--json"]);
    let st: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    for row in st["rows"].as_array().unwrap() {
        assert!(row["held"].is_null(), "deletions held back: {row}");
    }
}

/// After the fault: `up` again, a pass by hand, and the checks every case ends with.
fn up_and_check(
    w: &World,
    sup: &mut Supervisor,
    before: &BTreeMap<String, Vec<u8>>,
    keys: &BTreeSet<String>,
) {
    sup.up_again();
    sup.wait_state(AGENT, "running", Duration::from_secs(60));
    push(sup);
    assert_survived(w, sup, before, keys);
}

/// Start a supervisor with the agent running and its brain (SOUL.md and `fill`) stored.
fn start_filled(w: &World, tag: &str) -> (Supervisor, Vec<(&'static str, Vec<u8>)>) {
    let sup = Supervisor::start(tag, &w.body());
    sup.wait_state(AGENT, "running", Duration::from_secs(60));
    let files = fill(&home(&sup));
    w.wait_stored(&refs(&files));
    w.wait_stored(&[("SOUL.md", b"a seeded soul\n")]);
    (sup, files)
}

#[test]
fn a_lost_agent_directory_with_its_sync_state_kept_gets_the_whole_brain_back() {
    let w = World::new("loss-a");
    let (mut sup, _) = start_filled(&w, "loss-a");
    // The agent's soul grew since it was seeded.
    put(&home(&sup), "SOUL.md", b"a soul that learned\n");
    w.wait_stored(&[("SOUL.md", b"a soul that learned\n")]);
    sup.down();
    let (before, keys) = (w.brain(), w.keys());
    assert_eq!(before.len(), 5, "{:?}", before.keys());
    // The agent's directory (home and bundle) is lost; the sync state stays.
    std::fs::remove_dir_all(sup.state.join("agents").join(AGENT)).unwrap();
    assert!(sync_state(&sup).exists());
    sup.up_again();
    sup.wait_state(AGENT, "running", Duration::from_secs(60));
    // The brain was back before the agent ran: it did not seed a SOUL.md of its own.
    assert_eq!(
        std::fs::read(home(&sup).join("SOUL.md")).unwrap(),
        b"a soul that learned\n"
    );
    push(&sup);
    assert_survived(&w, &sup, &before, &keys);
    let logs = sup.logs(AGENT);
    assert!(
        logs.contains("merged with the store without deleting anything")
            && logs.contains("no sync mark"),
        "{logs}"
    );
    sup.down();
}

#[test]
fn a_lost_sync_state_deletes_nothing_the_home_lost_while_nobody_watched() {
    let w = World::new("loss-b");
    let (mut sup, _) = start_filled(&w, "loss-b");
    // clawkeep dies without its last push; while nobody watches, a file is written and one
    // disappears; then the sync state is lost.
    sup.kill_9();
    let h = home(&sup);
    put(&h, "memory/unseen.md", b"written while clawkeep was down");
    std::fs::remove_file(h.join("AGENTS.md")).unwrap();
    std::fs::remove_file(sync_state(&sup)).unwrap();
    let (before, keys) = (w.brain(), w.keys());
    // AGENTS.md's loss cannot be explained (no state saw it go): it comes back.
    up_and_check(&w, &mut sup, &before, &keys);
    assert_eq!(
        w.brain().get("memory/unseen.md").map(Vec::as_slice),
        Some(&b"written while clawkeep was down"[..])
    );
    sup.down();
}

#[test]
fn a_lost_agent_directory_and_sync_state_get_the_whole_brain_back() {
    let w = World::new("loss-c");
    let (mut sup, _) = start_filled(&w, "loss-c");
    sup.down();
    let (before, keys) = (w.brain(), w.keys());
    std::fs::remove_dir_all(sup.state.join("agents").join(AGENT)).unwrap();
    std::fs::remove_file(sync_state(&sup)).unwrap();
    up_and_check(&w, &mut sup, &before, &keys);
    sup.down();
}

#[test]
fn a_sync_state_put_back_from_an_older_copy_deletes_nothing_the_store_gained_since() {
    let w = World::new("loss-d");
    let (mut sup, _) = start_filled(&w, "loss-d");
    put(&home(&sup), "p.md", b"p");
    w.wait_stored(&[("p.md", b"p")]);
    sup.down();
    let with_p = SystemTime::now();
    // A backup of the state dir's sync state, taken now.
    let stale = std::fs::read(sync_state(&sup)).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    sup.up_again();
    sup.wait_state(AGENT, "running", Duration::from_secs(60));
    std::fs::remove_file(home(&sup).join("p.md")).unwrap();
    put(&home(&sup), "r.md", b"r");
    wait_for(Duration::from_secs(20), "p.md gone, r.md in", || {
        let b = w.brain();
        (!b.contains_key("p.md") && b.contains_key("r.md")).then_some(())
    });
    sup.down();
    // Elsewhere (another node, a tool), the brain is restored to when p.md was there: the
    // store moves on without this node.
    w.rt.block_on(async {
        let bucket = w.bucket();
        let snap = clawkeep_store::history::snapshot_at(&bucket, with_p)
            .await
            .unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let other = s3::syncer(bucket, &tmp.path().join("other"), "restore elsewhere");
        other.pull_into_place().await.unwrap();
        other.restore(&snap, false).await.unwrap();
        let yes = clawkeep_store::PassOptions {
            full: false,
            allow_deletes: true,
            progress: None,
        };
        other.pass(yes).await.unwrap();
    });
    assert!(w.brain().contains_key("p.md"));
    // The node's sync state is put back from the older copy.
    std::fs::write(sync_state(&sup), &stale).unwrap();
    let (before, keys) = (w.brain(), w.keys());
    up_and_check(&w, &mut sup, &before, &keys);
    sup.down();
}

#[test]
fn a_home_put_back_from_an_older_backup_keeps_what_the_store_gained_since() {
    let w = World::new("loss-e");
    let (mut sup, _) = start_filled(&w, "loss-e");
    let h = home(&sup);
    put(&h, "notes.md", b"v1");
    w.wait_stored(&[("notes.md", b"v1")]);
    // A backup of the home, as `cp -a` makes it (mtimes and extended attributes kept).
    let scratch = Scratch::new("loss-e-backup");
    let backup = scratch.dir.join("home");
    let cp = std::process::Command::new("cp")
        .arg("-a")
        .arg(&h)
        .arg(&backup)
        .status()
        .unwrap();
    assert!(cp.success());
    std::thread::sleep(Duration::from_millis(1100));
    put(&h, "notes.md", b"v2, written after the backup");
    put(&h, "new.md", b"also after the backup");
    w.wait_stored(&[
        ("notes.md", b"v2, written after the backup"),
        ("new.md", b"also after the backup"),
    ]);
    sup.down();
    let (before, keys) = (w.brain(), w.keys());
    // The home is lost and put back from the backup; the sync state is current.
    std::fs::remove_dir_all(&h).unwrap();
    let cp = std::process::Command::new("cp")
        .arg("-a")
        .arg(&backup)
        .arg(&h)
        .status()
        .unwrap();
    assert!(cp.success());
    up_and_check(&w, &mut sup, &before, &keys);
    // The newer version is in its place; the backup's older one beside it.
    let after = w.brain();
    assert_eq!(after["notes.md"], b"v2, written after the backup");
    assert!(
        after
            .iter()
            .any(|(k, v)| k.starts_with("notes.conflict-") && v == b"v1"),
        "{:?}",
        after.keys()
    );
    sup.down();
}

#[test]
fn a_second_supervisor_running_the_same_agent_is_refused_until_it_takes_over() {
    let w = World::new("loss-f");
    let (mut one, _) = start_filled(&w, "twin-one");
    let snapshots = w.snapshot_ids().len();
    // The same fleet on a second node (another state dir) against the same store.
    let mut two = Supervisor::start("twin-two", &w.body());
    let refusal = wait_for(Duration::from_secs(30), "the second start refused", || {
        let logs = two.logs(AGENT);
        logs.contains("clawkeep sync takeover keeper")
            .then_some(logs)
    });
    assert!(
        refusal.contains("is synced by the clawkeep on test-twin-one"),
        "{refusal}"
    );
    assert_ne!(two.row(AGENT)["state"], "running");
    assert_eq!(
        w.snapshot_ids().len(),
        snapshots,
        "the second pushed nothing"
    );
    let (before, keys) = (w.brain(), w.keys());
    // The first node dies (its lease stays); the second takes the agent over.
    one.kill_9();
    let out = two.cli(&["sync", "takeover", AGENT]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success() && text.contains("test-twin-one"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    two.wait_state(AGENT, "running", Duration::from_secs(60));
    push(&two);
    assert_survived(&w, &two, &before, &keys);
    // The first node comes back: now it is the one refused, and it deletes nothing. The
    // agent its killed supervisor left running is killed first, not left unsupervised.
    one.up_again();
    wait_for(Duration::from_secs(30), "the first node refused", || {
        one.logs(AGENT)
            .contains("is synced by the clawkeep on test-twin-two")
            .then_some(())
    });
    assert_survived(&w, &two, &before, &keys);
    let logs = one.logs(AGENT);
    assert!(
        logs.contains("leftover processes of a previous supervisor"),
        "{logs}"
    );
    let procs = std::fs::read_to_string(
        Path::new("/sys/fs/cgroup/pids")
            .join(&one.cgroup)
            .join(AGENT)
            .join("cgroup.procs"),
    )
    .unwrap_or_default();
    assert_eq!(procs.trim(), "", "the orphaned agent still runs");
    one.down();
    two.down();
}

#[test]
fn snapshots_keep_their_order_when_the_nodes_clock_goes_back_a_day() {
    let faketime = Path::new("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1");
    assert!(
        faketime.exists(),
        "{} is missing: run scripts/install-deps (Debian's faketime)",
        faketime.display()
    );
    let mut w = World::new("loss-g");
    let (mut sup, _) = start_filled(&w, "loss-g");
    put(&home(&sup), "f1.md", b"before the clock went back");
    w.wait_stored(&[("f1.md", b"before the clock went back")]);
    sup.down();
    // The node's clock is set back a day: clawkeep and the store (which refuses requests
    // signed more than 15 minutes off its own clock) run under libfaketime.
    let back = [
        ("LD_PRELOAD", faketime.to_str().unwrap()),
        ("FAKETIME", "-1d"),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
    ];
    w.garage.kill();
    w.rt.block_on(w.garage.resume_with(&back));
    sup.up_again_with(&back);
    sup.wait_state(AGENT, "running", Duration::from_secs(60));
    put(&home(&sup), "f2.md", b"second");
    w.wait_stored(&[("f2.md", b"second")]);
    let after_f2 = w.snapshot_ids().pop().unwrap();
    put(&home(&sup), "f3.md", b"third");
    w.wait_stored(&[("f3.md", b"third")]);
    push(&sup);
    // Push order is kept: the newest has all three, nothing was deleted on either side.
    let ids = w.snapshot_ids();
    assert!(
        ids.last().is_some_and(|newest| *newest > after_f2),
        "{ids:?}"
    );
    let brain = w.brain();
    for f in ["f1.md", "f2.md", "f3.md"] {
        assert!(
            brain.contains_key(f),
            "{f} missing from the newest: {ids:?}"
        );
        assert!(home(&sup).join(f).exists(), "{f} deleted from the home");
    }
    // `sync history` gives each push's time on the history's own timeline, and `restore --at`
    // that time picks that push: the one after f2, before f3.
    let out = sup.cli(&["sync", "history", AGENT, "--json"]);
    let rows: Vec<clawkeep_store::history::Entry> = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    let row = rows
        .iter()
        .find(|r| r.id == after_f2)
        .expect("in the history");
    let at = humantime::parse_rfc3339(&row.at).unwrap();
    let taken = humantime::parse_rfc3339(&row.taken).unwrap();
    assert!(
        at > taken + Duration::from_secs(23 * 3600),
        "stamped after the newest, not by the clock a day behind: {row:?}"
    );
    let table = String::from_utf8_lossy(&sup.cli(&["sync", "history", AGENT]).stdout).to_string();
    assert!(
        table.contains(&row.at) && table.contains("AT (for restore --at)"),
        "{table}"
    );
    let at = row.at.clone();
    let out = sup.cli(&["restore", AGENT, "--at", &at, "--dry-run"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("would remove  f3.md") && !text.contains("f2.md"),
        "{text}"
    );
    sup.down();
}

fn status_text(sup: &Supervisor) -> (bool, String) {
    let out = sup.cli(&["sync", "status"]);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn every_deletion_is_told_with_its_undo_and_a_large_share_waits_for_a_yes() {
    let w = World::new("told");
    let (mut sup, _) = start_filled(&w, "told");
    let h = home(&sup);
    // One file deleted: it goes, and `sync status` and the agent's log say which, with the
    // command that brings it back.
    std::fs::remove_file(h.join("IDENTITY.md")).unwrap();
    wait_for(
        Duration::from_secs(20),
        "IDENTITY.md gone from the store",
        || (!w.brain().contains_key("IDENTITY.md")).then_some(()),
    );
    let (_, table) = wait_for(
        Duration::from_secs(10),
        "the deletion in sync status",
        || {
            let st = status_text(&sup);
            st.1.contains("deleted 1 file in the store").then_some(st)
        },
    );
    let line = table
        .lines()
        .find(|l| l.contains("deleted 1 file "))
        .unwrap()
        .to_string();
    assert!(line.contains("IDENTITY.md"), "{table}");
    let undo = line
        .split('`')
        .nth(1)
        .unwrap_or_else(|| panic!("no command in: {line}"));
    assert!(undo.starts_with("clawkeep restore keeper --at "), "{line}");
    assert!(sup
        .logs(AGENT)
        .contains(&line[line.find("deleted").unwrap()..]));
    // The command named is the way back.
    let args: Vec<&str> = undo.split_whitespace().skip(1).collect();
    let out = sup.cli(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    sup.wait_state(AGENT, "running", Duration::from_secs(30));
    wait_for(Duration::from_secs(20), "IDENTITY.md back", || {
        w.brain().contains_key("IDENTITY.md").then_some(())
    });
    assert!(h.join("IDENTITY.md").exists());

    // Most of the brain deleted at once: held back, nothing deleted in the store; `sync
    // status` fails and says how to confirm.
    for f in ["AGENTS.md", "IDENTITY.md", "memory/blob.bin"] {
        std::fs::remove_file(h.join(f)).unwrap();
    }
    let (ok, table) = wait_for(Duration::from_secs(20), "the held deletions", || {
        let st = status_text(&sup);
        st.1.contains("held back").then_some(st)
    });
    assert!(!ok, "sync status exits 1 while deletions wait:\n{table}");
    assert!(
        table.contains("3 deletions in the store held back")
            && table.contains("`clawkeep sync push keeper --allow-deletes`"),
        "{table}"
    );
    assert!(sup.logs(AGENT).contains("held back"));
    let out = sup.cli(&["doctor"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        !out.status.success() && text.contains("CK-DOC-006"),
        "doctor:\n{text}"
    );
    for f in ["AGENTS.md", "IDENTITY.md", "memory/blob.bin"] {
        assert!(w.keys().contains(f), "{f} deleted without a yes");
        assert!(w.brain().contains_key(f), "{f} left the newest snapshot");
    }
    // Confirmed: they go, and are told.
    let out = sup.cli(&["sync", "push", AGENT, "--allow-deletes"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}");
    assert!(text.contains("3 deleted in the store"), "{text}");
    let brain = w.brain();
    for f in ["AGENTS.md", "IDENTITY.md", "memory/blob.bin"] {
        assert!(!brain.contains_key(f), "{f} still in the newest snapshot");
    }
    let (ok, table) = status_text(&sup);
    assert!(ok && !table.contains("held back"), "{table}");
    assert!(table.contains("deleted 3 files in the store"), "{table}");
    sup.down();
}

#[test]
fn down_finishes_when_the_store_freezes_mid_pass_and_nothing_is_lost() {
    let w = World::new("frozen");
    let (mut sup, _) = start_filled(&w, "frozen");
    // The store stops answering (SIGSTOP: connections are accepted, never answered) while a
    // change waits to go up.
    let garage = nix::unistd::Pid::from_raw(w.garage.pid().unwrap() as i32);
    nix::sys::signal::kill(garage, nix::sys::signal::Signal::SIGSTOP).unwrap();
    put(&home(&sup), "late.md", b"written while the store hung");
    std::thread::sleep(Duration::from_secs(1));
    let t0 = std::time::Instant::now();
    sup.down();
    let took = t0.elapsed();
    nix::sys::signal::kill(garage, nix::sys::signal::Signal::SIGCONT).unwrap();
    assert!(
        took < Duration::from_secs(50),
        "down took {took:?} with the store frozen"
    );
    assert!(
        sup.log()
            .contains("what it had not pushed goes up at the next start"),
        "{}",
        sup.log()
    );
    // The change is still on disk and goes up at the next start.
    sup.up_again();
    sup.wait_state(AGENT, "running", Duration::from_secs(60));
    w.wait_stored(&[("late.md", b"written while the store hung")]);
    sup.down();
}
