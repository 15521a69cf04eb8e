//! Unpacking tarballs into a root directory with the `tar` crate: numeric owners and modes
//! kept, every entry refused that would land outside the root, device nodes and FIFOs
//! skipped (clawkeep as PID 1 mounts a devtmpfs on /dev).

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Component, Path, PathBuf};

use super::error::BuildError;

/// What an unpack did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Unpacked {
    /// Entries written (directories, files, symlinks, hardlinks).
    pub entries: u64,
    /// Device nodes and FIFOs left out.
    pub skipped_devices: u64,
}

/// A reader of `path` that undoes its compression, told by its first bytes: gzip, xz,
/// zstd, or none.
pub(crate) fn open_decompressed(
    path: &Path,
    what: &'static str,
) -> Result<Box<dyn Read>, BuildError> {
    let mut file = File::open(path).map_err(BuildError::io(
        "open",
        path,
        "the image bundle was verified: is it being changed meanwhile?",
    ))?;
    let mut magic = [0u8; 6];
    let n = file.read(&mut magic).map_err(BuildError::io(
        "read",
        path,
        "the image bundle was verified: is it being changed meanwhile?",
    ))?;
    let file = BufReader::new(File::open(path).map_err(BuildError::io(
        "open",
        path,
        "is the bundle readable?",
    ))?);
    decompressed(file, &magic[..n], path, what)
}

/// `reader` with the decompressor its `magic` bytes (or `name`'s suffix) call for.
pub(crate) fn decompressed<R: Read + 'static>(
    reader: R,
    magic: &[u8],
    path: &Path,
    what: &'static str,
) -> Result<Box<dyn Read>, BuildError> {
    Ok(if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::GzDecoder::new(reader))
    } else if magic.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Box::new(liblzma::read::XzDecoder::new(reader))
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(
            zstd::stream::read::Decoder::new(reader).map_err(BuildError::io(
                "read zstd",
                path,
                "is it a zstd stream?",
            ))?,
        )
    } else if magic.starts_with(&[0x42, 0x5a, 0x68]) {
        return Err(BuildError::BadInput {
            what,
            path: path.to_path_buf(),
            message: "is bzip2-compressed".into(),
            hint: "give it plain, gzip-, xz- or zstd-compressed",
        });
    } else {
        Box::new(reader)
    })
}

/// Unpacks the tar stream `reader` (from `path`, for messages) into `root`, which must
/// exist. Owners (numeric ids: needs root), modes, symlinks and hardlinks are kept; an
/// entry whose name or hardlink target leaves the root, or that would be written through a
/// symlink pointing out of it, stops the unpack with its name.
pub(crate) fn unpack_tar(
    reader: Box<dyn Read>,
    root: &Path,
    path: &Path,
    what: &'static str,
) -> Result<Unpacked, BuildError> {
    let bad = |message: String| BuildError::BadInput {
        what,
        path: path.to_path_buf(),
        message,
        hint: "a root filesystem tarball holds only paths inside its root (like ./etc/hostname)",
    };
    let read_err = |e: std::io::Error| BuildError::BadInput {
        what,
        path: path.to_path_buf(),
        message: format!("not a readable tar: {e}"),
        hint: "give a tar archive (plain, gzip, xz or zstd)",
    };
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_unpack_xattrs(false);
    archive.set_overwrite(true);
    let mut done = Unpacked::default();
    for entry in archive.entries().map_err(read_err)? {
        let mut entry = entry.map_err(read_err)?;
        let name = entry.path().map_err(read_err)?.into_owned();
        let Some(clean) = inside(&name) else {
            return Err(bad(format!("entry {} leaves the root", name.display())));
        };
        if clean.as_os_str().is_empty() {
            continue;
        }
        let kind = entry.header().entry_type();
        if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
            done.skipped_devices += 1;
            continue;
        }
        if kind.is_hard_link() {
            let target = entry.link_name().map_err(read_err)?;
            if target.as_deref().and_then(inside).is_none() {
                return Err(bad(format!(
                    "hardlink {} points outside the root",
                    name.display()
                )));
            }
        }
        let unpacked = entry.unpack_in(root).map_err(|e| {
            bad(format!(
                "entry {} cannot be written inside the root: {}",
                name.display(),
                with_cause(&e)
            ))
        })?;
        if !unpacked {
            return Err(bad(format!("entry {} leaves the root", name.display())));
        }
        done.entries += 1;
    }
    Ok(done)
}

/// An error with its causes (the tar crate's own message names only the path).
fn with_cause(e: &std::io::Error) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
}

/// `name` without `.` parts, when it stays inside the root (no `..`, not absolute).
fn inside(name: &Path) -> Option<PathBuf> {
    let mut clean = PathBuf::new();
    for c in name.components() {
        match c {
            Component::Normal(n) => clean.push(n),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_inside_the_root_only() {
        assert_eq!(inside(Path::new("./etc/x")), Some(PathBuf::from("etc/x")));
        assert_eq!(inside(Path::new("./")), Some(PathBuf::new()));
        assert_eq!(inside(Path::new("../etc")), None);
        assert_eq!(inside(Path::new("etc/../../x")), None);
        assert_eq!(inside(Path::new("/etc/passwd")), None);
    }

    /// A tar with one entry named as given (the tar crate refuses to write `..` itself).
    fn raw_tar(name: &str) -> Vec<u8> {
        let mut h = tar::Header::new_gnu();
        let raw = &mut h.as_gnu_mut().unwrap().name;
        raw[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(1);
        h.set_cksum();
        let mut b = tar::Builder::new(Vec::new());
        b.append(&h, &b"x"[..]).unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn refuses_entries_that_leave_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        for name in ["../evil", "./a/../../evil"] {
            let tar = raw_tar(name);
            let e = unpack_tar(
                Box::new(std::io::Cursor::new(tar)),
                &root,
                Path::new("base.tar"),
                "base rootfs",
            )
            .unwrap_err()
            .to_string();
            assert!(e.contains("leaves the root"), "{e}");
            assert!(e.starts_with("base rootfs base.tar: entry"), "{e}");
        }
        assert!(!dir.path().join("evil").exists());
        let ok = unpack_tar(
            Box::new(std::io::Cursor::new(raw_tar("./etc/hostname"))),
            &root,
            Path::new("base.tar"),
            "base rootfs",
        )
        .unwrap();
        assert_eq!(ok.entries, 1);
        assert_eq!(std::fs::read(root.join("etc/hostname")).unwrap(), b"x");
    }
}
