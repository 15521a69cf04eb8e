//! Directory trees: listing, hashing, copying, and making them read-only.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::error::RuntimeError;

/// Regular files under `root` as sorted `/`-separated relative paths. Symlinks and other
/// special files are returned in `others` (a bundle holds none).
pub(crate) fn list_files(root: &Path) -> Result<(Vec<String>, Vec<String>), RuntimeError> {
    let mut files = Vec::new();
    let mut others = Vec::new();
    walk(root, root, &mut files, &mut others)?;
    files.sort();
    others.sort();
    Ok((files, others))
}

fn walk(
    root: &Path,
    dir: &Path,
    files: &mut Vec<String>,
    others: &mut Vec<String>,
) -> Result<(), RuntimeError> {
    for entry in fs::read_dir(dir).map_err(RuntimeError::io("read directory", dir))? {
        let entry = entry.map_err(RuntimeError::io("read directory", dir))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(RuntimeError::io("stat", &path))?;
        let rel = relative(root, &path);
        if kind.is_dir() {
            walk(root, &path, files, others)?;
        } else if kind.is_file() {
            files.push(rel);
        } else {
            others.push(rel);
        }
    }
    Ok(())
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

/// The sha256 of a file's contents, in hex.
pub(crate) fn sha256_file(path: &Path) -> Result<String, RuntimeError> {
    crate::digest::sha256_file(path)
        .map(|d| d.sha256)
        .map_err(RuntimeError::io("read", path))
}

/// The sha256 of every regular file under `root`, by relative path.
pub(crate) fn hash_tree(root: &Path) -> Result<BTreeMap<String, String>, RuntimeError> {
    let (files, _) = list_files(root)?;
    files
        .into_iter()
        .map(|rel| {
            let sum = sha256_file(&root.join(&rel))?;
            Ok((rel, sum))
        })
        .collect()
}

/// Copies the regular files and directories under `from` to `to` (created).
pub(crate) fn copy_tree(from: &Path, to: &Path) -> Result<(), RuntimeError> {
    fs::create_dir_all(to).map_err(RuntimeError::io("create directory", to))?;
    let (files, _) = list_files(from)?;
    for rel in files {
        let target = to.join(&rel);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(RuntimeError::io("create directory", parent))?;
        }
        fs::copy(from.join(&rel), &target).map_err(RuntimeError::io("copy to", &target))?;
    }
    Ok(())
}

/// Makes everything under `root` (and `root`) read-only: directories and executables 0555,
/// other files 0444. Symlinks are left alone (their mode means nothing).
pub(crate) fn make_read_only(root: &Path) -> Result<(), RuntimeError> {
    set_modes(root, &|is_dir, mode| {
        if is_dir || mode & 0o111 != 0 {
            0o555
        } else {
            0o444
        }
    })
}

/// Gives the owner write access to everything under `root` again, so it can be removed by
/// an unprivileged user.
pub(crate) fn make_writable(root: &Path) -> Result<(), RuntimeError> {
    set_modes(root, &|_, mode| mode | 0o200)
}

fn set_modes(path: &Path, mode_for: &dyn Fn(bool, u32) -> u32) -> Result<(), RuntimeError> {
    let meta = fs::symlink_metadata(path).map_err(RuntimeError::io("stat", path))?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    if meta.is_dir() {
        // Children first: a directory made read-only before them would refuse nothing to
        // root, but would to anyone else.
        let children: Vec<PathBuf> = fs::read_dir(path)
            .map_err(RuntimeError::io("read directory", path))?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(RuntimeError::io("read directory", path))?;
        for child in children {
            set_modes(&child, mode_for)?;
        }
    }
    let mode = mode_for(meta.is_dir(), meta.permissions().mode() & 0o7777);
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(RuntimeError::io("chmod", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_hashes_and_locks_a_tree() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("t");
        fs::create_dir_all(root.join("a/b")).unwrap();
        fs::write(root.join("a/b/x"), "hello").unwrap();
        fs::write(root.join("y"), "").unwrap();
        fs::set_permissions(root.join("y"), fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink("y", root.join("link")).unwrap();
        let (files, others) = list_files(&root).unwrap();
        assert_eq!(files, ["a/b/x", "y"]);
        assert_eq!(others, ["link"]);
        let sums = hash_tree(&root).unwrap();
        assert_eq!(
            sums["a/b/x"],
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        make_read_only(&root).unwrap();
        let mode = |p: &str| fs::metadata(root.join(p)).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode("a/b/x"), 0o444);
        assert_eq!(mode("y"), 0o555);
        assert_eq!(mode("a/b"), 0o555);
        make_writable(&root).unwrap();
        fs::remove_dir_all(&root).unwrap();
    }
}
