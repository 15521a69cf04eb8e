//! The knowledge store wired into the supervisor, against a real Garage that clawkeep runs
//! itself: brains pulled before start and pushed within seconds, the sync boundary, shared
//! collections mounted read-only or read-write and enforced by the kernel and the store,
//! private to the agents granted them and without FIFOs or sockets,
//! clone and restore from the CLI, the last push at `down`, and a kill -9 mid-push.

#[path = "../supervisor/tests/support/mod.rs"]
mod support;

#[path = "../minio/tests/support/mod.rs"]
mod s3;

#[path = "../supervisor/tests/support/garage.rs"]
mod garage;

use std::path::Path;
use std::time::{Duration, Instant};

use clawkeep_store::remote::{Credential, Store};
use garage::{root_store, store_section};
use support::{rt, wait_for, Supervisor};

/// `clawkeep up` on `agents` with a managed Garage, the store as root sees it, a runtime to
/// talk to it, and the store's data dir (in `scratch`, to be dropped after `sup`).
struct StoreFleet {
    sup: Supervisor,
    root: Store,
    rt: tokio::runtime::Runtime,
    data: std::path::PathBuf,
    scratch: support::Scratch,
}

fn start(tag: &str, agents: &str) -> StoreFleet {
    let scratch = support::Scratch::new(&format!("{tag}-data"));
    let data = scratch.dir.join("store");
    let (section, port) = store_section(&data);
    let sup = Supervisor::start(tag, &format!("{section}\n{agents}"));
    let root = root_store(&data, port);
    StoreFleet {
        sup,
        root,
        rt: rt(),
        data,
        scratch,
    }
}

fn plain_keys(rt: &tokio::runtime::Runtime, store: &Store, bucket: &str) -> Vec<String> {
    rt.block_on(store.bucket(bucket).list(""))
        .map(|v| {
            v.into_iter()
                .map(|o| o.key)
                .filter(|k| !k.starts_with(".clawkeep/"))
                .collect()
        })
        .unwrap_or_default()
}

fn get(rt: &tokio::runtime::Runtime, store: &Store, bucket: &str, key: &str) -> Option<Vec<u8>> {
    rt.block_on(store.bucket(bucket).get_bytes(key))
        .ok()
        .map(|b| b.to_vec())
}

/// Put `n` files of 8 KiB, `PREFIX000.md` and on, straight into `bucket` (as a tool would).
fn drop_files(
    rt: &tokio::runtime::Runtime,
    bucket: &clawkeep_store::Remote,
    prefix: &str,
    n: usize,
) {
    rt.block_on(futures_util::future::join_all((0..n).map(|i| async move {
        bucket
            .put(
                &format!("{prefix}{i:03}.md"),
                bytes::Bytes::from(vec![b'x'; 8192]),
            )
            .await
            .unwrap()
    })));
}

/// The managed store's data served again after `down`, to check what reached it.
struct StoreAgain(std::process::Child);

