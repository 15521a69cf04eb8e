//! The pinned runtime, for real: the cached Node 24 + OpenClaw 2026.9.6 bundle (written by
//! scripts/install-openclaw-bundle) installed inside a network namespace with no network,
//! OpenClaw run from it on the bundled Node, a second install that does nothing, a
//! tampered bundle refused naming the file, and a Node outside OpenClaw's engines refused
//! at prepare.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const OPENCLAW: &str = "2026.9.6";

/// The prepared bundle: CLAWKEEP_OPENCLAW_BUNDLE, or where scripts/install-openclaw-bundle
/// caches it.
fn bundle() -> PathBuf {
    let dir = std::env::var_os("CLAWKEEP_OPENCLAW_BUNDLE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let root = std::env::var_os("CLAWKEEP_CACHE")
                .map(PathBuf::from)
                .or_else(|| {
                    std::env::var_os("XDG_CACHE_HOME").map(|c| Path::new(&c).join("clawkeep"))
                })
                .unwrap_or_else(|| {
                    Path::new(&std::env::var_os("HOME").expect("HOME")).join(".cache/clawkeep")
                });
            root.join(format!("openclaw-bundle-{OPENCLAW}-node24"))
        });
    assert!(
        dir.join("bundle.json").is_file(),
        "no runtime bundle at {} (run scripts/install-openclaw-bundle, or set CLAWKEEP_OPENCLAW_BUNDLE)",
        dir.display()
    );
    dir
}

fn clawkeep(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clawkeep"));
    cmd.args(args);
    cmd
}

/// `cmd` inside a new network namespace: no interface but a down loopback.
fn no_network(cmd: &Command) -> Command {
    let mut wrapped = Command::new("unshare");
    wrapped.arg("--net").arg("--").arg(cmd.get_program());
    wrapped.args(cmd.get_args());
    wrapped
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Paths under `root` (not following symlinks) whose mode has any write bit.
fn writable(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let meta = std::fs::symlink_metadata(&p).unwrap();
        if meta.file_type().is_symlink() {
            continue;
        }
        if meta.permissions().mode() & 0o222 != 0 {
            found.push(p.clone());
        }
        if meta.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
        }
    }
    found
}

