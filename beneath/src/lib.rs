//! File operations confined to a directory an agent controls. The supervisor works as root
//! in directories the agent can change at any moment (it may swap a file or a parent for a
//! symlink to /etc between a check and a use), so every path is resolved by the kernel from
//! an open directory with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS): a symlink anywhere
//! on the way fails the call instead of being followed.
//!
//! Its own crate because two crates need it and neither should reach into the other: the
//! knowledge store (scanning, watching and writing an agent's brain) and the supervisor
//! (provisioning, backing up and checking an agent's OpenClaw files).

#![forbid(unsafe_code)]

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, ResolveFlags, Uid, CWD};

mod group;
pub use group::{shared_mode, Shared, SETGID};

const RESOLVE: ResolveFlags = ResolveFlags::BENEATH
    .union(ResolveFlags::NO_SYMLINKS)
    .union(ResolveFlags::NO_MAGICLINKS);

/// An open directory; every path given to its methods is relative to it and stays inside.
#[derive(Debug)]
pub struct Beneath {
    root: OwnedFd,
}

/// A directory entry's kind, as listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symlink (never followed).
    Symlink,
    /// Anything else (device, fifo, socket).
    Other,
}

fn check_rel(rel: &Path) -> io::Result<()> {
    if rel.components().all(|c| matches!(c, Component::Normal(_))) {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a plain relative path",
        ))
    }
}

impl Beneath {
    /// Open `root` itself (which must be a real directory, not a symlink).
    pub fn open(root: &Path) -> io::Result<Self> {
        let fd = rustix::fs::openat(
            CWD,
            root,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
        )?;
        Ok(Beneath { root: fd })
    }

