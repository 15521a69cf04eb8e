//! Mounting the API filesystems and the root, then making the root `/` and executing its
//! init: what `switch_root` does, without deleting the initramfs (it is a few MB).

use std::ffi::CString;
use std::path::Path;

use nix::mount::{mount, MsFlags};

use crate::cmdline::Options;
use crate::error::Stage1Error;

/// Where the root filesystem is mounted before it becomes `/`.
const NEW_ROOT: &str = "/root";

/// Mounts /proc, /sys and /dev (devtmpfs: device nodes appear as drivers find devices);
/// a line per mount that failed.
pub fn mount_api() -> Vec<String> {
    let mut out = Vec::new();
    let nosuid = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    for (fstype, at, flags) in [
        ("proc", "/proc", nosuid),
        ("sysfs", "/sys", nosuid),
        ("devtmpfs", "/dev", MsFlags::MS_NOSUID),
    ] {
        let _ = std::fs::create_dir_all(at);
        match mount(Some(fstype), at, Some(fstype), flags, None::<&str>) {
            Ok(()) | Err(nix::errno::Errno::EBUSY) => {}
            Err(e) => out.push(format!("cannot mount {fstype} on {at}: {e} (going on)")),
        }
    }
    out
}

/// Mounts the root device at [`NEW_ROOT`].
pub fn mount_root(device: &Path, opts: &Options) -> Result<(), Stage1Error> {
    let _ = std::fs::create_dir_all(NEW_ROOT);
    let flags = if opts.read_only {
        MsFlags::MS_RDONLY
    } else {
        MsFlags::empty()
    };
    mount(
        Some(device),
        NEW_ROOT,
        Some(opts.fstype.as_str()),
        flags,
        None::<&str>,
    )
    .map_err(|source| Stage1Error::Sys {
        what: "mount the root filesystem from",
        path: device.to_path_buf(),
        source,
        hint: "is rootfstype= right (ext4 for a clawkeep image), and was its module in the list?",
    })
}

/// Moves /dev, /proc and /sys into the new root, makes it `/` and executes `init` there.
pub fn switch_root_and_exec(init: &str) -> Result<std::convert::Infallible, Stage1Error> {
    let sys = |what: &'static str, path: &str, hint: &'static str| {
        let path = Path::new(path).to_path_buf();
        move |source| Stage1Error::Sys {
            what,
            path,
            source,
            hint,
        }
    };
    for api in ["/dev", "/proc", "/sys"] {
        let target = format!("{NEW_ROOT}{api}");
        let _ = std::fs::create_dir_all(&target);
        mount(
            Some(api),
            target.as_str(),
            None::<&str>,
            MsFlags::MS_MOVE,
            None::<&str>,
        )
        .map_err(sys(
            "move mount to",
            api,
            "the root filesystem needs /dev, /proc and /sys directories",
        ))?;
    }
    nix::unistd::chdir(NEW_ROOT).map_err(sys("chdir", NEW_ROOT, "the root was just mounted"))?;
    mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>).map_err(sys(
        "move the root onto",
        "/",
        "stage 1 must run from the kernel's initramfs (rootfs)",
    ))?;
    nix::unistd::chroot(".").map_err(sys("chroot", NEW_ROOT, "stage 1 runs as root"))?;
    nix::unistd::chdir("/").map_err(sys("chdir", "/", "the root was just mounted"))?;
    let path = CString::new(init).map_err(|_| Stage1Error::Cmdline {
        word: format!("init={init}"),
        hint: "init= cannot hold a NUL byte",
    })?;
    nix::unistd::execv(&path, &[&path]).map_err(sys(
        "execute",
        "init= in the root filesystem",
        "is clawkeep installed as /sbin/init in the image, and its libraries with it?",
    ))
}
