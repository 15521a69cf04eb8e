//! The node image boots: `clawkeep image prepare` + `image build` from a busybox base rootfs
//! (with clawkeep's and Garage's libraries), the static stage-1 init, the cached Debian
//! kernel and OpenClaw runtime; then QEMU (TCG, direct boot of the uncompressed vmlinux)
//! starts it. Stage 1 loads the modules and hands the ext4 root over to clawkeep as PID 1,
//! which starts the image's fleet (a managed Garage and a sandboxed agent that writes to its
//! brain) and prints its ready line on the serial console. An ACPI power-button press
//! (QEMU's `system_powerdown`) stops the fleet in order, pushes the brain, syncs and
//! powers off, and QEMU exits 0. Needs root, qemu-system-x86_64 (scripts/install-image-tools)
//! and the musl target (scripts/install-deps). Prints the boot timeline (docs/benchmarks.md).

#[path = "../supervisor/tests/support/mod.rs"]
mod support;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{cache, clawkeep, kernel_deb, ok, openclaw_bundle, stage1, KillOnDrop, Scratch};

fn garage() -> PathBuf {
    std::env::var_os("CLAWKEEP_GARAGE")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache().join("garage-2.5.0/bin/garage"))
}

/// What QEMU printed on the serial console, with when each line came.
#[derive(Clone, Default)]
struct Console(Arc<Mutex<Vec<(Duration, String)>>>);

impl Console {
    fn wait_for(&self, needle: &str, timeout: Duration) -> Option<Duration> {
        let end = Instant::now() + timeout;
        loop {
            let lines = self.0.lock().unwrap();
            if let Some((t, _)) = lines.iter().find(|(_, l)| l.contains(needle)) {
                return Some(*t);
            }
            // A panic or a stage-1 failure ends the wait: nothing good comes after.
            if lines
                .iter()
                .any(|(_, l)| l.contains("panicked at") || l.contains("cannot boot:"))
            {
                return None;
            }
            drop(lines);
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn at(&self, needle: &str) -> Option<Duration> {
        self.wait_for(needle, Duration::ZERO)
    }

    fn text(&self) -> String {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(t, l)| format!("[{:7.2}] {l}\n", t.as_secs_f64()))
            .collect()
    }
}

#[test]
fn the_image_boots_into_clawkeep_and_powers_off_in_order() {
    let s = Scratch::new("boot");
    let dir = &s.dir;

    // The base rootfs: busybox, the libraries clawkeep and Garage load, Garage in PATH.
    let ck = dir.join("clawkeep");
    ok(Command::new("objcopy")
        .arg("--strip-debug")
        .arg(clawkeep())
        .arg(&ck));
    let base = dir.join("base");
    ok(
        Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/make-busybox-rootfs"))
            .arg(&base)
            .arg("--libs-for")
            .arg(&ck)
            .arg("--libs-for")
            .arg(garage()),
    );
    fs::create_dir_all(base.join("usr/bin")).unwrap();
    fs::copy(garage(), base.join("usr/bin/garage")).unwrap();
    for d in ["proc", "sys", "dev", "run", "tmp", "var/lib", "root"] {
        fs::create_dir_all(base.join(d)).unwrap();
    }
    fs::write(base.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
    let tarball = dir.join("base.tar.gz");
    ok(Command::new("tar")
        .args([
            "--numeric-owner",
            "--owner=0",
            "--group=0",
            "--sort=name",
            "-C",
        ])
        .arg(&base)
        .arg("-czf")
        .arg(&tarball)
        .arg("."));

    // The fleet: the agents' rootfs beside it (goes to /etc/clawkeep/rootfs), a managed
    // Garage found in PATH, one agent with a disk limit that writes to its brain and stays up.
    let lab = dir.join("lab");
    ok(
        Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/make-busybox-rootfs"))
            .arg(lab.join("rootfs")),
    );
    let fleet = lab.join("fleet.toml");
    fs::write(
        &fleet,
        r#"[node]
name = "boot-test"

[runtime]
rootfs = "rootfs"

[store]
managed = { kind = "garage", binary = "garage", data_dir = "/var/lib/clawkeep/store" }

[[agent]]
name = "alpha"
command = "/bin/sh"
args = ["-c", "echo 'booted and remembered' > $HOME/MEMORY.md; echo alpha is up; exec sleep 100000"]
memory = "64MiB"
pids = 64
# A disk limit: `up` refuses to start an agent whose limit it cannot enforce, so the agent
# running shows the image's root filesystem has project quotas that the kernel enforces.
disk = "32MiB"
stop_grace = "5s"
"#,
    )
    .unwrap();

    // The bundle and the build, with the CLI as a user runs them.
    let bundle = dir.join("bundle");
    ok(Command::new(clawkeep())
        .args(["image", "prepare", "--link", "--kernel"])
        .arg(kernel_deb())
        .arg("--base-rootfs")
        .arg(&tarball)
        .arg("--runtime")
        .arg(openclaw_bundle())
        .arg("--clawkeep")
        .arg(&ck)
        .arg("--stage1")
        .arg(stage1())
        .arg("--out")
        .arg(&bundle));
    let out = dir.join("out");
    let path = format!(
        "{}:{}",
        garage().parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let t = Instant::now();
    let built = ok(Command::new(clawkeep())
        .env("PATH", path)
        .args(["image", "build"])
        .arg(&fleet)
        .arg("--bundle")
        .arg(&bundle)
        .arg("--out")
        .arg(&out)
        .args(["--epoch", "1700000000"]));
    eprintln!("image built in {:?}:\n{built}", t.elapsed());
    assert!(built.contains("inside the image"), "{built}");
    let info: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("image.json")).unwrap()).unwrap();
    let partuuid = info["root_partuuid"].as_str().unwrap().to_string();
    assert!(
        info["stage1_init"]
            .as_str()
            .unwrap()
            .starts_with("clawkeep-stage1 "),
        "{info}"
    );

    // Boot it.
    let qemu = std::env::var_os("CLAWKEEP_QEMU")
        .map(PathBuf::from)
        .unwrap_or_else(|| "qemu-system-x86_64".into());
    let monitor = dir.join("monitor.sock");
    let started = Instant::now();
    let mut vm = Command::new(&qemu)
        .args([
            "-accel",
            "tcg",
            "-m",
            "1536",
            "-smp",
            "1",
            "-nographic",
            "-no-reboot",
        ])
        .arg("-kernel")
        .arg(out.join("vmlinux"))
        .arg("-initrd")
        .arg(out.join("initramfs.img"))
        .arg("-drive")
        .arg(format!(
            "file={},format=qcow2,if=virtio",
            out.join("node.qcow2").display()
        ))
        .arg("-append")
        .arg(format!(
            "console=ttyS0 panic=-1 root=PARTUUID={partuuid} rw"
        ))
        .arg("-monitor")
        .arg(format!("unix:{},server,nowait", monitor.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("qemu-system-x86_64: run scripts/install-image-tools");
    let console = Console::default();
    let stdout = vm.stdout.take().unwrap();
    let c = console.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let line = strip_ansi(line.trim_end_matches('\r'));
            c.0.lock().unwrap().push((started.elapsed(), line));
        }
    });
    let mut guard = KillOnDrop(vm);