    /// Open a regular file under the root for reading; fails if it or any parent is a
    /// symlink, or if it is not a regular file. Opened non-blocking and checked on the
    /// descriptor: a FIFO the agent swapped in never blocks the open (which would wait for a
    /// writer forever), a device never becomes the caller's terminal.
    pub fn open_file(&self, rel: &Path) -> io::Result<File> {
        check_rel(rel)?;
        let fd = rustix::fs::openat2(
            &self.root,
            rel,
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY,
            Mode::empty(),
            RESOLVE,
        )?;
        let f = File::from(fd);
        if !f.metadata()?.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file",
            ));
        }
        // A regular file: reads behave as usual, blocking or not; clear it anyway.
        let flags = rustix::fs::fcntl_getfl(&f)?;
        rustix::fs::fcntl_setfl(&f, flags - OFlags::NONBLOCK)?;
        Ok(f)
    }

    /// Open the directory `rel` (empty: the root), creating missing components (mode 0755,
    /// or the parent's in a set-group-id directory; given to `owner`) when `create` is set.
    pub fn dir(&self, rel: &Path, create: bool, owner: Option<(u32, u32)>) -> io::Result<OwnedFd> {
        check_rel(rel)?;
        let mut fd = rustix::fs::openat(
            &self.root,
            ".",
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        for c in rel.components() {
            let name = c.as_os_str();
            let flags = OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW;
            let next = match rustix::fs::openat2(&fd, name, flags, Mode::empty(), RESOLVE) {
                Ok(n) => n,
                Err(rustix::io::Errno::NOENT) if create => {
                    match rustix::fs::mkdirat(&fd, name, Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                        Err(e) => return Err(e.into()),
                    }
                    let n = rustix::fs::openat2(&fd, name, flags, Mode::empty(), RESOLVE)?;
                    if let Some((u, g)) = owner {
                        rustix::fs::fchown(&n, Some(Uid::from_raw(u)), Some(Gid::from_raw(g)))?;
                    }
                    // In a shared (set-group-id) directory, a new one is shared alike.
                    let parent = rustix::fs::fstat(&fd)?.st_mode & 0o7777;
                    if parent & group::SETGID != 0 {
                        rustix::fs::fchmod(&n, Mode::from_raw_mode(parent))?;
                    }
                    n
                }
                Err(e) => return Err(e.into()),
            };
            fd = next;
        }
        Ok(fd)
    }

    fn parent<'a>(
        &self,
        rel: &'a Path,
        create: bool,
        owner: Option<(u32, u32)>,
    ) -> io::Result<(OwnedFd, &'a OsStr)> {
        check_rel(rel)?;
        let name = rel
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
        let parent = rel.parent().unwrap_or(Path::new(""));
        Ok((self.dir(parent, create, owner)?, name))
    }

    /// Size and mtime (ns) of the regular file `rel`, or `None` if it is not one (missing,
    /// a symlink, a directory, or behind a symlink).
    pub fn stat(&self, rel: &Path) -> Option<(u64, i128)> {
        let (dir, name) = self.parent(rel, false, None).ok()?;
        let st = rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW).ok()?;
        (FileType::from_raw_mode(st.st_mode) == FileType::RegularFile).then(|| {
            (
                st.st_size as u64,
                st.st_mtime as i128 * 1_000_000_000 + st.st_mtime_nsec as i128,
            )
        })
    }

    /// Move `from_dir/from_name` (a directory only root can write) to `rel` under the root,
    /// making missing parents for `owner`; replaces a file there, never follows a symlink.
    pub fn rename_in(
        &self,
        from_dir: impl AsFd,
        from_name: &str,
        rel: &Path,
        owner: Option<(u32, u32)>,
    ) -> io::Result<()> {
        let (dir, name) = self.parent(rel, true, owner)?;
        if let Ok(st) = rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "a directory is in the way",
                ));
            }
        }
        rustix::fs::renameat(from_dir, from_name, &dir, name)?;
        Ok(())
    }

    /// Rename the file `from` to `to`, both under the root, never replacing what is at `to`
    /// and never following a symlink on either way (making missing parents of `to`).
    pub fn rename_within(&self, from: &Path, to: &Path) -> io::Result<()> {
        let (from_dir, from_name) = self.parent(from, false, None)?;
        let (to_dir, to_name) = self.parent(to, true, None)?;
        rustix::fs::renameat_with(
            &from_dir,
            from_name,
            &to_dir,
            to_name,
            rustix::fs::RenameFlags::NOREPLACE,
        )?;
        Ok(())
    }

    /// Make a symlink `rel` pointing at `target` (given to `owner`); fails if something is
    /// there already.
    pub fn symlink(&self, rel: &Path, target: &Path, owner: Option<(u32, u32)>) -> io::Result<()> {
        let (dir, name) = self.parent(rel, false, None)?;
        rustix::fs::symlinkat(target, &dir, name)?;
        if let Some((u, g)) = owner {
            rustix::fs::chownat(
                &dir,
                name,
                Some(Uid::from_raw(u)),
                Some(Gid::from_raw(g)),
                AtFlags::SYMLINK_NOFOLLOW,
            )?;
        }
        Ok(())
    }

    /// Where the symlink `rel` points, or `None` if `rel` is not a symlink.
    pub fn read_link(&self, rel: &Path) -> io::Result<Option<std::path::PathBuf>> {
        let (dir, name) = self.parent(rel, false, None)?;
        match rustix::fs::readlinkat(&dir, name, Vec::new()) {
            Ok(t) => Ok(Some(std::path::PathBuf::from(OsStr::from_bytes(
                t.as_bytes(),
            )))),
            Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Remove the empty directory `rel`.
    pub fn remove_dir(&self, rel: &Path) -> io::Result<()> {
        let (dir, name) = self.parent(rel, false, None)?;
        rustix::fs::unlinkat(&dir, name, AtFlags::REMOVEDIR)?;
        Ok(())
    }

    /// The extended attribute `name` of the root directory itself (up to 256 bytes), or
    /// `None` when it has none or a longer one. `trusted.*` attributes are root's alone: an agent can neither read nor set them.
    pub fn root_xattr(&self, name: &str) -> io::Result<Option<Vec<u8>>> {
        let mut buf = vec![0u8; 256];
        match rustix::fs::fgetxattr(&self.root, name, &mut buf[..]) {
            Ok(n) => {
                buf.truncate(n);
                Ok(Some(buf))
            }
            // None, or one longer than any clawkeep writes: not ours either way.
            Err(rustix::io::Errno::NODATA | rustix::io::Errno::RANGE) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Set the extended attribute `name` of the root directory itself.
    pub fn set_root_xattr(&self, name: &str, value: &[u8]) -> io::Result<()> {
        rustix::fs::fsetxattr(&self.root, name, value, rustix::fs::XattrFlags::empty())?;
        Ok(())
    }

    /// Remove the file `rel` (a symlink there is removed itself, never its target).
    pub fn unlink(&self, rel: &Path) -> io::Result<()> {
        let (dir, name) = self.parent(rel, false, None)?;
        rustix::fs::unlinkat(&dir, name, AtFlags::empty())?;
        Ok(())
    }

    /// The entries of directory `rel`, without `.` and `..`, with size and mtime (ns) for
    /// regular files (one `fstatat` each, on the listed directory itself).
    pub fn list(&self, rel: &Path) -> io::Result<Vec<Entry>> {
        let fd = self.dir(rel, false, None)?;
        let mut d = rustix::fs::Dir::read_from(&fd)?;
        let mut out = Vec::new();
        while let Some(e) = d.read() {
            let e = e?;
            let name = OsStr::from_bytes(e.file_name().to_bytes()).to_os_string();
            if name == "." || name == ".." {
                continue;
            }
            let mut entry = Entry {
                name,
                kind: Kind::Other,
                size: 0,
                mtime_ns: 0,
            };
            entry.kind = match e.file_type() {
                FileType::Directory => Kind::Dir,
                FileType::Symlink => Kind::Symlink,
                FileType::RegularFile | FileType::Unknown => {
                    match rustix::fs::statat(&fd, entry.name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW)
                    {
                        Ok(st) => match FileType::from_raw_mode(st.st_mode) {
                            FileType::RegularFile => {
                                entry.size = st.st_size as u64;
                                entry.mtime_ns =
                                    st.st_mtime as i128 * 1_000_000_000 + st.st_mtime_nsec as i128;
                                Kind::File
                            }
                            FileType::Directory => Kind::Dir,
                            FileType::Symlink => Kind::Symlink,
                            _ => Kind::Other,
                        },
                        // Gone since it was listed.
                        Err(_) => continue,
                    }
                }
                _ => Kind::Other,
            };
            out.push(entry);
        }
        Ok(out)
    }

    /// Move the entry `rel` (a file, a directory with its contents, or a symlink itself) out
    /// to `to_dir/to_name`, a directory only root can write on the same filesystem.
    pub fn rename_out(&self, rel: &Path, to_dir: impl AsFd, to_name: &OsStr) -> io::Result<()> {
        let (dir, name) = self.parent(rel, false, None)?;
        rustix::fs::renameat(&dir, name, to_dir, to_name)?;
        Ok(())
    }

    /// Copy the tree `rel` (a file or a directory) to `dest` on the host, keeping modes and
    /// owners; symlinks and special files are skipped (never followed) and counted. `dest`
    /// must not exist and should be in a directory only root can write. Returns (bytes,
    /// skipped).
    pub fn copy_out(&self, rel: &Path, dest: &Path) -> io::Result<(u64, u64)> {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let mut bytes = 0u64;
        let mut skipped = 0u64;
        let keep = |from: &std::fs::Metadata, to: &Path| -> io::Result<()> {
            std::os::unix::fs::lchown(to, Some(from.uid()), Some(from.gid()))?;
            std::fs::set_permissions(to, std::fs::Permissions::from_mode(from.mode() & 0o7777))
        };
        // A directory: open it confined, recreate it, then its entries.
        if let Ok(fd) = self.dir(rel, false, None) {
            let md = File::from(fd).metadata()?;
            std::fs::create_dir(dest)?;
            for e in self.list(rel)? {
                let child = rel.join(&e.name);
                match e.kind {
                    Kind::File | Kind::Dir => {
                        let (b, s) = self.copy_out(&child, &dest.join(&e.name))?;
                        bytes += b;
                        skipped += s;
                    }
                    Kind::Symlink | Kind::Other => skipped += 1,
                }
            }
            keep(&md, dest)?;
            return Ok((bytes, skipped));
        }
        let mut from = match self.open_file(rel) {
            Ok(f) => f,
            // A symlink or a special file where a file was listed: not copied.
            Err(_) => return Ok((0, 1)),
        };
        let md = from.metadata()?;
        let mut to = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(dest)?;
        bytes += io::copy(&mut from, &mut to)?;
        to.sync_all()?;
        keep(&md, dest)?;
        Ok((bytes, skipped))
    }
}

/// One listed entry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    /// Its name.
    pub name: std::ffi::OsString,
    /// What it is.
    pub kind: Kind,
    /// Size in bytes (regular files).
    pub size: u64,
    /// Modification time in nanoseconds (regular files).
    pub mtime_ns: i128,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_out_keeps_files_and_skips_symlinks_then_rename_out_moves_a_tree() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("home");
        std::fs::create_dir_all(root.join("state/sub")).unwrap();
        std::fs::write(root.join("state/db.sqlite"), "rows").unwrap();
        std::fs::write(root.join("state/sub/x"), "x").unwrap();
        std::fs::write(d.path().join("host-secret"), "s").unwrap();
        std::os::unix::fs::symlink(d.path().join("host-secret"), root.join("state/leak")).unwrap();
        let b = Beneath::open(&root).unwrap();
        let out = d.path().join("backup");
        let (bytes, skipped) = b.copy_out(Path::new("state"), &out).unwrap();
        assert_eq!((bytes, skipped), (5, 1));
        assert_eq!(
            std::fs::read_to_string(out.join("db.sqlite")).unwrap(),
            "rows"
        );
        assert_eq!(std::fs::read_to_string(out.join("sub/x")).unwrap(), "x");
        assert!(out.join("leak").symlink_metadata().is_err());
        let aside = d.path().join("aside");
        std::fs::create_dir(&aside).unwrap();
        let fd = File::open(&aside).unwrap();
        b.rename_out(Path::new("state"), &fd, OsStr::new("state"))
            .unwrap();
        assert!(!root.join("state").exists());
        assert!(aside.join("state/db.sqlite").exists());
    }

    #[test]
    fn a_fifo_swapped_in_is_refused_at_once_not_waited_on() {
        let d = tempfile::tempdir().unwrap();
        let st = std::process::Command::new("mkfifo")
            .arg(d.path().join("bait.md"))
            .status()
            .unwrap();
        assert!(st.success());
        let root = d.path().to_path_buf();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let b = Beneath::open(&root).unwrap();
            let _ = tx.send(b.open_file(Path::new("bait.md")).map(|_| ()));
        });
        // Without O_NONBLOCK the open waits for a writer that never comes.
        let got = rx
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("open_file blocked on a FIFO");
        assert_eq!(got.unwrap_err().kind(), io::ErrorKind::InvalidInput);
        // And a regular file reads as usual.
        std::fs::write(d.path().join("ok.md"), "ok").unwrap();
        let mut f = Beneath::open(d.path())
            .unwrap()
            .open_file(Path::new("ok.md"))
            .unwrap();
        let mut s = String::new();
        std::io::Read::read_to_string(&mut f, &mut s).unwrap();
        assert_eq!(s, "ok");
    }

    #[test]
    fn symlinks_anywhere_on_the_way_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("ws");
        let outside = d.path().join("outside");
        std::fs::create_dir_all(root.join("real")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("secret"), "s").unwrap();
        std::fs::write(root.join("real/ok.md"), "ok").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("memory")).unwrap();
        std::os::unix::fs::symlink(outside.join("secret"), root.join("link.md")).unwrap();
        let b = Beneath::open(&root).unwrap();
        assert!(b.open_file(Path::new("real/ok.md")).is_ok());
        assert!(b.open_file(Path::new("link.md")).is_err());
        assert!(b.open_file(Path::new("memory/secret")).is_err());
        assert!(b.open_file(Path::new("../outside/secret")).is_err());
        assert_eq!(b.stat(Path::new("memory/secret")), None);
        // Writing through a symlinked parent is refused and nothing lands outside.
        let staging = tempfile::tempdir().unwrap();
        std::fs::write(staging.path().join("t"), "pwned").unwrap();
        let sd = rustix::fs::openat(
            CWD,
            staging.path(),
            OFlags::DIRECTORY | OFlags::RDONLY,
            Mode::empty(),
        )
        .unwrap();
        assert!(b
            .rename_in(&sd, "t", Path::new("memory/secret"), None)
            .is_err());
        assert_eq!(std::fs::read(outside.join("secret")).unwrap(), b"s");
        assert!(b.unlink(Path::new("memory/secret")).is_err());
        assert!(outside.join("secret").exists());
        // Renaming over a symlink replaces the link, not its target.
        b.rename_in(&sd, "t", Path::new("link.md"), None).unwrap();
        assert_eq!(std::fs::read(outside.join("secret")).unwrap(), b"s");
        assert_eq!(std::fs::read(root.join("link.md")).unwrap(), b"pwned");
        // New parents are made inside.
        std::fs::write(staging.path().join("u"), "new").unwrap();
        b.rename_in(&sd, "u", Path::new("a/b/c.md"), None).unwrap();
        assert_eq!(std::fs::read(root.join("a/b/c.md")).unwrap(), b"new");
        let mut names: Vec<_> = b.list(Path::new("")).unwrap();
        names.sort();
        assert_eq!(
            names
                .iter()
                .map(|e| (e.name.to_str().unwrap(), e.kind))
                .collect::<Vec<_>>(),
            [
                ("a", Kind::Dir),
                ("link.md", Kind::File),
                ("memory", Kind::Symlink),
                ("real", Kind::Dir)
            ]
        );
    }
}
