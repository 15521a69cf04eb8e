//! PID-1 duties: on a bare node clawkeep is the first process, so it mounts the API
//! filesystems, brings up loopback, and powers the machine off at the end. Not PID 1, it
//! registers as child subreaper so orphans of its processes still come to it.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};

/// Where the API filesystems go (passed in so tests can use a scratch root).
#[derive(Debug, Clone)]
pub struct Mounts {
    /// procfs.
    pub proc: PathBuf,
    /// sysfs.
    pub sys: PathBuf,
    /// devtmpfs.
    pub dev: PathBuf,
    /// tmpfs for runtime files.
    pub run: PathBuf,
    /// cgroup2 (mounted only when the host has no cgroup hierarchy at all).
    pub cgroup: PathBuf,
}

impl Default for Mounts {
    fn default() -> Self {
        Self {
            proc: "/proc".into(),
            sys: "/sys".into(),
            dev: "/dev".into(),
            run: "/run".into(),
            cgroup: "/sys/fs/cgroup".into(),
        }
    }
}

/// Whether `path` is a mount point: its device differs from its parent's, or it is `/`.
pub fn is_mountpoint(path: &Path) -> bool {
    let Ok(md) = path.metadata() else {
        return false;
    };
    let Some(parent) = path.parent() else {
        return true;
    };
    parent
        .metadata()
        .map(|p| p.dev() != md.dev() || p.ino() == md.ino())
        .unwrap_or(false)
}

/// Mount whatever of /proc, /sys, /dev, /run and the cgroup filesystem is missing; return a
/// line per action (what was mounted, or why it failed) for the log.
pub fn mount_missing(m: &Mounts) -> Vec<String> {
    let mut out = Vec::new();
    let plan: [(&Path, &str, MsFlags, Option<&str>); 5] = [
        (
            &m.proc,
            "proc",
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            None,
        ),
        (
            &m.sys,
            "sysfs",
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            None,
        ),
        (&m.dev, "devtmpfs", MsFlags::MS_NOSUID, Some("mode=0755")),
        (
            &m.run,
            "tmpfs",
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("mode=0755"),
        ),
        (
            &m.cgroup,
            "cgroup2",
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            None,
        ),
    ];
    for (path, fstype, flags, data) in plan {
        if is_mountpoint(path) {
            continue;
        }
        if let Err(e) = std::fs::create_dir_all(path) {
            out.push(format!("cannot create {}: {e}", path.display()));
            continue;
        }
        match mount(Some(fstype), path, Some(fstype), flags, data) {
            Ok(()) => out.push(format!("mounted {fstype} on {}", path.display())),
            Err(e) => out.push(format!("cannot mount {fstype} on {}: {e}", path.display())),
        }
    }
    out
}

/// Last act of PID 1: kill what is left, flush disks, power off.
pub fn power_off() -> ! {
    use nix::sys::signal::{kill, Signal};
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    use nix::unistd::Pid;
    let _ = kill(Pid::from_raw(-1), Signal::SIGTERM);
    // Up to 2 s for what is left to end; no children left (ECHILD) ends the wait at once.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while std::time::Instant::now() < deadline {
        match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => std::thread::sleep(std::time::Duration::from_millis(20)),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
    while nix::sys::wait::waitpid(None::<Pid>, None).is_ok() {}
    nix::unistd::sync();
    // In a container's PID namespace the kernel turns this into our own exit by SIGINT.
    let _ = nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_POWER_OFF);
    std::process::exit(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountpoints() {
        assert!(is_mountpoint(Path::new("/")));
        assert!(is_mountpoint(Path::new("/proc")));
        let d = std::env::temp_dir().join(format!("ck-mnt-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        assert!(!is_mountpoint(&d));
        std::fs::remove_dir(&d).unwrap();
        assert!(!is_mountpoint(Path::new("/no/such/dir")));
    }
}