impl StoreAgain {
    fn start(data: &Path) -> Self {
        let child = std::process::Command::new(s3::garage_bin())
            .args([
                "-c",
                &data.join("garage.toml").to_string_lossy(),
                "server",
                "--single-node",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        StoreAgain(child)
    }
}

impl Drop for StoreAgain {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn brains_sync_within_seconds_shared_knowledge_is_enforced_and_down_pushes_the_rest() {
    let StoreFleet {
        mut sup,
        root,
        rt,
        data,
        scratch,
    } = start(
        "store",
        r#"[[agent]]
name = "writer"
command = "/bin/sh"
args = ["-c", '''echo first > $HOME/notes.md; mkdir -p $HOME/credentials; echo TOKEN > $HOME/credentials/token; echo db > $HOME/state.sqlite; echo shared-by-writer > $HOME/knowledge/docs/shared.md && echo shared=ok; while sleep 1; do :; done''']
knowledge = { docs = "rw" }

[[agent]]
name = "reader"
command = "/bin/sh"
args = ["-c", '''echo x > $HOME/knowledge/docs/mine.md 2>&1 || echo write=refused; while sleep 0.3; do [ -f $HOME/knowledge/docs/shared.md ] && echo seen=$(cat $HOME/knowledge/docs/shared.md) && break; done; while sleep 1; do :; done''']
knowledge = { docs = "ro" }
"#,
    );
    sup.wait_state("writer", "running", Duration::from_secs(60));
    sup.wait_state("reader", "running", Duration::from_secs(60));

    // A write inside the workspace is in the store within 5 s.
    let t0 = Instant::now();
    wait_for(Duration::from_secs(10), "notes.md in the store", || {
        plain_keys(&rt, &root, "ck-agent-writer")
            .contains(&"notes.md".to_string())
            .then_some(())
    });
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t0.elapsed()
    );
    let home = sup.state.join("agents/writer/home");
    std::thread::sleep(Duration::from_millis(1500));
    let mid = std::time::SystemTime::now();
    std::thread::sleep(Duration::from_millis(100));
    std::fs::write(home.join("from-host.md"), "written on the host").unwrap();
    let t1 = Instant::now();
    wait_for(Duration::from_secs(10), "from-host.md in the store", || {
        get(&rt, &root, "ck-agent-writer", "from-host.md")
            .filter(|b| b == b"written on the host")
            .map(|_| ())
    });
    assert!(
        t1.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t1.elapsed()
    );

    // Shared knowledge: the writer's write reaches the reader; the reader cannot write, not
    // in the sandbox (EROFS) and not through its store key (AccessDenied).
    assert!(
        sup.logs("writer").contains("shared=ok"),
        "{}",
        sup.logs("writer")
    );
    wait_for(
        Duration::from_secs(20),
        "the reader to see the writer's file",
        || {
            sup.logs("reader")
                .contains("seen=shared-by-writer")
                .then_some(())
        },
    );
    assert!(
        sup.logs("reader").contains("write=refused"),
        "{}",
        sup.logs("reader")
    );
    assert!(
        sup.logs("reader").contains("Read-only file system"),
        "{}",
        sup.logs("reader")
    );
    let reader_key = Credential::from_file(&sup.state.join("brains/keys/reader.json")).unwrap();
    let reader_store = Store::connect(root.endpoint(), "us-east-1", &reader_key);
    let err = rt
        .block_on(
            reader_store
                .bucket("ck-shared-docs")
                .put("mine.md", bytes::Bytes::from_static(b"x")),
        )
        .unwrap_err();
    assert_eq!(err.s3_code(), Some("AccessDenied"), "{err}");
    assert_eq!(
        get(&rt, &reader_store, "ck-shared-docs", "shared.md").as_deref(),
        Some(&b"shared-by-writer\n"[..])
    );

    // `sync status` shows every brain and collection, healthy and enforced.
    let out = sup.cli(&["sync", "status", "--json"]);
    let st: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(st["healthy"], true, "{st}");
    assert_eq!(st["grants_enforced"], true);
    let mut names: Vec<&str> = st["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["docs", "reader", "writer"], "{st}");
    let table = String::from_utf8(sup.cli(&["sync", "status"]).stdout).unwrap();
    assert!(
        table.contains("ck-agent-writer")
            && table.contains("ck-shared-docs")
            && table.contains("healthy"),
        "{table}"
    );

    // By hand: a pass now, for a brain or a collection; an unknown name is a clear error.
    let out = sup.cli(&["sync", "push", "writer"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success() && text.starts_with("writer: ") && text.contains("uploaded"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = sup.cli(&["sync", "pull", "shared:docs", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        report["downloaded"].is_u64() && report["failed"].is_array(),
        "{report}"
    );
    let out = sup.cli(&["sync", "push", "nobody"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nobody is not being synced"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // restore --at: the brain as it was before from-host.md was written.
    let at = humantime::format_rfc3339_millis(mid).to_string();
    let out = sup.cli(&["restore", "writer", "--at", &at, "--dry-run"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("would remove  from-host.md"), "{text}");
    // The same plan as JSON, the time given with a zone of its own.
    let zoned = humantime::format_rfc3339_millis(mid)
        .to_string()
        .replace('Z', "+00:00");
    let out = sup.cli(&["restore", "writer", "--at", &zoned, "--dry-run", "--json"]);
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(
        plan["delete"],
        serde_json::json!(["from-host.md"]),
        "{plan}"
    );
    assert!(
        home.join("from-host.md").exists(),
        "a dry run changes nothing"
    );
    let out = sup.cli(&["restore", "writer", "--at", &at]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!home.join("from-host.md").exists());
    sup.wait_state("writer", "running", Duration::from_secs(30));
    wait_for(Duration::from_secs(10), "the restore pushed", || {
        (!plain_keys(&rt, &root, "ck-agent-writer").contains(&"from-host.md".to_string()))
            .then_some(())
    });
    let out = sup.cli(&["restore", "writer", "--at", "2020-01-01T00:00"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no snapshot at or before 2020-01-01"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // clone: a new agent's bucket with the same brain, copied inside the store.
    let out = sup.cli(&["clone", "writer", "writer-2"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut a = plain_keys(&rt, &root, "ck-agent-writer");
    let mut b = plain_keys(&rt, &root, "ck-agent-writer-2");
    a.sort();
    b.sort();
    assert_eq!(a, b);
    for k in &a {
        assert_eq!(
            get(&rt, &root, "ck-agent-writer", k),
            get(&rt, &root, "ck-agent-writer-2", k),
            "{k}"
        );
    }

    // Nothing excluded reached the store.
    for k in plain_keys(&rt, &root, "ck-agent-writer") {
        assert!(
            !k.contains("credentials") && !k.ends_with(".sqlite") && !k.starts_with("knowledge"),
            "{k} uploaded"
        );
    }

    // audit: clean, until a secret is planted in a bucket and a key file is opened up.
    let out = sup.cli(&["audit"]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    rt.block_on(
        root.bucket("ck-agent-reader")
            .put("credentials/token", bytes::Bytes::from_static(b"leaked")),
    )
    .unwrap();
    let key = sup.state.join("brains/keys/writer.json");
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let out = sup.cli(&["audit", "--json"]);
    assert_eq!(out.status.code(), Some(3), "findings");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["CK-STORE-002", "CK-STORE-003"], "{report}");
    assert!(
        report["findings"][1]["message"]
            .as_str()
            .unwrap()
            .contains("credentials/token"),
        "{report}"
    );
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    rt.block_on(root.bucket("ck-agent-reader").delete("credentials/token"))
        .unwrap();

    // Progress: 300 files put into the brain's bucket by a tool come down with a pull by
    // hand, which says on stderr (not a terminal here: plain lines) what it is doing, how far
    // it is, at what rate, and how long is left; then the average.
    let bucket = root.bucket("ck-agent-writer");
    drop_files(&rt, &bucket, "dropped/", 300);
    let out = std::process::Command::new(support::clawkeep())
        .args(["sync", "pull", "writer"])
        .env("CLAWKEEP_STATE_DIR", &sup.state)
        .env("CLAWKEEP_PROGRESS_EVERY", "1ms")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{said}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("300 downloaded"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(said.contains("clawkeep: pull writer: planning\n"), "{said}");
    let moving = said
        .lines()
        .find(|l| l.starts_with("clawkeep: pull writer: downloading, ") && l.ends_with(" left"))
        .unwrap_or_else(|| panic!("no line with a rate and the time left:\n{said}"));
    assert!(
        moving.contains(" files, ") && moving.contains("/s, about "),
        "{moving}"
    );
    assert!(
        said.lines().last().is_some_and(
            |l| l.starts_with("clawkeep: pull writer: done, 300 files and 2.3 MiB in ")
        ),
        "{said}"
    );
    assert!(home.join("dropped/299.md").exists());
    // On a terminal: a bar with the rate and the time left, drawn over itself.
    drop_files(&rt, &bucket, "dropped/again-", 300);
    let typescript = scratch.dir.join("typescript");
    let out = std::process::Command::new("script")
        .args([
            "-qec",
            &format!("{} sync pull writer", support::clawkeep().display()),
        ])
        .arg(&typescript)
        .env("CLAWKEEP_STATE_DIR", &sup.state)
        .env("TERM", "xterm")
        .output()
        .unwrap();
    let drawn = String::from_utf8_lossy(&std::fs::read(&typescript).unwrap()).into_owned();
    assert!(out.status.success(), "{drawn}");
    assert!(
        drawn.contains("clawkeep: pull writer: downloading ["),
        "{drawn}"
    );
    assert!(drawn.contains("/s, ") && drawn.contains(" left"), "{drawn}");
    assert!(drawn.contains("300 downloaded"), "{drawn}");

    // A change just before `down` is in the store after it.
    std::fs::write(home.join("last-words.md"), "pushed at shutdown").unwrap();
    sup.down();
    assert!(
        !sup.log()
            .contains(r#"SIGKILL (stopped at shutdown) process="store""#),
        "the store should stop cleanly on SIGTERM:\n{}",
        sup.log()
    );
    // The store stopped with the fleet: bring the same data up again to look.
    let _again = StoreAgain::start(&data);
    wait_for(Duration::from_secs(20), "the store to answer again", || {
        rt.block_on(root.healthy()).then_some(())
    });
    assert_eq!(
        get(&rt, &root, "ck-agent-writer", "last-words.md").as_deref(),
        Some(&b"pushed at shutdown"[..]),
        "{}",
        sup.log()
    );
    drop(scratch);
}

/// Whether `nobody` can list `dir` (through setpriv, as another local user would).
fn nobody_lists(dir: &Path) -> std::process::Output {
    std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "ls"])
        .arg(dir)
        .output()
        .unwrap()
}

#[test]
fn a_shared_collection_is_its_agents_alone_and_refuses_fifos_and_sockets() {
    use std::os::unix::fs::MetadataExt;
    let StoreFleet {
        mut sup, scratch, ..
    } = start(
        "private",
        r#"[[agent]]
name = "writer"
command = "/bin/sh"
args = ["-c", '''echo "groups=$(id -G)"; mkdir -p $HOME/knowledge/docs/notes; echo first > $HOME/knowledge/docs/notes/a.md && echo wrote=yes; mkfifo $HOME/knowledge/docs/pipe && echo fifo=made || echo fifo=refused; ckprobe bindunix $HOME/knowledge/docs/sock; mkfifo /tmp/pipe && echo tmpfifo=made; mkfifo $HOME/pipe && echo homefifo=made; mkdir -p $HOME/d $HOME/knowledge/docs/d; echo x > $HOME/f && ln $HOME/f $HOME/d/f && mv $HOME/d/f $HOME/g && echo homelink=ok; echo y > $HOME/knowledge/docs/f && ln $HOME/knowledge/docs/f $HOME/knowledge/docs/d/f && mv $HOME/knowledge/docs/d/f $HOME/knowledge/docs/g && echo sharedlink=ok; echo done=yes; while sleep 1; do :; done''']
knowledge = { docs = "rw" }

[[agent]]
name = "editor"
command = "/bin/sh"
args = ["-c", '''while ! [ -f $HOME/knowledge/docs/notes/a.md ]; do sleep 0.2; done; echo second >> $HOME/knowledge/docs/notes/a.md && echo appended=yes; echo mine > $HOME/knowledge/docs/notes/b.md && echo created=yes; while sleep 1; do :; done''']
knowledge = { docs = "rw" }

[[agent]]
name = "reader"
command = "/bin/sh"
args = ["-c", '''while ! grep -q second $HOME/knowledge/docs/notes/a.md 2>/dev/null; do sleep 0.2; done; echo "seen=$(cat $HOME/knowledge/docs/notes/a.md | tr '\n' ' ')"; while sleep 1; do :; done''']
knowledge = { docs = "ro" }
"#,
    );
    let writer = wait_for(Duration::from_secs(60), "the writer's checks", || {
        let l = sup.logs("writer");
        l.contains("done=yes").then_some(l)
    });
    let f = support::facts(&writer);
    // The collection's group is in the agent's id map and among its groups.
    assert_eq!(f["groups"], "0 65536", "{writer}");
    assert_eq!(f["wrote"], "yes", "{writer}");
    // No FIFO or socket in a shared collection; elsewhere they work as ever.
    assert_eq!(f["fifo"], "refused", "{writer}");
    assert_eq!(f["bindunix"], "EACCES", "{writer}");
    assert_eq!(f["tmpfifo"], "made", "{writer}");
    assert_eq!(f["homefifo"], "made", "{writer}");
    // Files still move and link between directories (programs publish files that way).
    assert_eq!(f["homelink"], "ok", "{writer}");
    assert_eq!(f["sharedlink"], "ok", "{writer}");
    // Another agent granted it read-write changes the writer's file and adds its own, in
    // the writer's directory; a reader sees both.
    let editor = wait_for(Duration::from_secs(30), "the editor's writes", || {
        let l = sup.logs("editor");
        l.contains("created=yes").then_some(l)
    });
    assert!(editor.contains("appended=yes"), "{editor}");
    wait_for(
        Duration::from_secs(30),
        "the reader to see both writes",
        || {
            sup.logs("reader")
                .contains("seen=first second")
                .then_some(())
        },
    );

    // On the host: root's and the collection's group's, no one else's.
    let docs = sup.state.join("knowledge/docs");
    let md = docs.metadata().unwrap();
    let group = 4_294_901_760; // COLLECTION_GIDS: the first collection in name order
    assert_eq!((md.uid(), md.gid(), md.mode() & 0o7777), (0, group, 0o2770));
    for f in ["notes", "notes/a.md", "notes/b.md"] {
        let md = docs.join(f).metadata().unwrap();
        assert_eq!(md.gid(), group, "{f}");
        assert_eq!(
            md.mode() & 0o007,
            0,
            "{f} is open to others: {:o}",
            md.mode()
        );
    }
    let out = nobody_lists(&docs);
    assert!(!out.status.success(), "nobody listed the collection");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A FIFO that got into the collection some other way (made on the host, or by an
    // agent on a kernel without Landlock) is removed when the collection is next set up.
    sup.down();
    let stray = docs.join("stray-pipe");
    let made = std::process::Command::new("mkfifo")
        .arg(&stray)
        .status()
        .unwrap();
    assert!(made.success());
    sup.up_again();
    wait_for(Duration::from_secs(60), "the stray FIFO removed", || {
        (stray.symlink_metadata().is_err()).then_some(())
    });
    assert!(sup.log().contains("removed special files"), "{}", sup.log());
    sup.down();
    drop(scratch);
}

/// Every file of `dir` (relative name → content).
fn local_files(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    s3::tree(dir)
}

#[test]
fn kill_9_during_a_push_of_1000_files_loses_nothing() {
    let StoreFleet {
        mut sup,
        root,
        rt,
        data: _,
        scratch,
    } = start(
        "store-kill",
        r#"[[agent]]
name = "many"
command = "/bin/sh"
args = ["-c", '''mkdir -p $HOME/many; i=0; while [ $i -lt 1000 ]; do echo "file $i of many" > $HOME/many/f$i.md; i=$((i+1)); done; echo wrote=all; while sleep 1; do :; done''']
"#,
    );
    sup.wait_state("many", "running", Duration::from_secs(60));
    // Wait until a push is under way (some files in the store, not all), then kill -9.
    let n = wait_for(Duration::from_secs(60), "a push in progress", || {
        let n = plain_keys(&rt, &root, "ck-agent-many").len();
        (n > 0 && n < 1000).then_some(n)
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(sup.child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    sup.child.wait().unwrap();
    eprintln!("killed with {n} of 1000 files pushed");

    // `up` again on the same state dir: the next pass finishes the job.
    sup.child = std::process::Command::new(support::clawkeep())
        .arg("up")
        .arg(&sup.dir.fleet)
        .stderr(std::fs::File::create(sup.dir.scratch.dir.join("again.log")).unwrap())
        .spawn()
        .unwrap();
    wait_for(Duration::from_secs(60), "every file in the store", || {
        (plain_keys(&rt, &root, "ck-agent-many").len() == 1000).then_some(())
    });
    let home = sup.state.join("agents/many/home");
    // The new supervisor restarted the agent, which writes its 1,000 files again: once it is
    // done, one more pass (which `sync push` waits for) must leave the store exactly equal.
    wait_for(
        Duration::from_secs(60),
        "the restarted agent to have written everything",
        || (sup.logs("many").matches("wrote=all").count() >= 2).then_some(()),
    );
    let out = sup.cli(&["sync", "push", "many"]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let local = local_files(&home);
    let remote = rt
        .block_on(root.bucket("ck-agent-many").snapshot_ids())
        .unwrap();
    let snap = rt
        .block_on(
            root.bucket("ck-agent-many")
                .snapshot(remote.last().unwrap()),
        )
        .unwrap();
    // Manifest consistent: the newest snapshot lists exactly the files, with their hashes,
    // and every plain object and blob holds that content.
    let listed: Vec<&String> = snap.files.keys().collect();
    assert_eq!(listed, local.keys().collect::<Vec<_>>());
    for (k, content) in &local {
        assert_eq!(
            snap.files[k].sha256,
            clawkeep_store::scan::hash_bytes(content),
            "{k}"
        );
        assert_eq!(
            get(&rt, &root, "ck-agent-many", k).as_ref(),
            Some(content),
            "{k}"
        );
        assert_eq!(
            get(
                &rt,
                &root,
                "ck-agent-many",
                &clawkeep_store::keys::blob_key(&snap.files[k].sha256)
            )
            .as_ref(),
            Some(content),
            "{k}"
        );
    }
    sup.down();
    drop(scratch);
}

#[test]
fn the_store_away_for_60_seconds_loses_nothing_and_the_agent_keeps_running() {
    let StoreFleet {
        mut sup,
        root,
        rt,
        data: _,
        scratch,
    } = start(
        "store-away",
        r#"[[agent]]
name = "ticker"
command = "/bin/sh"
args = ["-c", '''mkdir -p $HOME/ticks; i=0; while sleep 1; do i=$((i+1)); echo "tick $i" > $HOME/ticks/t$i.md; echo "latest $i" > $HOME/latest.md; done''']
"#,
    );
    let pid = sup.wait_state("ticker", "running", Duration::from_secs(60))["pid"].clone();
    wait_for(
        Duration::from_secs(20),
        "the first ticks in the store",
        || (plain_keys(&rt, &root, "ck-agent-ticker").len() > 2).then_some(()),
    );

    let out = sup.cli(&["stop", "store"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::thread::sleep(Duration::from_secs(60));
    // Meanwhile the agent ran on and the status says the store is away and how far behind.
    assert_eq!(sup.row("ticker")["state"], "running");
    assert_eq!(sup.row("ticker")["pid"], pid, "the agent was not restarted");
    let st: serde_json::Value =
        serde_json::from_slice(&sup.cli(&["sync", "status", "--json"]).stdout).unwrap();
    assert_eq!(st["healthy"], false, "{st}");
    let row = &st["rows"][0];
    assert!(row["pending"].as_u64().unwrap() > 30, "{st}");
    assert!(row["lag_seconds"].as_f64().unwrap() > 30.0, "{st}");
    assert!(row["last_error"].is_string(), "{st}");

    // doctor says what is wrong, and exits 3 (findings).
    let out = sup.cli(&["doctor", "--json"]);
    assert_eq!(out.status.code(), Some(3));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"CK-DOC-001") && ids.contains(&"CK-DOC-003"),
        "{report}"
    );

    let out = sup.cli(&["start", "store"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let home = sup.state.join("agents/ticker/home");
    // Everything written while it was away lands within seconds of its return.
    let t0 = Instant::now();
    wait_for(Duration::from_secs(30), "the backlog in the store", || {
        let local = local_files(&home.join("ticks"));
        let keys = plain_keys(&rt, &root, "ck-agent-ticker");
        (local.len() > 60
            && local
                .keys()
                .filter(|k| !keys.contains(&format!("ticks/{k}")))
                .count()
                <= 3)
            .then_some(())
    });
    eprintln!("backlog landed {:?} after the store returned", t0.elapsed());
    let st: serde_json::Value =
        serde_json::from_slice(&sup.cli(&["sync", "status", "--json"]).stdout).unwrap();
    assert_eq!(st["healthy"], true, "{st}");
    let out = sup.cli(&["doctor"]);
    assert!(
        out.status.success(),
        "a working node: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    sup.down();
    drop(scratch);
}

#[test]
fn migrate_copies_every_brain_and_its_history_to_another_store() {
    let StoreFleet {
        sup,
        root,
        rt,
        data: _,
        scratch,
    } = start(
        "store-move",
        r#"[[agent]]
name = "solo"
command = "/bin/sh"
args = ["-c", '''echo "remember this" > $HOME/MEMORY.md; echo doc > $HOME/knowledge/docs/d.md; while sleep 1; do :; done''']
knowledge = { docs = "rw" }
"#,
    );
    sup.wait_state("solo", "running", Duration::from_secs(60));
    wait_for(Duration::from_secs(10), "MEMORY.md in the store", || {
        get(&rt, &root, "ck-agent-solo", "MEMORY.md").map(|_| ())
    });

    let target = rt.block_on(s3::Garage::start());
    let key = scratch.dir.join("target.key");
    std::fs::write(
        &key,
        format!(
            "{}:{}",
            target.secrets.root.access_key, target.secrets.root.secret_key
        ),
    )
    .unwrap();
    let to = format!("{}/moved", target.managed.endpoint());
    let out = sup.cli(&[
        "store",
        "migrate",
        "--to",
        &to,
        "--credentials",
        &key.to_string_lossy(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("ck-agent-solo -> moved-agent-solo"), "{text}");
    // Its progress on stderr (not a terminal: plain lines): planning while every brain is
    // pushed, copying with counts, then the average.
    let said = String::from_utf8_lossy(&out.stderr);
    let head = format!("clawkeep: migrate to {to}: ");
    assert!(said.contains(&format!("{head}planning\n")), "{said}");
    assert!(said.contains(&format!("{head}copying, ")), "{said}");
    assert!(
        said.lines()
            .last()
            .is_some_and(|l| l.starts_with(&format!("{head}done, "))),
        "{said}"
    );
    let t = target.root();
    assert_eq!(
        get(&rt, &t, "moved-agent-solo", "MEMORY.md").as_deref(),
        Some(&b"remember this\n"[..])
    );
    assert_eq!(
        get(&rt, &t, "moved-shared-docs", "d.md").as_deref(),
        Some(&b"doc\n"[..])
    );
    // History came along: the same snapshots, and a pull from the new store gives the brain.
    let (a, b) = (
        rt.block_on(root.bucket("ck-agent-solo").snapshot_ids())
            .unwrap(),
        rt.block_on(t.bucket("moved-agent-solo").snapshot_ids())
            .unwrap(),
    );
    assert_eq!(a, b);
    let pulled = scratch.dir.join("pulled");
    rt.block_on(s3::syncer(t.bucket("moved-agent-solo"), &pulled, "check").pull_into_place())
        .unwrap();
    assert_eq!(
        std::fs::read(pulled.join("MEMORY.md")).unwrap(),
        b"remember this\n"
    );
    // Running it again copies only what changed (--json: the same, for scripts).
    let out = sup.cli(&[
        "store",
        "migrate",
        "--to",
        &to,
        "--credentials",
        &key.to_string_lossy(),
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    let solo = v["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["to"] == "moved-agent-solo")
        .cloned()
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(solo["from"], "ck-agent-solo");
    assert!(
        solo["skipped"].as_u64().unwrap() > 0,
        "nothing copied twice: {v}"
    );
    let out = sup.cli(&[
        "store",
        "migrate",
        "--to",
        "10.0.0.5:9000",
        "--credentials",
        &key.to_string_lossy(),
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not an http(s) URL"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(sup);
    drop(scratch);
}

#[test]
fn an_external_store_without_grants_still_syncs_and_audit_says_so() {
    let rt = rt();
    let external = rt.block_on(s3::Garage::start());
    let scratch = support::Scratch::new("store-ext-data");
    let key = scratch.dir.join("store.key");
    std::fs::write(
        &key,
        format!(
            "{}:{}",
            external.secrets.root.access_key, external.secrets.root.secret_key
        ),
    )
    .unwrap();
    let body = format!(
        r#"
[store]
endpoint = "{endpoint}"
credentials = "{key}"
admin = {{ kind = "none" }}
debounce = "500ms"

[[agent]]
name = "plain"
command = "/bin/sh"
args = ["-c", '''echo hello > $HOME/hello.md; while sleep 1; do :; done''']
"#,
        endpoint = external.managed.endpoint(),
        key = key.display()
    );
    let mut sup = Supervisor::start("store-ext", &body);
    sup.wait_state("plain", "running", Duration::from_secs(60));
    let root = external.root();
    wait_for(
        Duration::from_secs(10),
        "hello.md in the external store",
        || get(&rt, &root, "ck-agent-plain", "hello.md").map(|_| ()),
    );
    let out = sup.cli(&["audit"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(text.contains("CK-STORE-001"), "{text}");
    let st = String::from_utf8(sup.cli(&["sync", "status"]).stdout).unwrap();
    assert!(st.contains("grants NOT enforced"), "{st}");
    sup.down();
}
