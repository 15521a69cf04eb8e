//! The sandbox's filesystem view, built inside its mount namespace from the OCI `mounts`,
//! `root`, `maskedPaths` and `readonlyPaths` of config.json.

use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::statvfs::{statvfs, FsFlags};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount};

use super::SandboxError;

/// Mount options of one OCI mount, split into flags, propagation and filesystem data.
#[derive(Debug, PartialEq)]
pub struct Options {
    /// Flags for mount(2).
    pub flags: MsFlags,
    /// Propagation to apply afterwards (MS_PRIVATE, MS_SLAVE, ...), if any.
    pub propagation: MsFlags,
    /// Options passed to the filesystem (e.g. `size=64m,mode=755`).
    pub data: String,
}

/// Split OCI mount options (`fstab` words) into mount(2) flags and filesystem data.
pub fn parse_options(opts: &[String]) -> Options {
    let mut o = Options {
        flags: MsFlags::empty(),
        propagation: MsFlags::empty(),
        data: String::new(),
    };
    let mut data = Vec::new();
    for opt in opts {
        let (set, clear, prop) = match opt.as_str() {
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty(), MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY, MsFlags::empty()),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty(), MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID, MsFlags::empty()),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty(), MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV, MsFlags::empty()),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty(), MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC, MsFlags::empty()),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty(), MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty(), MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty(), MsFlags::empty()),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty(), MsFlags::empty()),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME, MsFlags::empty()),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty(), MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty(), MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME, MsFlags::empty()),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty(), MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty(), MsFlags::empty()),
            "rbind" => (
                MsFlags::MS_BIND | MsFlags::MS_REC,
                MsFlags::empty(),
                MsFlags::empty(),
            ),
            "private" => (MsFlags::empty(), MsFlags::empty(), MsFlags::MS_PRIVATE),
            "rprivate" => (
                MsFlags::empty(),
                MsFlags::empty(),
                MsFlags::MS_PRIVATE | MsFlags::MS_REC,
            ),
            "slave" => (MsFlags::empty(), MsFlags::empty(), MsFlags::MS_SLAVE),
            "rslave" => (
                MsFlags::empty(),
                MsFlags::empty(),
                MsFlags::MS_SLAVE | MsFlags::MS_REC,
            ),
            "shared" => (MsFlags::empty(), MsFlags::empty(), MsFlags::MS_SHARED),
            "rshared" => (
                MsFlags::empty(),
                MsFlags::empty(),
                MsFlags::MS_SHARED | MsFlags::MS_REC,
            ),
            "unbindable" => (MsFlags::empty(), MsFlags::empty(), MsFlags::MS_UNBINDABLE),
            "runbindable" => (
                MsFlags::empty(),
                MsFlags::empty(),
                MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
            ),
            other => {
                data.push(other.to_string());
                continue;
            }
        };
        o.flags.insert(set);
        o.flags.remove(clear);
        o.propagation.insert(prop);
    }
    o.data = data.join(",");
    o
}

/// Join `dest` under `root` without following symlinks: every existing component must be a
/// real directory (or the final file), so nothing in the rootfs can redirect a mount.
pub fn resolve_in(root: &Path, dest: &Path) -> Result<PathBuf, SandboxError> {
    let mut out = root.to_path_buf();
    for c in dest.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => {
                out.push(n);
                if let Ok(md) = out.symlink_metadata() {
                    if md.file_type().is_symlink() {
                        return Err(SandboxError::Mount {
                            target: dest.to_path_buf(),
                            reason: format!(
                                "{} is a symlink; clawkeep never mounts through symlinks",
                                out.display()
                            ),
                        });
                    }
                }
            }
            Component::ParentDir | Component::Prefix(_) => {
                return Err(SandboxError::Mount {
                    target: dest.to_path_buf(),
                    reason: "mount destinations must be absolute paths without '..'".into(),
                })
            }
        }
    }
    Ok(out)
}

fn mnt_err(target: &Path, what: &str, e: impl std::fmt::Display) -> SandboxError {
    SandboxError::Mount {
        target: target.to_path_buf(),
        reason: format!("{what}: {e}"),
    }
}

/// Flags a remount must keep: in a user namespace, the kernel refuses to clear the
/// nosuid/nodev/noexec/atime flags the mount got from a more privileged namespace.
fn locked_flags(path: &Path) -> MsFlags {
    let Ok(st) = statvfs(path) else {
        return MsFlags::empty();
    };
    let f = st.flags();
    let mut out = MsFlags::empty();
    for (fs, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(fs) {
            out.insert(ms);
        }
    }
    out
}

