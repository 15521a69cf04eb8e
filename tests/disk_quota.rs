//! An agent cannot write past its `disk` limit: the kernel refuses with "Disk quota
//! exceeded", and the files already in its home count.
//!
//! This machine's kernel is built without CONFIG_QFMT_V2 (ext4's quota format), so it mounts
//! no ext4 with the quota feature read-write: the test runs in QEMU with the Debian kernel
//! the image tests use (scripts/install-image-tools caches it). The test makes the
//! filesystem itself, a file-backed ext4 with project quotas (`mke2fs -O quota,project -E
//! quotatype=prjquota`), and the VM's root is an initramfs it packs: busybox, the clawkeep
//! under test with its libraries, the kernel's ext4 and quota modules, a busybox rootfs for
//! the agent and the fleet. Its /init mounts the file as the state dir's filesystem (without
//! `prjquota`, so clawkeep has to turn enforcement on itself), puts a 4 MiB file in the
//! agent's home, runs `clawkeep up`, prints the agent's log on the console and powers off.
//! Needs root, qemu-system-x86_64 and cpio (scripts/install-image-tools). About a minute
//! under QEMU's TCG.

#[path = "../supervisor/tests/support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{cache, clawkeep, ok, KillOnDrop, Scratch};

/// The cached Debian kernel's unpacked tree (`.../root`), with its vmlinuz and modules.
fn kernel_root() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir(cache())
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("kernel-"))
        .map(|e| e.path().join("root"))
        .filter(|p| p.join("boot").is_dir())
        .collect();
    found.sort();
    found
        .pop()
        .expect("no unpacked kernel: run scripts/install-image-tools")
}

fn only_entry(dir: &Path, prefix: &str) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
        })
        .unwrap_or_else(|| panic!("no {prefix}* in {}", dir.display()))
}

/// What the agent does: a small write, a 20 MiB write into an 8 MiB limit that already
/// holds 4 MiB, a write again once the big file is gone; then it fills the limit up, for
/// `clawkeep doctor` to see.
const AGENT: &str = r#"
echo hello > $HOME/small && echo small=written
dd if=/dev/zero of=$HOME/big bs=1M count=20 2>&1 | grep -o 'Disk quota exceeded' | head -1 | sed 's/^/big=/'
echo "bigsize=$(wc -c < $HOME/big)"
rm -f $HOME/big
dd if=/dev/zero of=$HOME/again bs=1M count=2 2>/dev/null && echo again=written
dd if=/dev/zero of=$HOME/fill bs=1M count=20 2>/dev/null || echo filled=yes
echo done=yes
"#;

