//! clawkeep's stage 1: the initramfs's `/init`. It mounts /proc, /sys and /dev, loads the
//! kernel modules the root filesystem needs (virtio, ext4: Debian builds them as modules),
//! waits for the root device named by `root=`, mounts it, moves /dev, /proc and /sys into
//! it, makes it `/` and executes `init=` (default /sbin/init, clawkeep) as PID 1.
//!
//! It is built static (`--target x86_64-unknown-linux-musl`), so the initramfs holds only
//! this program, the modules and their list. Every step prints a line on the console; on a
//! failure it prints what went wrong and the fix, and powers the machine off.

#![forbid(unsafe_code)]

mod cmdline;
mod error;
mod modules;
mod root;
mod switch;

use std::path::Path;
use std::time::{Duration, Instant};

use cmdline::Options;
use error::Stage1Error;

/// The module list `clawkeep image build` writes into the initramfs.
const MODULE_LIST: &str = "/stage1.modules";

fn say(line: &str) {
    println!("clawkeep-stage1: {line}");
}

fn main() {
    if std::process::id() != 1 {
        eprintln!(
            "clawkeep-stage1 is the initramfs's /init: the kernel runs it as PID 1 (it mounts the root filesystem and executes clawkeep); there is nothing to do here"
        );
        std::process::exit(2);
    }
    let started = Instant::now();
    let err = match run(started) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    say(&format!("cannot boot: {err}"));
    say("powering off in 10 s");
    std::thread::sleep(Duration::from_secs(10));
    nix::unistd::sync();
    let _ = nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_POWER_OFF);
    // Returning from PID 1 panics the kernel, which is the last resort.
}

fn run(started: Instant) -> Result<std::convert::Infallible, Stage1Error> {
    for line in switch::mount_api() {
        say(&line);
    }
    let cmdline = std::fs::read_to_string("/proc/cmdline").map_err(|source| Stage1Error::Io {
        what: "read",
        path: "/proc/cmdline".into(),
        source,
    })?;
    let opts = Options::parse(&cmdline)?;

    let list = modules::read_list(Path::new(MODULE_LIST))?;
    let (mut loaded, mut already) = (0, 0);
    for path in &list {
        match modules::load(path) {
            modules::Outcome::Loaded => loaded += 1,
            modules::Outcome::Already => already += 1,
            modules::Outcome::Failed(why) => say(&format!("module {path}: {why} (going on)")),
        }
    }
    say(&format!(
        "{loaded} modules loaded ({already} already there) in {} ms",
        started.elapsed().as_millis()
    ));

    let host = root::Host::default();
    let deadline = Instant::now() + opts.root_wait;
    let device = loop {
        if let Some(d) = host.find(&opts.root) {
            break d;
        }
        if Instant::now() >= deadline {
            return Err(Stage1Error::NoRoot {
                spec: root::describe(&opts.root),
                secs: opts.root_wait.as_secs(),
                seen: host.names().join(" "),
                hint: "is the disk attached (virtio-blk), and is root= the image's (clawkeep image inspect shows root=PARTUUID=…)? clawkeep.rootwait=SECONDS waits longer",
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    say(&format!(
        "root {} is {}; mounting it {} as {}",
        root::describe(&opts.root),
        device.display(),
        if opts.read_only {
            "read-only"
        } else {
            "read-write"
        },
        opts.fstype
    ));
    switch::mount_root(&device, &opts)?;
    say(&format!(
        "handing over to {} after {} ms",
        opts.init,
        started.elapsed().as_millis()
    ));
    switch::switch_root_and_exec(&opts.init)
}