#[test]
fn installs_without_network_read_only_and_twice_is_a_no_op() {
    let bundle = bundle();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("runtimes");
    let install = clawkeep(&[
        "runtime",
        "install",
        bundle.to_str().unwrap(),
        "--dest",
        dest.to_str().unwrap(),
    ]);

    let out = no_network(&install).output().unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "install failed: {stderr}");
    let runtime = PathBuf::from(stdout.trim());
    assert_eq!(runtime.parent().unwrap(), dest);
    let id = runtime.file_name().unwrap().to_str().unwrap().to_string();
    assert_eq!(id.len(), 64, "{id}");
    assert_eq!(
        std::fs::read_link(dest.join("current")).unwrap(),
        Path::new(&id)
    );
    let names: Vec<String> = std::fs::read_dir(&dest)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "only the runtime and `current`: {names:?}");

    // OpenClaw runs from the runtime, offline, on the bundled Node: with only /usr/bin and
    // /bin in PATH the host's Node 20 would be found instead, and OpenClaw refuses Node 20.
    let mut version = Command::new(dest.join("current/bin/openclaw"));
    version.arg("--version");
    let out = no_network(&version)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", tmp.path())
        .env("OPENCLAW_STATE_DIR", tmp.path().join("state"))
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(
        out.status.success(),
        "openclaw --version: {stdout} {stderr}"
    );
    assert!(stdout.contains(&format!("OpenClaw {OPENCLAW}")), "{stdout}");
    let node = Command::new(runtime.join("bin/node"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(text(&node).0.starts_with("v24."), "{:?}", text(&node));

    // Read-only: every file 0444 or 0555, every directory 0555.
    assert_eq!(writable(&runtime), Vec::<PathBuf>::new());
    let mode = |p: &str| {
        std::fs::metadata(runtime.join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode("node/bin/node"), 0o555);
    assert_eq!(mode("app/package-lock.json"), 0o444);
    assert_eq!(mode("app/node_modules"), 0o555);
    assert_eq!(
        std::fs::read(runtime.join("bundle.json")).unwrap(),
        std::fs::read(bundle.join("bundle.json")).unwrap()
    );

    // The same bundle again: nothing is done.
    let before = std::fs::metadata(&runtime).unwrap();
    let out = no_network(&install).output().unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "second install failed: {stderr}");
    assert_eq!(stdout.trim(), runtime.to_str().unwrap());
    assert!(stderr.contains("already installed"), "{stderr}");
    let after = std::fs::metadata(&runtime).unwrap();
    assert_eq!(
        (before.ino(), before.mtime_nsec()),
        (after.ino(), after.mtime_nsec())
    );
    assert_eq!(std::fs::read_dir(&dest).unwrap().count(), 2);
    // --json says the same in one object for scripts.
    let mut json = Command::new(install.get_program());
    json.args(install.get_args()).arg("--json");
    let out = no_network(&json).output().unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "install --json failed: {stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["path"], runtime.to_str().unwrap());
    assert_eq!(v["id"], id.as_str());
    assert_eq!(v["already_installed"], true);
    assert_eq!(v["openclaw"], OPENCLAW);

    // Let the temp dir go.
    let mut chmod = Command::new("chmod");
    chmod.args(["-R", "u+w"]).arg(&runtime);
    assert!(chmod.status().unwrap().success());
}

/// A copy of `from` made of hard links (cheap), except where the test writes.
fn link_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            link_tree(&e.path(), &target);
        } else if std::fs::hard_link(e.path(), &target).is_err() {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

#[test]
fn a_tampered_bundle_is_refused_naming_the_file_and_installs_nothing() {
    let bundle = bundle();
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("bundle");
    link_tree(&bundle, &copy);
    // Change the lockfile (a new file, not the linked original) and lose a cache entry.
    let lock = copy.join("app/package-lock.json");
    let mut text_of_lock = std::fs::read_to_string(&lock).unwrap();
    std::fs::remove_file(&lock).unwrap();
    text_of_lock = text_of_lock.replacen("\"openclaw\": \"", "\"openclaw\": \"^", 1);
    std::fs::write(&lock, text_of_lock).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(copy.join("bundle.json")).unwrap()).unwrap();
    let lost = manifest["files"]
        .as_object()
        .unwrap()
        .keys()
        .find(|k| k.starts_with("npm-cache/_cacache/content-v2/"))
        .unwrap()
        .clone();
    std::fs::remove_file(copy.join(&lost)).unwrap();

    let dest = tmp.path().join("runtimes");
    let out = clawkeep(&[
        "runtime",
        "install",
        copy.to_str().unwrap(),
        "--dest",
        dest.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(
        !out.status.success(),
        "a tampered bundle installed: {stdout}"
    );
    assert!(
        stderr.contains("is corrupt, nothing was installed"),
        "{stderr}"
    );
    assert!(
        stderr.contains("app/package-lock.json: sha256 is "),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("{lost}: missing")), "{stderr}");
    let left = std::fs::read_dir(&dest).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "something was installed into {}", dest.display());

    // A bundle whose bundle.json is not the one `prepare` printed the id of.
    let out = clawkeep(&[
        "runtime",
        "install",
        bundle.to_str().unwrap(),
        "--dest",
        dest.to_str().unwrap(),
        "--expect-id",
        &"0".repeat(64),
    ])
    .output()
    .unwrap();
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("bundle.json: sha256 is "), "{stderr}");
    assert!(
        !dest.exists(),
        "something was installed into {}",
        dest.display()
    );
}

#[test]
fn prepare_refuses_a_node_outside_openclaws_engines() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("bundle");
    let out = clawkeep(&[
        "runtime",
        "prepare",
        "--openclaw",
        OPENCLAW,
        "--node",
        "20",
        "--out",
        out_dir.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    let (_, stderr) = text(&out);
    assert!(!out.status.success(), "prepare accepted Node 20: {stderr}");
    for want in [
        "openclaw 2026.9.6 needs Node >=24.16.0 <25 || >=26.1.0",
        "node@20 is Node 20.",
        "Node majors that fit: 24 (24.16.0 or later), 26 (26.1.0 or later)",
        "--node 24",
    ] {
        assert!(stderr.contains(want), "missing {want:?} in: {stderr}");
    }
    assert!(
        !out_dir.exists(),
        "prepare wrote {} before refusing",
        out_dir.display()
    );
}
