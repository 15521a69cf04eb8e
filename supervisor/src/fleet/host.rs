//! Looking things up on the host at check time: programs in PATH, files inside the rootfs,
//! and loopback-only health-check URLs.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

/// Whether `path` is a regular file (after symlinks) that someone may execute.
pub(crate) fn is_executable_file(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The first executable `name` in the directories of `path_var` (a `PATH` value).
pub(crate) fn find_in_path(name: &str, path_var: &OsStr) -> Option<PathBuf> {
    std::env::split_paths(path_var)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable_file(candidate))
}

/// Where the absolute in-sandbox path `program` lies on the host under `rootfs`, or `None` if
/// it is relative or climbs out with `..`.
pub(crate) fn in_rootfs(rootfs: &Path, program: &str) -> Option<PathBuf> {
    let program = Path::new(program);
    if !program.is_absolute() {
        return None;
    }
    let mut host = rootfs.to_path_buf();
    for component in program.components() {
        match component {
            Component::Normal(part) => host.push(part),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(host)
}

/// This machine's procfs, where the real path of a file opened inside an image root is read
/// back (`self/fd/N`).
pub(crate) const PROC: &str = "/proc";

/// Where the node's absolute path `path` really is under the image root `root`: symlinks on
/// the way, absolute ones included, are followed inside the root by the kernel
/// (openat2 RESOLVE_IN_ROOT), as the booted node will follow them, never out to this
/// machine's files. `None` when nothing is there or a link leads nowhere inside the root.
pub(crate) fn resolve_in_root(root: &Path, path: &Path, proc: &Path) -> Option<PathBuf> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    use std::os::fd::AsRawFd;
    let rel = path.strip_prefix("/").unwrap_or(path);
    if rel.as_os_str().is_empty() {
        return Some(root.to_path_buf());
    }
    let flags = OFlags::PATH | OFlags::CLOEXEC;
    let dir = rustix::fs::open(root, flags | OFlags::DIRECTORY, Mode::empty()).ok()?;
    let resolve = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
    let fd = rustix::fs::openat2(&dir, rel, flags, Mode::empty(), resolve).ok()?;
    std::fs::read_link(proc.join("self/fd").join(fd.as_raw_fd().to_string())).ok()
}

/// Where the node's absolute `path`, which does not resolve inside `root`, leads there: the
/// place its links point to inside the root, where nothing is. A check of the returned path
/// then finds nothing, instead of following a link out to this machine's files.
pub(crate) fn unresolved_in_root(root: &Path, path: &Path, proc: &Path) -> PathBuf {
    unresolved(root, path, proc, 0)
}

fn unresolved(root: &Path, path: &Path, proc: &Path, depth: u32) -> PathBuf {
    let fallback = || root.join(path.strip_prefix("/").unwrap_or(path));
    // The kernel's limit on links in one lookup.
    const MAX_LINKS: u32 = 40;
    let (Some(parent), Some(leaf)) = (path.parent(), path.file_name()) else {
        return fallback();
    };
    if depth > MAX_LINKS {
        return fallback();
    }
    let parent_real = resolve_in_root(root, parent, proc)
        .unwrap_or_else(|| unresolved(root, parent, proc, depth + 1));
    let here = parent_real.join(leaf);
    match std::fs::read_link(&here) {
        Ok(target) => {
            let next = parent.join(target);
            resolve_in_root(root, &next, proc)
                .unwrap_or_else(|| unresolved(root, &next, proc, depth + 1))
        }
        Err(_) => here,
    }
}

/// Whether something (a file, directory or symlink, which is not followed: a busybox rootfs
/// is full of absolute symlinks that mean nothing on the host) exists at `path`.
pub(crate) fn exists_no_follow(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// Directories where a program named without a path usually lives, inside the rootfs.
pub(crate) const ROOTFS_BIN_DIRS: [&str; 5] =
    ["/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"];

/// Why a health-check URL is not allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum UrlError {
    /// Not `http://` (https, other schemes, no scheme).
    #[error("must start with http://")]
    NotHttp,
    /// Credentials or a host other than the loopback.
    #[error("is not on this host's loopback")]
    NotLoopback,
    /// A port that is not a number in 1..=65535.
    #[error("has a bad port")]
    BadPort,
}

/// Check that `url` is `http://` to 127.0.0.1, localhost or `[::1]`: clawkeep never reaches
/// off the node.
pub(crate) fn check_loopback_http(url: &str) -> Result<(), UrlError> {
    let rest = match url.get(..7) {
        Some(scheme) if scheme.eq_ignore_ascii_case("http://") => &url[7..],
        _ => return Err(UrlError::NotHttp),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(UrlError::NotLoopback);
    }
    let (host, port) = if authority.starts_with('[') {
        match authority.split_once(']') {
            Some((h, p)) => (&authority[..h.len() + 1], p),
            None => return Err(UrlError::NotLoopback),
        }
    } else {
        match authority.find(':') {
            Some(i) => authority.split_at(i),
            None => (authority, ""),
        }
    };
    if !["127.0.0.1", "localhost", "[::1]"].contains(&host.to_ascii_lowercase().as_str()) {
        return Err(UrlError::NotLoopback);
    }
    match port.strip_prefix(':') {
        None if port.is_empty() => Ok(()),
        Some(p) if p.parse::<u16>().is_ok_and(|n| n != 0) => Ok(()),
        _ => Err(UrlError::BadPort),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_urls() {
        assert_eq!(
            check_loopback_http("http://127.0.0.1:9000/minio/health/live"),
            Ok(())
        );
        assert_eq!(check_loopback_http("http://localhost:11434"), Ok(()));
        assert_eq!(check_loopback_http("HTTP://LocalHost/"), Ok(()));
        assert_eq!(check_loopback_http("http://[::1]:8080/x?y#z"), Ok(()));
        assert_eq!(check_loopback_http("http://127.0.0.1"), Ok(()));
    }

    #[test]
    fn off_node_urls() {
        assert_eq!(
            check_loopback_http("https://127.0.0.1/"),
            Err(UrlError::NotHttp)
        );
        assert_eq!(
            check_loopback_http("127.0.0.1:9000"),
            Err(UrlError::NotHttp)
        );
        assert_eq!(
            check_loopback_http("http://example.com/"),
            Err(UrlError::NotLoopback)
        );
        assert_eq!(
            check_loopback_http("http://10.0.0.1:9000/"),
            Err(UrlError::NotLoopback)
        );
        assert_eq!(
            check_loopback_http("http://127.0.0.1.evil.com/"),
            Err(UrlError::NotLoopback)
        );
        assert_eq!(
            check_loopback_http("http://user@127.0.0.1/"),
            Err(UrlError::NotLoopback)
        );
        assert_eq!(
            check_loopback_http("http://127.0.0.1@evil.com/"),
            Err(UrlError::NotLoopback)
        );
        assert_eq!(
            check_loopback_http("http://[::2]/"),
            Err(UrlError::NotLoopback)
        );
        assert_eq!(
            check_loopback_http("http://[::1/"),
            Err(UrlError::NotLoopback)
        );
        assert_eq!(
            check_loopback_http("http://127.0.0.1:99999/"),
            Err(UrlError::BadPort)
        );
        assert_eq!(
            check_loopback_http("http://127.0.0.1:0/"),
            Err(UrlError::BadPort)
        );
        assert_eq!(
            check_loopback_http("http://127.0.0.1:/"),
            Err(UrlError::BadPort)
        );
        assert_eq!(
            check_loopback_http("http://[::1]x/"),
            Err(UrlError::BadPort)
        );
    }

    #[test]
    fn rootfs_paths() {
        let root = Path::new("/srv/rootfs");
        assert_eq!(
            in_rootfs(root, "/bin/sh"),
            Some(PathBuf::from("/srv/rootfs/bin/sh"))
        );
        assert_eq!(
            in_rootfs(root, "/usr/./bin/x"),
            Some(PathBuf::from("/srv/rootfs/usr/bin/x"))
        );
        assert_eq!(in_rootfs(root, "bin/sh"), None);
        assert_eq!(in_rootfs(root, "/../etc/passwd"), None);
    }

    #[test]
    fn absolute_symlinks_in_an_image_root_resolve_inside_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let proc = Path::new(PROC);
        std::fs::create_dir_all(root.join("usr/lib/node/bin")).unwrap();
        std::fs::create_dir_all(root.join("usr/bin")).unwrap();
        std::fs::write(root.join("usr/lib/node/bin/node"), "").unwrap();
        // Debian's alternatives: absolute links, meaningless on the build machine.
        std::fs::create_dir_all(root.join("etc/alternatives")).unwrap();
        std::os::unix::fs::symlink("/usr/lib/node/bin/node", root.join("etc/alternatives/node"))
            .unwrap();
        std::os::unix::fs::symlink("/etc/alternatives/node", root.join("usr/bin/node")).unwrap();
        let real = std::fs::canonicalize(root.join("usr/lib/node/bin/node")).unwrap();
        assert_eq!(
            resolve_in_root(root, Path::new("/usr/bin/node"), proc),
            Some(real)
        );
        // A link to a file only this machine has leads nowhere inside the root: to where
        // that file would be in it.
        std::os::unix::fs::symlink("/etc/passwd", root.join("usr/bin/host-only")).unwrap();
        let host_only = Path::new("/usr/bin/host-only");
        assert_eq!(resolve_in_root(root, host_only, proc), None);
        let missing = unresolved_in_root(root, host_only, proc);
        assert_eq!(missing, root.join("etc/passwd"));
        assert!(std::fs::symlink_metadata(missing).is_err());
        // Also through a linked directory and a relative link.
        std::os::unix::fs::symlink("/usr/bin", root.join("bin")).unwrap();
        std::os::unix::fs::symlink("../../etc/shadow", root.join("usr/bin/rel")).unwrap();
        let missing = unresolved_in_root(root, Path::new("/bin/rel"), proc);
        assert!(
            missing.ends_with("etc/shadow") && missing.starts_with(root),
            "{missing:?}"
        );
        assert!(std::fs::symlink_metadata(missing).is_err());
        // Climbing out with .. stops at the root, as it does on the node.
        assert_eq!(
            resolve_in_root(root, Path::new("/../../usr/bin/node"), proc),
            std::fs::canonicalize(root.join("usr/lib/node/bin/node")).ok()
        );
        assert_eq!(resolve_in_root(root, Path::new("/missing"), proc), None);
        assert_eq!(
            resolve_in_root(root, Path::new("/"), proc),
            Some(root.to_path_buf())
        );
    }

    #[test]
    fn path_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let tool = dir.path().join("tool");
        std::fs::write(&tool, "").unwrap();
        let path_var = std::env::join_paths([Path::new("/nonexistent"), dir.path()]).unwrap();
        assert_eq!(find_in_path("tool", &path_var), None, "not executable yet");
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(find_in_path("tool", &path_var), Some(tool));
        assert_eq!(find_in_path("missing", &path_var), None);
        // Relative PATH entries would depend on the supervisor's cwd: ignored.
        assert_eq!(find_in_path("tool", OsStr::new("relative/dir")), None);
    }
}
