//! Putting files into the staged root filesystem as the node will see them: every path is
//! resolved inside the root the way the node will resolve it (symlinks followed as if the
//! root were `/`, so a base rootfs's `sbin -> usr/sbin` or `/sbin/init ->
//! /lib/systemd/systemd` never leads out to the build host's files).

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use super::error::BuildError;

/// At most this many symlinks are followed resolving one path (as Linux does).
const MAX_HOPS: u32 = 40;

const HINT: &str = "the build runs as root, on a root filesystem it unpacked itself";

/// The directory `rel` (relative to the node's `/`) in the staged `root`, created (0755,
/// 0:0) where missing, symlinks followed inside the root.
pub(crate) fn dir_in_root(root: &Path, rel: &str) -> Result<PathBuf, BuildError> {
    let mut todo: Vec<OsString> = Vec::new();
    push_components(&mut todo, Path::new(rel));
    let mut at: Vec<OsString> = Vec::new();
    let mut hops = 0;
    while let Some(c) = todo.pop() {
        if c == ".." {
            at.pop();
            continue;
        }
        let here = at
            .iter()
            .fold(root.to_path_buf(), |p, c| p.join(c))
            .join(&c);
        match fs::symlink_metadata(&here) {
            Ok(m) if m.file_type().is_symlink() => {
                hops += 1;
                if hops > MAX_HOPS {
                    return Err(not_a_dir(&here, "too many levels of symlinks"));
                }
                let target =
                    fs::read_link(&here).map_err(BuildError::io("read link", &here, HINT))?;
                if target.is_absolute() {
                    at.clear();
                }
                push_components(&mut todo, &target);
            }
            Ok(m) if m.is_dir() => at.push(c),
            Ok(_) => return Err(not_a_dir(&here, "is a file where a directory is needed")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs::create_dir(&here).map_err(BuildError::io("create directory", &here, HINT))?;
                set_owner_mode(&here, 0o755)?;
                at.push(c);
            }
            Err(e) => return Err(BuildError::io("stat", &here, HINT)(e)),
        }
    }
    Ok(at.iter().fold(root.to_path_buf(), |p, c| p.join(c)))
}

/// Pushes `path`'s components onto the stack `todo` so that its first is popped first.
fn push_components(todo: &mut Vec<OsString>, path: &Path) {
    for c in path.components().rev() {
        match c {
            Component::Normal(n) => todo.push(n.to_os_string()),
            Component::ParentDir => todo.push("..".into()),
            _ => {}
        }
    }
}

fn not_a_dir(path: &Path, message: &str) -> BuildError {
    BuildError::BadInput {
        what: "base rootfs",
        path: path.to_path_buf(),
        message: message.to_string(),
        hint: "the base rootfs must leave the directories clawkeep writes to (/etc, /usr/bin, /sbin, /var/lib) as directories or symlinks to directories",
    }
}