/// The VM's /init (busybox sh as PID 1).
const INIT: &str = r#"#!/bin/sh
export PATH=/usr/bin:/bin:/usr/sbin:/sbin
say() { echo "quota-vm: $*"; }
if [ ! -e /.switched ]; then
    # The sandboxes pivot_root, which the initramfs itself refuses to be: run from a tmpfs.
    mknod /ttyS0 c 4 64 && exec >/ttyS0 2>&1
    mkdir /newroot
    mount -t tmpfs -o size=1536m tmpfs /newroot
    for e in /*; do [ "$e" = /newroot ] || cp -a "$e" /newroot/; done
    touch /newroot/.switched
    exec switch_root /newroot /init
fi
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec >/dev/ttyS0 2>&1 </dev/null
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mount -t cgroup2 cgroup2 /sys/fs/cgroup
for m in $(cat /modules.list); do insmod "$m" || say "insmod $m failed"; done
i=0; while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
if ! mount -t ext4 /dev/vda /state; then say "cannot mount /dev/vda"; poweroff -f; fi
say "mounted $(grep ' /state ' /proc/mounts)"
home=/state/clawkeep/agents/writer/home
mkdir -p $home
dd if=/dev/urandom of=$home/old bs=1M count=4 2>/dev/null && say "old file of $(wc -c < $home/old) bytes in the home"
CLAWKEEP_LOG=info clawkeep up /etc/clawkeep/fleet.toml > /run/up.log 2>&1 &
log=/state/clawkeep/logs/writer.log
i=0
until grep -q -e done=yes -e '] exited' $log 2>/dev/null || [ $i -gt 900 ]; do sleep 0.2; i=$((i+1)); done
sed 's/^/quota-vm: agent: /' $log
CLAWKEEP_STATE_DIR=/state/clawkeep clawkeep doctor 2>&1 | sed 's/^/quota-vm: doctor: /'
CLAWKEEP_STATE_DIR=/state/clawkeep clawkeep down >/dev/null 2>&1
sleep 1
sed 's/^/quota-vm: up: /' /run/up.log
say end
sync
umount /state
poweroff -f
"#;

#[test]
fn an_agent_cannot_write_past_its_disk_limit() {
    let s = Scratch::new("disk-quota-vm");
    let dir = &s.dir;

    // The filesystem, made here: ext4 with project quotas, in a file.
    let img = dir.join("state.img");
    ok(Command::new("truncate").args(["-s", "64M"]).arg(&img));
    ok(Command::new("mke2fs")
        .args([
            "-q",
            "-F",
            "-t",
            "ext4",
            "-O",
            "quota,project",
            "-E",
            "quotatype=prjquota",
        ])
        .arg(&img));

    // The VM's root: busybox, clawkeep and its libraries, the modules, the agent's rootfs.
    let ck = dir.join("clawkeep");
    ok(Command::new("objcopy")
        .arg("--strip-debug")
        .arg(clawkeep())
        .arg(&ck));
    let root = dir.join("initramfs");
    ok(
        Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/make-busybox-rootfs"))
            .arg(&root)
            .arg("--libs-for")
            .arg(&ck),
    );
    for d in [
        "proc",
        "sys",
        "dev",
        "run",
        "tmp",
        "state",
        "etc/clawkeep",
        "modules",
    ] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy(&ck, root.join("usr/bin/clawkeep")).unwrap();
    let agent_root = support::rootfs(&root.join("srv"));
    assert!(agent_root.ends_with("srv/rootfs"));

    let kernel = kernel_root();
    let tree = only_entry(&kernel.join("lib/modules"), "");
    let names: Vec<&str> = clawkeep_image::disk::STAGE1_MODULES
        .iter()
        .copied()
        .chain(["quota_tree", "quota_v2"])
        .collect();
    let modules = clawkeep_image::disk::resolve_modules(&tree, &names).unwrap();
    let mut list = String::new();
    for (i, m) in modules.load.iter().enumerate() {
        let at = format!("/modules/{i:02}-{}.ko", m.name);
        std::fs::copy(&m.path, root.join(at.trim_start_matches('/'))).unwrap();
        list.push_str(&at);
        list.push('\n');
    }
    assert!(list.contains("quota_v2"), "{list}");
    std::fs::write(root.join("modules.list"), list).unwrap();

    let fleet = format!(
        r#"[node]
name = "quota-vm"
state_dir = "/state/clawkeep"

[runtime]
rootfs = "/srv/rootfs"

[[agent]]
name = "writer"
command = "/bin/sh"
args = ["-c", '''{AGENT}''']
disk = "8MiB"
restart = "never"
"#
    );
    std::fs::write(root.join("etc/clawkeep/fleet.toml"), fleet).unwrap();
    let init = root.join("init");
    std::fs::write(&init, INIT).unwrap();
    std::fs::set_permissions(&init, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cpio = dir.join("initramfs.cpio");
    ok(Command::new("sh")
        .arg("-c")
        .arg("cd \"$0\" && find . | cpio -o -H newc --quiet > \"$1\"")
        .arg(&root)
        .arg(&cpio));

    // Boot it.
    let qemu = std::env::var_os("CLAWKEEP_QEMU")
        .map(PathBuf::from)
        .unwrap_or_else(|| "qemu-system-x86_64".into());
    // TCG, as tests/boot.rs: nested KVM here hangs the guest kernel.
    let accel = "tcg";
    let started = Instant::now();
    let mut vm = Command::new(&qemu)
        .args(["-accel", accel, "-m", "2048", "-smp", "1"])
        .args(["-nographic", "-no-reboot"])
        .arg("-kernel")
        .arg(only_entry(&kernel.join("boot"), "vmlinuz-"))
        .arg("-initrd")
        .arg(&cpio)
        .arg("-drive")
        .arg(format!("file={},format=raw,if=virtio", img.display()))
        .args(["-append", "console=ttyS0 panic=-1 rdinit=/init loglevel=4"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("qemu-system-x86_64: run scripts/install-image-tools");
    let stdout = vm.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line.trim_end_matches('\r').to_string()).is_err() {
                break;
            }
        }
    });
    let mut guard = KillOnDrop(vm);
    let mut console = String::new();
    let end = Instant::now() + Duration::from_secs(420);
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                console.push_str(&line);
                console.push('\n');
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
        }
        if Instant::now() > end {
            panic!("the VM did not finish within 420 s ({accel}); console:\n{console}");
        }
    }
    let _ = guard.0.wait();
    eprintln!(
        "VM ({accel}) ran {:.1} s; console:\n{console}",
        started.elapsed().as_secs_f64()
    );

    let agent: std::collections::HashMap<&str, &str> = console
        .lines()
        .filter_map(|l| l.strip_prefix("quota-vm: agent: "))
        .filter_map(|l| l.split_once('='))
        .collect();
    assert_eq!(agent.get("done"), Some(&"yes"), "{console}");
    assert!(
        console.contains("quota-vm: old file of 4194304 bytes in the home"),
        "{console}"
    );
    assert_eq!(
        agent.get("small"),
        Some(&"written"),
        "a write under the limit works"
    );
    assert_eq!(
        agent.get("big"),
        Some(&"Disk quota exceeded"),
        "the kernel refuses the write past the limit:\n{console}"
    );
    // 8 MiB less the 4 MiB that was there before the limit, less a little for the small
    // file and the directories: had the old file not counted, the big one would near 8 MiB.
    let big: u64 = agent["bigsize"].parse().unwrap();
    assert!(
        (3 << 20..=(5 << 20)).contains(&big),
        "the files already in the home count: the big file reached {big} bytes\n{console}"
    );
    assert_eq!(
        agent.get("again"),
        Some(&"written"),
        "room comes back when files go:\n{console}"
    );
    assert!(
        console.contains("turned project quota enforcement on"),
        "mounted without prjquota, clawkeep turned enforcement on:\n{console}"
    );
    assert_eq!(agent.get("filled"), Some(&"yes"), "{console}");
    let doctor: Vec<&str> = console
        .lines()
        .filter(|l| l.starts_with("quota-vm: doctor: ") && l.contains("CK-DOC-007"))
        .collect();
    assert!(
        doctor.len() == 1
            && doctor[0].contains("writer uses ")
            && doctor[0].contains(" MiB of its 8.0 MiB disk limit"),
        "doctor warns of the limit nearly used, and only that:\n{console}"
    );
    assert!(console.contains("quota-vm: end"), "{console}");
}