/// Remount an existing bind mount read-only, keeping its locked flags.
pub fn remount_readonly(path: &Path, extra: MsFlags) -> Result<(), SandboxError> {
    let flags =
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | locked_flags(path) | extra;
    mount(None::<&str>, path, None::<&str>, flags, None::<&str>)
        .map_err(|e| mnt_err(path, "remount read-only", e))
}

/// Perform one OCI mount under `root` (before pivot_root).
pub fn mount_one(root: &Path, m: &Mount) -> Result<(), SandboxError> {
    let target = resolve_in(root, m.destination())?;
    let opts = parse_options(m.options().as_deref().unwrap_or(&[]));
    let typ = m.typ().as_deref().unwrap_or("none");
    let is_bind = opts.flags.contains(MsFlags::MS_BIND) || typ == "bind";
    if target.symlink_metadata().is_err() {
        // Only possible inside something clawkeep mounted writable (the /dev tmpfs); the
        // read-only rootfs has its mount points made when the bundle is written.
        let made = match m.source().as_deref() {
            Some(src) if is_bind && !src.is_dir() => std::fs::File::create(&target).map(drop),
            _ => std::fs::create_dir_all(&target),
        };
        made.map_err(|e| SandboxError::Mount {
            target: m.destination().clone(),
            reason: format!(
                "cannot create mount point {}: {e} (hint: write the bundle again; clawkeep creates the rootfs mount points when it writes config.json)",
                target.display()
            ),
        })?;
    }
    if is_bind {
        let src = m.source().as_deref().ok_or_else(|| SandboxError::Mount {
            target: m.destination().clone(),
            reason: "bind mount without a source".into(),
        })?;
        let flags = MsFlags::MS_BIND | (opts.flags & MsFlags::MS_REC);
        mount(Some(src), &target, None::<&str>, flags, None::<&str>)
            .map_err(|e| mnt_err(m.destination(), &format!("bind {}", src.display()), e))?;
        let wanted = opts.flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
        if !wanted.is_empty() {
            let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | wanted | locked_flags(&target);
            mount(None::<&str>, &target, None::<&str>, flags, None::<&str>)
                .map_err(|e| mnt_err(m.destination(), "remount bind with its options", e))?;
        }
    } else {
        let source = m
            .source()
            .as_deref()
            .map(|p| p.to_path_buf())
            .unwrap_or_else(|| typ.into());
        let data = (!opts.data.is_empty()).then_some(opts.data.as_str());
        mount(Some(&source), &target, Some(typ), opts.flags, data)
            .map_err(|e| mnt_err(m.destination(), &format!("mount {typ}"), e))?;
    }
    if !opts.propagation.is_empty() {
        mount(
            None::<&str>,
            &target,
            None::<&str>,
            opts.propagation,
            None::<&str>,
        )
        .map_err(|e| mnt_err(m.destination(), "set propagation", e))?;
    }
    Ok(())
}

/// Device nodes every OCI container gets (config.md "Default Devices"). In a user namespace
/// mknod is not allowed, so they are bind mounts of the host's nodes, as runc does.
pub const DEFAULT_DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// Fill a fresh /dev tmpfs under `root` with the default devices and links, and the spec's
/// `linux.devices` (a model backend's GPUs), each bound from the same path on the host.
pub fn populate_dev(
    root: &Path,
    host_dev: &Path,
    devices: &[LinuxDevice],
) -> Result<(), SandboxError> {
    let dev = resolve_in(root, Path::new("/dev"))?;
    for d in devices {
        bind_device(root, d)?;
    }
    for name in DEFAULT_DEVICES {
        let src = host_dev.join(name);
        match src.metadata() {
            Ok(md) if md.file_type().is_char_device() => {}
            _ => continue,
        }
        let dst = dev.join(name);
        std::fs::File::create(&dst).map_err(|e| mnt_err(&dst, "create device mount point", e))?;
        mount(
            Some(&src),
            &dst,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| mnt_err(&dst, &format!("bind {}", src.display()), e))?;
    }
    for (link, to) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("core", "/proc/kcore"),
    ] {
        let at = dev.join(link);
        if at.symlink_metadata().is_err() {
            symlink(to, &at).map_err(|e| mnt_err(&at, "create symlink", e))?;
        }
    }
    if dev.join("pts").is_dir() && dev.join("ptmx").symlink_metadata().is_err() {
        symlink("pts/ptmx", dev.join("ptmx")).map_err(|e| mnt_err(&dev, "create ptmx link", e))?;
    }
    Ok(())
}

