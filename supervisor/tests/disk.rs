//! Per-agent `disk` limits where the state dir's filesystem cannot enforce them: `check` and
//! `up` say so plainly (the state dir, its filesystem, the fix), and an agent whose limit
//! cannot be set does not start. The filesystems are made by the tests: a file-backed ext4
//! without the project quota feature on a loop device, and a tmpfs. Needs root.
//!
//! The limit enforced for real (a write past it failing with "Disk quota exceeded") is in
//! tests/boot.rs: this machine's kernel is built without CONFIG_QFMT_V2, so it mounts no
//! ext4 with the quota feature read-write; the node image's Debian kernel does.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::{clawkeep, ok, run, text, FleetDir, Scratch};

/// A filesystem mounted by the test on `dir`: unmounted (and its loop device detached) on
/// drop, so a failed test leaves nothing mounted.
struct Mounted {
    dir: PathBuf,
    loop_dev: Option<String>,
    _scratch: Scratch,
}

impl Mounted {
    /// A 64 MiB file-backed ext4 made with `mkfs` extra options, on a loop device.
    fn ext4(tag: &str, mkfs: &[&str]) -> Self {
        let scratch = Scratch::new(tag);
        let img = scratch.dir.join("fs.img");
        let dir = scratch.dir.join("mnt");
        std::fs::create_dir(&dir).unwrap();
        ok(Command::new("truncate").args(["-s", "64M"]).arg(&img));
        ok(Command::new("mke2fs")
            .args(["-q", "-F", "-t", "ext4"])
            .args(mkfs)
            .arg(&img));
        let dev = ok(Command::new("losetup").args(["--find", "--show"]).arg(&img))
            .trim()
            .to_string();
        let m = Mounted {
            dir,
            loop_dev: Some(dev.clone()),
            _scratch: scratch,
        };
        ok(Command::new("mount").arg(&dev).arg(&m.dir));
        m.open_up();
        m
    }

    /// A tmpfs.
    fn tmpfs(tag: &str) -> Self {
        let scratch = Scratch::new(tag);
        let dir = scratch.dir.join("mnt");
        std::fs::create_dir(&dir).unwrap();
        ok(Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64m", "tmpfs"])
            .arg(&dir));
        let m = Mounted {
            dir,
            loop_dev: None,
            _scratch: scratch,
        };
        m.open_up();
        m
    }

    /// The sandboxes' ids pass through, as the scratch dir's.
    fn open_up(&self) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o711)).unwrap();
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        for _ in 0..50 {
            let out = run(Command::new("umount").arg(&self.dir));
            if out.status.success() || !text(&out).contains("busy") {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if let Some(dev) = &self.loop_dev {
            let _ = run(Command::new("losetup").arg("-d").arg(dev));
        }
    }
}

/// A fleet with one agent limited to 8 MiB, its state dir `state`.
fn limited_fleet(tag: &str, state: &Path) -> FleetDir {
    let dir = FleetDir::new(
        tag,
        r#"
[[agent]]
name = "writer"
command = "/bin/sh"
args = ["-c", "echo started; sleep 1000"]
disk = "8MiB"
restart = "never"
"#,
    );
    let fleet = std::fs::read_to_string(&dir.fleet).unwrap().replace(
        &format!("state_dir = \"{}\"", dir.state.display()),
        &format!("state_dir = \"{}\"", state.display()),
    );
    std::fs::write(&dir.fleet, fleet).unwrap();
    dir
}

/// `clawkeep check` and `clawkeep up` on `fleet`: both refuse, with the same message.
fn refused(fleet: &Path) -> String {
    let check = run(Command::new(clawkeep()).arg("check").arg(fleet));
    assert_eq!(check.status.code(), Some(2), "{}", text(&check));
    let up = run(Command::new(clawkeep()).arg("up").arg(fleet));
    assert!(!up.status.success(), "{}", text(&up));
    let (check, up) = (text(&check), text(&up));
    let line = check.lines().next().unwrap_or_default().to_string();
    assert!(
        up.contains(&line),
        "up says otherwise:\n{up}\ncheck:\n{check}"
    );
    check
}

#[test]
fn check_and_up_say_plainly_that_an_ext4_without_project_quotas_cannot_hold_a_disk_limit() {
    let fs = Mounted::ext4("disk-plain", &["-O", "^quota,^project"]);
    let state = fs.dir.join("state");
    let dir = limited_fleet("disk-plain", &state);
    let said = refused(&dir.fleet);
    assert!(
        said.contains(&format!(
            "[[agent]] \"writer\": disk \"8MiB\" cannot be enforced on this host: the state dir {} is on ext4, which has no project quotas here",
            state.display()
        )),
        "{said}"
    );
    assert!(
        said.contains("mkfs.ext4 -O quota,project")
            && said.contains("tune2fs -O quota,project")
            && said.contains("prjquota"),
        "the fix is named: {said}"
    );
    assert!(said.contains("clawkeep does not start the agent"), "{said}");
    // Without the limit the same fleet is fine.
    let unlimited = std::fs::read_to_string(&dir.fleet)
        .unwrap()
        .replace("disk = \"8MiB\"\n", "");
    std::fs::write(&dir.fleet, unlimited).unwrap();
    let check = run(Command::new(clawkeep()).arg("check").arg(&dir.fleet));
    assert!(check.status.success(), "{}", text(&check));
}

#[test]
fn check_says_a_tmpfs_state_dir_has_no_project_quotas() {
    let fs = Mounted::tmpfs("disk-tmpfs");
    let state = fs.dir.join("state");
    let dir = limited_fleet("disk-tmpfs", &state);
    let said = refused(&dir.fleet);
    assert!(
        said.contains(&format!(
            "the state dir {} is on tmpfs, which has no project quotas here",
            state.display()
        )),
        "{said}"
    );
    assert!(
        said.contains("put the state dir on ext4 or xfs with project quotas"),
        "{said}"
    );
    // A node image's fleet is checked on the machine that builds it, whose state dir is
    // not the node's: `image build` takes it (the image's root filesystem has project quotas).
    if let Err(d) = supervisor::fleet::load_for_image(&dir.fleet) {
        panic!("refused for an image:\n{d}");
    }
}

#[test]
fn an_agent_whose_disk_limit_cannot_be_set_does_not_start() {
    // The fleet passes `check` (no limit yet); the limit arrives after, as when the state
    // dir changes under a running supervisor: the start itself refuses.
    let fs = Mounted::tmpfs("disk-start");
    let dir = limited_fleet("disk-start", &fs.dir.join("state"));
    let unlimited = std::fs::read_to_string(&dir.fleet)
        .unwrap()
        .replace("disk = \"8MiB\"\n", "");
    std::fs::write(&dir.fleet, unlimited).unwrap();
    let mut fleet = supervisor::fleet::load(&dir.fleet).unwrap();
    fleet.agents[0].resources.disk = Some(8 << 20);
    let paths = supervisor::engine::start::Paths {
        state_dir: fleet.node.state_dir.clone(),
    };
    let err = supervisor::engine::start::write_agent_bundle(&fleet, &fleet.agents[0], &paths, None)
        .expect_err("the agent must not start without its limit")
        .to_string();
    assert!(
        err.starts_with("disk limit: ")
            && err.contains("is on tmpfs, which has no project quotas here"),
        "{err}"
    );
    assert!(
        !paths.agent("writer").join("bundle/config.json").exists(),
        "no bundle to run is written"
    );
}
