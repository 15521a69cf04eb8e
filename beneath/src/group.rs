//! Handing a directory tree to a group (a shared collection): the group gets what each
//! entry's owner has, no one else gets anything, and special files are removed.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags};

use super::{Beneath, Kind, RESOLVE};

/// Set-group-id on a directory: what is made in it takes its group (and, through
/// [`Beneath::dir`], its mode).
pub const SETGID: u32 = 0o2000;

/// What [`Beneath::share_with_group`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Shared {
    /// Files and directories whose group or mode it changed.
    pub changed: usize,
    /// Special files (FIFOs, sockets, device nodes) it removed, by path relative to the root.
    pub removed: Vec<PathBuf>,
}

/// The mode an entry gets: the group has what the owner has, others nothing, no set-user-id;
/// directories are set-group-id.
pub fn shared_mode(mode: u32, dir: bool) -> u32 {
    let owner = (mode >> 6) & 0o7;
    let base = mode & 0o700;
    base | (owner << 3) | if dir { SETGID } else { 0 }
}

/// Give the open file or directory `fd` to group `gid` with [`shared_mode`]; whether it
/// changed.
fn share_fd(fd: impl AsFd, gid: u32, dir: bool) -> io::Result<bool> {
    let st = rustix::fs::fstat(&fd)?;
    let mut changed = false;
    if st.st_gid != gid {
        rustix::fs::fchown(&fd, None, Some(Gid::from_raw(gid)))?;
        changed = true;
    }
    let mode = st.st_mode & 0o7777;
    let want = shared_mode(mode, dir);
    // A chown may have cleared bits: set the mode whenever the group changed.
    if changed || mode != want {
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(want))?;
        changed = true;
    }
    Ok(changed)
}

impl Beneath {
    /// Hand the whole tree to group `gid`: every directory and regular file gets the group
    /// and [`shared_mode`] (through its own descriptor, never a path a symlink could
    /// redirect), symlinks are left alone (never followed), and FIFOs, sockets and device
    /// nodes are removed: in a directory several agents share they would be a channel
    /// between them, and they hold no data. Walks without recursion, one directory open at
    /// a time.
    pub fn share_with_group(&self, gid: u32) -> io::Result<Shared> {
        let mut out = Shared::default();
        let mut dirs = vec![PathBuf::new()];
        while let Some(rel) = dirs.pop() {
            let fd = self.dir(&rel, false, None)?;
            if share_fd(&fd, gid, true)? {
                out.changed += 1;
            }
            for e in self.list(&rel)? {
                let child = rel.join(&e.name);
                match e.kind {
                    Kind::Dir => dirs.push(child),
                    Kind::File => {
                        if share_file(&fd, &e.name, gid)? {
                            out.changed += 1;
                        }
                    }
                    Kind::Symlink => {}
                    Kind::Other => {
                        match rustix::fs::unlinkat(&fd, e.name.as_os_str(), AtFlags::empty()) {
                            Ok(()) => out.removed.push(child),
                            Err(rustix::io::Errno::NOENT) => {}
                            Err(e) => return Err(e.into()),
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Open the regular file `name` in `dir` without following a symlink or blocking on a FIFO
/// swapped in since it was listed, and share it if it is still a regular file.
fn share_file(dir: &OwnedFd, name: &std::ffi::OsStr, gid: u32) -> io::Result<bool> {
    let flags =
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    let f = match rustix::fs::openat2(dir, name, flags, Mode::empty(), RESOLVE) {
        Ok(f) => f,
        // Gone, or no longer something to open plainly: the next pass sees what it is.
        Err(_) => return Ok(false),
    };
    let st = rustix::fs::fstat(&f)?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Ok(false);
    }
    share_fd(&f, gid, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn the_group_gets_the_owners_rights_and_others_none() {
        assert_eq!(shared_mode(0o644, false), 0o660);
        assert_eq!(shared_mode(0o600, false), 0o660);
        assert_eq!(shared_mode(0o755, true), 0o2770);
        assert_eq!(shared_mode(0o4755, false), 0o770);
        assert_eq!(shared_mode(0o444, false), 0o440);
    }

    #[test]
    fn a_shared_tree_is_the_groups_alone_and_loses_its_special_files() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("docs");
        std::fs::create_dir_all(root.join("sub/deeper")).unwrap();
        std::fs::write(root.join("a.md"), b"a").unwrap();
        std::fs::write(root.join("sub/deeper/b.md"), b"b").unwrap();
        std::fs::set_permissions(root.join("a.md"), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        let outside = d.path().join("outside");
        std::fs::write(&outside, b"host file").unwrap();
        std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            root.join("sub/fifo"),
            FileType::Fifo,
            Mode::from_raw_mode(0o666),
            0,
        )
        .unwrap();
        let sock = std::os::unix::net::UnixListener::bind(root.join("sock")).unwrap();
        let gid = 4_294_901_760;
        let b = Beneath::open(&root).unwrap();
        let done = b.share_with_group(gid).unwrap();
        let mut removed = done.removed.clone();
        removed.sort();
        assert_eq!(
            removed,
            [PathBuf::from("sock"), PathBuf::from("sub/fifo")],
            "{done:?}"
        );
        for (p, mode) in [
            ("", 0o2770),
            ("sub", 0o2770),
            ("sub/deeper", 0o2770),
            ("a.md", 0o660),
            ("sub/deeper/b.md", 0o660),
        ] {
            let md = root.join(p).symlink_metadata().unwrap();
            assert_eq!((md.gid(), md.mode() & 0o7777), (gid, mode), "{p}");
        }
        // The symlink's target, outside, is untouched.
        let md = outside.metadata().unwrap();
        assert_eq!((md.gid(), md.mode() & 0o7777), (0, 0o644));
        // Done again, nothing changes.
        assert_eq!(b.share_with_group(gid).unwrap(), Shared::default());
        drop(sock);
    }

    #[test]
    fn a_directory_made_in_a_shared_one_is_shared_too() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("docs");
        std::fs::create_dir(&root).unwrap();
        let b = Beneath::open(&root).unwrap();
        b.share_with_group(4_294_901_761).unwrap();
        b.dir(std::path::Path::new("x/y"), true, Some((0, 4_294_901_761)))
            .unwrap();
        for p in ["x", "x/y"] {
            let md = root.join(p).symlink_metadata().unwrap();
            assert_eq!(
                (md.gid(), md.mode() & 0o7777),
                (4_294_901_761, 0o2770),
                "{p}"
            );
        }
    }
}