/// What goes into a placed file.
pub(crate) enum Contents<'a> {
    /// A copy of this host file.
    Copy(&'a Path),
    /// A symbolic link to this target.
    Symlink(&'a str),
}

/// Puts a file at `rel` (a plain path relative to the node's `/`) in the staged `root`,
/// owned by 0:0 with permission bits `mode`, replacing whatever file or symlink the base
/// rootfs had there. Returns where it went.
pub(crate) fn place(
    root: &Path,
    rel: &str,
    contents: Contents<'_>,
    mode: u32,
) -> Result<PathBuf, BuildError> {
    let rel_path = Path::new(rel);
    let (Some(parent), Some(name)) = (rel_path.parent(), rel_path.file_name()) else {
        return Err(not_a_dir(&root.join(rel), "is not a file path"));
    };
    let dir = dir_in_root(root, &parent.to_string_lossy())?;
    let dest = dir.join(name);
    match fs::symlink_metadata(&dest) {
        Ok(m) if m.is_dir() => {
            return Err(not_a_dir(
                &dest,
                "is a directory where clawkeep puts a file",
            ))
        }
        Ok(_) => fs::remove_file(&dest).map_err(BuildError::io("replace", &dest, HINT))?,
        Err(_) => {}
    }
    match contents {
        Contents::Copy(from) => {
            fs::copy(from, &dest).map_err(BuildError::io("copy into the rootfs", &dest, HINT))?;
            set_owner_mode(&dest, mode)?;
        }
        Contents::Symlink(target) => {
            std::os::unix::fs::symlink(target, &dest)
                .map_err(BuildError::io("symlink", &dest, HINT))?;
            std::os::unix::fs::lchown(&dest, Some(0), Some(0)).map_err(BuildError::io(
                "chown",
                &dest,
                "build images as root",
            ))?;
        }
    }
    Ok(dest)
}

/// Copies the tree `from` into the existing directory `to`: directories, regular files
/// (permission bits kept) and symlinks (as they are), everything owned by 0:0. Returns the
/// number of entries. Device nodes, FIFOs and sockets are refused, naming them.
pub(crate) fn copy_tree(from: &Path, to: &Path) -> Result<u64, BuildError> {
    let mut entries = 0;
    let mut names: Vec<_> = fs::read_dir(from)
        .map_err(BuildError::io("read directory", from, HINT))?
        .collect::<Result<_, _>>()
        .map_err(BuildError::io("read directory", from, HINT))?;
    names.sort_by_key(|e| e.file_name());
    for e in names {
        let src = e.path();
        let dst = to.join(e.file_name());
        let meta = fs::symlink_metadata(&src).map_err(BuildError::io("stat", &src, HINT))?;
        let mode = meta.permissions().mode() & 0o7777;
        let ft = meta.file_type();
        if ft.is_symlink() {
            let target = fs::read_link(&src).map_err(BuildError::io("read link", &src, HINT))?;
            std::os::unix::fs::symlink(&target, &dst)
                .map_err(BuildError::io("symlink", &dst, HINT))?;
            std::os::unix::fs::lchown(&dst, Some(0), Some(0)).map_err(BuildError::io(
                "chown",
                &dst,
                "build images as root",
            ))?;
        } else if ft.is_dir() {
            fs::create_dir(&dst).map_err(BuildError::io("create directory", &dst, HINT))?;
            entries += copy_tree(&src, &dst)?;
            set_owner_mode(&dst, mode)?;
        } else if ft.is_file() {
            fs::copy(&src, &dst).map_err(BuildError::io("copy into the rootfs", &dst, HINT))?;
            set_owner_mode(&dst, mode)?;
        } else {
            return Err(BuildError::BadInput {
                what: "fleet file",
                path: src,
                message: "is a device node, FIFO or socket".into(),
                hint: "a tree the fleet names (the agents' rootfs) holds only directories, files and symlinks: the sandbox makes /dev itself",
            });
        }
        entries += 1;
    }
    Ok(entries)
}

/// 0:0 and `mode`.
fn set_owner_mode(path: &Path, mode: u32) -> Result<(), BuildError> {
    chown(path, Some(0), Some(0)).map_err(BuildError::io(
        "chown",
        path,
        "build images as root: the node's files are owned by root",
    ))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(BuildError::io("chmod", path, HINT))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn follows_symlinks_inside_the_root_only() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let outside = dir.path().join("host-sbin");
        fs::create_dir_all(root.join("usr/sbin")).unwrap();
        fs::create_dir_all(&outside).unwrap();
        symlink("usr/sbin", root.join("sbin")).unwrap();
        // Absolute: on the node this is /usr/sbin, never the build host's directory.
        symlink("/usr/sbin", root.join("sbin2")).unwrap();
        symlink("../../../../../..", root.join("up")).unwrap();
        assert_eq!(dir_in_root(&root, "sbin").unwrap(), root.join("usr/sbin"));
        assert_eq!(dir_in_root(&root, "sbin2").unwrap(), root.join("usr/sbin"));
        assert_eq!(dir_in_root(&root, "up/etc").unwrap(), root.join("etc"));
        assert!(root.join("etc").is_dir());

        // /sbin/init, a symlink out of the tree in the base, is replaced, not followed.
        symlink(&outside, root.join("usr/sbin/init")).unwrap();
        let src = dir.path().join("clawkeep");
        fs::write(&src, "bin").unwrap();
        let placed = place(&root, "sbin/init", Contents::Copy(&src), 0o755).unwrap();
        assert_eq!(placed, root.join("usr/sbin/init"));
        assert_eq!(fs::read(&placed).unwrap(), b"bin");
        assert!(fs::read_dir(&outside).unwrap().next().is_none());

        symlink("loop", root.join("loop")).unwrap();
        let e = dir_in_root(&root, "loop/x").unwrap_err().to_string();
        assert!(e.contains("too many levels of symlinks"), "{e}");
    }
}