/// Bind host device node `d.path` at the same path under `root`, after checking it is still
/// the device the spec names (type and numbers): a node swapped since is refused.
fn bind_device(root: &Path, d: &LinuxDevice) -> Result<(), SandboxError> {
    let src = d.path();
    if !src.starts_with("/dev/") {
        return Err(mnt_err(
            src,
            "bind device",
            "devices must be under /dev (hint: list device files such as /dev/nvidia0)",
        ));
    }
    let md = src.metadata().map_err(|e| mnt_err(src, "find device", e))?;
    let ft = md.file_type();
    let typ_ok = match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => ft.is_char_device(),
        LinuxDeviceType::B => ft.is_block_device(),
        _ => false,
    };
    let rdev = md.rdev();
    if !typ_ok
        || nix::sys::stat::major(rdev) as i64 != d.major()
        || nix::sys::stat::minor(rdev) as i64 != d.minor()
    {
        return Err(mnt_err(
            src,
            "bind device",
            format!(
                "it is no longer the {:?} device {}:{} the bundle names (hint: write the bundle again)",
                d.typ(),
                d.major(),
                d.minor()
            ),
        ));
    }
    let dst = resolve_in(root, src)?;
    if let Some(parent) = dst.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| mnt_err(parent, "create device directory", e))?;
    }
    std::fs::File::create(&dst).map_err(|e| mnt_err(&dst, "create device mount point", e))?;
    mount(
        Some(src),
        &dst,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| mnt_err(&dst, &format!("bind {}", src.display()), e))
}

/// Make `root` the new `/` and detach the old one.
pub fn pivot(root: &Path) -> Result<(), SandboxError> {
    nix::unistd::chdir(root).map_err(|e| mnt_err(root, "chdir", e))?;
    // pivot_root(".", ".") stacks the old root under the new one; unmounting "." then
    // detaches it without needing a directory for it in the read-only rootfs.
    nix::unistd::pivot_root(".", ".").map_err(|e| mnt_err(root, "pivot_root", e))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| mnt_err(root, "detach old root", e))?;
    nix::unistd::chdir("/").map_err(|e| mnt_err(Path::new("/"), "chdir", e))
}

/// Hide paths (after pivot): files get /dev/null bound over them, directories an empty
/// read-only tmpfs.
pub fn mask(paths: &[String]) -> Result<(), SandboxError> {
    for p in paths {
        let path = Path::new(p);
        let Ok(md) = path.symlink_metadata() else {
            continue;
        };
        if md.is_dir() {
            mount(
                Some("tmpfs"),
                path,
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                None::<&str>,
            )
            .map_err(|e| mnt_err(path, "mask with tmpfs", e))?;
        } else {
            mount(
                Some("/dev/null"),
                path,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| mnt_err(path, "mask with /dev/null", e))?;
        }
    }
    Ok(())
}

/// Make paths read-only (after pivot).
pub fn readonly(paths: &[String]) -> Result<(), SandboxError> {
    for p in paths {
        let path = Path::new(p);
        if path.symlink_metadata().is_err() {
            continue;
        }
        mount(
            Some(path),
            path,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| mnt_err(path, "bind onto itself", e))?;
        remount_readonly(path, MsFlags::MS_REC)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(v: &[&str]) -> Options {
        parse_options(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn options_split_into_flags_and_data() {
        let x = o(&["nosuid", "strictatime", "mode=755", "size=65536k"]);
        assert_eq!(x.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(x.data, "mode=755,size=65536k");
        let y = o(&["rbind", "ro", "rprivate"]);
        assert!(y
            .flags
            .contains(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY));
        assert_eq!(y.propagation, MsFlags::MS_PRIVATE | MsFlags::MS_REC);
        assert!(!o(&["ro", "rw"]).flags.contains(MsFlags::MS_RDONLY));
    }

    #[test]
    fn resolve_refuses_symlinks_and_dotdot() {
        let d = std::env::temp_dir().join(format!("ck-resolve-{}", std::process::id()));
        std::fs::create_dir_all(d.join("real")).unwrap();
        let _ = std::fs::remove_file(d.join("link"));
        symlink("/etc", d.join("link")).unwrap();
        assert_eq!(resolve_in(&d, Path::new("/real")).unwrap(), d.join("real"));
        assert!(resolve_in(&d, Path::new("/link/x"))
            .unwrap_err()
            .to_string()
            .contains("symlink"));
        assert!(resolve_in(&d, Path::new("/real/../x")).is_err());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