    let ready = console.wait_for("clawkeep ready:", Duration::from_secs(300));
    let Some(ready) = ready else {
        panic!("no ready line (within 300 s); console:\n{}", console.text());
    };
    let shown = console.text();
    assert!(
        shown.contains("clawkeep ready: 1 agent and 1 service running on boot-test"),
        "{shown}"
    );
    assert!(
        shown.contains("clawkeep-stage1: handing over to /sbin/init"),
        "{shown}"
    );
    // The agent's write reaches its brain in the node's store.
    assert!(
        console
            .wait_for(
                "bucket=\"ck-agent-alpha\" uploaded=1",
                Duration::from_secs(60)
            )
            .is_some(),
        "{}",
        console.text()
    );

    // The power button.
    let pressed = started.elapsed();
    let mut mon = UnixStream::connect(&monitor).expect("QEMU monitor socket");
    mon.write_all(b"system_powerdown\n").unwrap();
    let vm = &mut guard.0;
    let end = Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(st) = vm.try_wait().unwrap() {
            break Some(st);
        }
        if Instant::now() > end {
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let off = started.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    let shown = console.text();
    let Some(status) = status else {
        let _ = vm.kill();
        panic!("QEMU still running 180 s after the power button; console:\n{shown}");
    };
    let mut err = String::new();
    let _ = std::io::Read::read_to_string(vm.stderr.as_mut().unwrap(), &mut err);
    assert!(status.success(), "QEMU exited {status}: {err}\n{shown}");

    // In order: the button seen, agents stopped, the brain pushed, services stopped, off.
    let order = [
        "power button Power Button (/dev/input/event",
        "): stopping agents, then services",
        "last push at shutdown done",
        "all stopped",
        "powering off",
    ];
    let mut last = Duration::ZERO;
    for step in order {
        let at = console
            .at(step)
            .unwrap_or_else(|| panic!("no {step:?} on the console:\n{shown}"));
        assert!(at >= last, "{step:?} out of order:\n{shown}");
        last = at;
    }
    assert!(!shown.contains("Kernel panic"), "{shown}");

    let stage1_done = console
        .at("clawkeep-stage1: handing over")
        .unwrap_or_default();
    let first = console.at("clawkeep-stage1:").unwrap_or_default();
    eprintln!(
        "boot timeline (QEMU TCG, 1 vCPU): first stage-1 line {:.1} s, clawkeep started {:.1} s, ready {:.1} s (clawkeep's own start: {:.1} s); power button at {:.1} s, QEMU exited {:.1} s (shutdown {:.1} s)",
        first.as_secs_f64(),
        stage1_done.as_secs_f64(),
        ready.as_secs_f64(),
        (ready - stage1_done).as_secs_f64(),
        pressed.as_secs_f64(),
        off.as_secs_f64(),
        (off - pressed).as_secs_f64()
    );
    eprintln!("console:\n{shown}");
}

/// The line without terminal colour sequences (ESC [ ... m), as a person reads it.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
